//! Opening the SQLite database: pragmas and the schema.
//!
//! Times are microseconds since the Unix epoch. Events and requests are stored as encoded
//! protobuf messages, so the store round-trips every field the protocol has.

use rusqlite::Connection;

use super::Location;
use crate::taskhub::error::{Result, TaskHubError};

/// The file name inside the data directory.
pub const FILE_NAME: &str = "taskhub.sqlite3";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS instances (
    instance_id        TEXT PRIMARY KEY,
    execution_id       TEXT NOT NULL,
    name               TEXT NOT NULL,
    version            TEXT,
    status             INTEGER NOT NULL,
    input              TEXT,
    output             TEXT,
    custom_status      TEXT,
    failure            BLOB,
    tags               TEXT NOT NULL DEFAULT '{}',
    parent_instance_id TEXT,
    parent_execution_id TEXT,
    parent_task_id     INTEGER,
    created_at         INTEGER NOT NULL,
    last_updated_at    INTEGER NOT NULL,
    completed_at       INTEGER,
    scheduled_start_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS instances_by_created ON instances (created_at, instance_id);
CREATE INDEX IF NOT EXISTS instances_by_completed ON instances (completed_at, instance_id);
CREATE INDEX IF NOT EXISTS instances_by_parent ON instances (parent_instance_id);

CREATE TABLE IF NOT EXISTS history (
    instance_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    event       BLOB NOT NULL,
    PRIMARY KEY (instance_id, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS inbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    visible_at  INTEGER NOT NULL,
    event       BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_by_instance ON inbox (instance_id, id);

CREATE TABLE IF NOT EXISTS activities (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id  TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_id      INTEGER NOT NULL,
    request      BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS activities_by_instance ON activities (instance_id);
";

/// Opens the database at `location`, creating the directory and schema when missing.
pub fn open(location: &Location) -> Result<Connection> {
    let conn = match location {
        Location::File(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| TaskHubError::DataDir {
                path: dir.clone(),
                source,
            })?;
            let conn = Connection::open(dir.join(FILE_NAME))?;
            // WAL lets the single writer commit with one fsync of the log; FULL makes that fsync
            // happen at every commit, so an acknowledged change survives a power cut too.
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn
        }
        Location::Memory => Connection::open_in_memory()?,
    };
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_uses_wal_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::File(dir.path().join("nested"));
        {
            let conn = open(&location).unwrap();
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |row| row.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            let synchronous: i64 = conn
                .pragma_query_value(None, "synchronous", |row| row.get(0))
                .unwrap();
            assert_eq!(synchronous, 2, "every commit is fsynced (FULL)");
            conn.execute(
                "INSERT INTO inbox (instance_id, visible_at, event) VALUES ('a', 0, x'')",
                [],
            )
            .unwrap();
        }
        let conn = open(&location).unwrap();
        let count: i64 = conn
            .query_row("SELECT COUNT(*) FROM inbox", [], |row| row.get(0))
            .unwrap();
        assert_eq!(count, 1);
    }
}
