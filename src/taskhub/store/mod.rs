//! The durable store: one SQLite connection owned by one thread, with group commit.
//!
//! Every operation is a closure run on the store thread. The thread takes every operation that is
//! waiting (up to [`MAX_BATCH`]), runs each inside its own savepoint of one transaction, commits
//! once, and only then answers each caller. A caller therefore never sees a result that is not yet
//! durable, and concurrent completions share one fsync instead of paying one each.

pub mod activities;
pub mod inbox;
pub mod instances;
pub mod queries;
mod schema;

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::error::{Result, TaskHubError};

pub use instances::{InstanceRow, Parent};
pub use queries::{InstanceFilter, Order, Page};

/// Every (instance, time) at which a pending event becomes deliverable.
pub fn inbox_wake_times(conn: &Connection) -> Result<Vec<(String, crate::taskhub::time::Micros)>> {
    inbox::wake_times(conn)
}

/// Every queued activity, oldest first.
pub fn activity_ids(conn: &Connection) -> Result<Vec<i64>> {
    activities::all_ids(conn)
}

/// The most operations committed together in one transaction.
pub const MAX_BATCH: usize = 256;

/// Where the store keeps its data.
#[derive(Debug, Clone)]
pub enum Location {
    /// A SQLite file `taskhub.sqlite3` in this directory (created if missing), in WAL mode.
    File(PathBuf),
    /// A private in-memory database, gone when the hub stops. For tests.
    Memory,
}

type Deliver = Box<dyn FnOnce(Result<()>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Deliver + Send>;

/// A handle to the store thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
}

impl Store {
    /// Opens (or creates) the store and starts its thread. The receiver resolves once the
    /// thread has finished its last commit and closed the database, which happens when every
    /// handle is dropped.
    pub fn open(location: &Location) -> Result<(Self, oneshot::Receiver<()>)> {
        let conn = schema::open(location)?;
        let (jobs, rx) = mpsc::channel::<Job>();
        let (closed_tx, closed) = oneshot::channel();
        std::thread::Builder::new()
            .name("taskhub-store".into())
            .spawn(move || {
                run(conn, rx);
                let _ = closed_tx.send(());
            })
            .map_err(|source| TaskHubError::DataDir {
                path: PathBuf::from("(store thread)"),
                source,
            })?;
        Ok((Self { jobs }, closed))
    }

    /// Runs `f` in the store's current transaction and returns its result once committed.
    /// If `f` fails, its own changes are rolled back and the others in the batch still commit.
    pub async fn call<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn: &Connection| {
            let result = run_in_savepoint(conn, f);
            Box::new(move |committed: Result<()>| {
                let _ = tx.send(committed.and(result));
            })
        });
        self.jobs.send(job).map_err(|_| TaskHubError::Closed)?;
        rx.await.map_err(|_| TaskHubError::Closed)?
    }
}

fn run_in_savepoint<R>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<R>) -> Result<R> {
    conn.execute_batch("SAVEPOINT job")?;
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(conn)))
        .unwrap_or_else(|_| Err(TaskHubError::Corrupt("store operation panicked".into())));
    if result.is_err() {
        conn.execute_batch("ROLLBACK TO job")?;
    }
    conn.execute_batch("RELEASE job")?;
    result
}

fn run(conn: Connection, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }

        let began = conn.execute_batch("BEGIN IMMEDIATE");
        let mut delivers = Vec::with_capacity(batch.len());
        if began.is_ok() {
            for job in batch {
                delivers.push(job(&conn));
            }
        }
        let committed = began.and_then(|()| conn.execute_batch("COMMIT"));
        if let Err(err) = &committed {
            tracing::error!(error = %err, "task hub store commit failed");
            let _ = conn.execute_batch("ROLLBACK");
        }
        for deliver in delivers {
            let outcome = match &committed {
                Ok(()) => Ok(()),
                Err(err) => Err(TaskHubError::CommitFailed(err.to_string())),
            };
            deliver(outcome);
        }
    }
    if let Err((_, err)) = conn.close() {
        tracing::warn!(error = %err, "task hub store did not close cleanly");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_operation_rolls_back_only_itself() {
        let (store, _closed) = Store::open(&Location::Memory).unwrap();
        store
            .call(|conn| {
                conn.execute("CREATE TABLE t (x INTEGER)", [])?;
                Ok(())
            })
            .await
            .unwrap();

        let failing = store.call(|conn| {
            conn.execute("INSERT INTO t VALUES (1)", [])?;
            Err::<(), _>(TaskHubError::Corrupt("on purpose".into()))
        });
        let passing = store.call(|conn| {
            conn.execute("INSERT INTO t VALUES (2)", [])?;
            Ok(())
        });
        let (failing, passing) = tokio::join!(failing, passing);
        assert!(failing.is_err());
        passing.unwrap();

        let rows: Vec<i64> = store
            .call(|conn| {
                let mut stmt = conn.prepare("SELECT x FROM t")?;
                let rows = stmt.query_map([], |row| row.get(0))?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
            .unwrap();
        assert_eq!(rows, vec![2]);
    }
}
