//! The `activities` table: activity work items scheduled and not yet completed.

use prost::Message;
use rusqlite::{Connection, OptionalExtension, params};

use crate::durabletask::proto;
use crate::taskhub::error::{Result, TaskHubError};

/// A queued activity.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRow {
    /// Its row id, which names it in the dispatch queue.
    pub id: i64,
    /// The orchestration execution that scheduled it; its result is dropped if that execution
    /// is gone by then.
    pub execution_id: String,
    /// The request the worker receives.
    pub request: proto::ActivityRequest,
}

/// Queues an activity and returns its row id.
pub fn push(
    conn: &Connection,
    execution_id: &str,
    request: &proto::ActivityRequest,
) -> Result<i64> {
    let instance_id = request
        .orchestration_instance
        .as_ref()
        .map(|i| i.instance_id.as_str())
        .unwrap_or_default();
    conn.prepare_cached(
        "INSERT INTO activities (instance_id, execution_id, task_id, request) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![instance_id, execution_id, request.task_id, request.encode_to_vec()])?;
    Ok(conn.last_insert_rowid())
}

/// The queued activity with this row id.
pub fn get(conn: &Connection, id: i64) -> Result<Option<ActivityRow>> {
    let row = conn
        .prepare_cached("SELECT execution_id, request FROM activities WHERE id = ?1")?
        .query_row([id], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
        })
        .optional()?;
    row.map(|(execution_id, bytes)| {
        let request = proto::ActivityRequest::decode(&*bytes)
            .map_err(|err| TaskHubError::Corrupt(format!("activity request: {err}")))?;
        Ok(ActivityRow {
            id,
            execution_id,
            request,
        })
    })
    .transpose()
}

/// Removes a completed activity; false when it was already gone.
pub fn remove(conn: &Connection, id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM activities WHERE id = ?1")?
        .execute([id])?
        > 0)
}

/// Removes every queued activity of an instance.
pub fn clear(conn: &Connection, instance_id: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM activities WHERE instance_id = ?1")?
        .execute([instance_id])?;
    Ok(())
}

/// Every queued activity id, oldest first, for a restarted hub.
pub fn all_ids(conn: &Connection) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare("SELECT id FROM activities ORDER BY id")?;
    let rows = stmt.query_map([], |row| row.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::taskhub::store::{Location, schema};

    #[test]
    fn activities_queue_and_complete_once() {
        let conn = schema::open(&Location::Memory).unwrap();
        let request = proto::ActivityRequest {
            name: "hello".into(),
            task_id: 1,
            orchestration_instance: Some(proto::OrchestrationInstance {
                instance_id: "i".into(),
                execution_id: None,
            }),
            ..Default::default()
        };
        let id = push(&conn, "e1", &request).unwrap();
        assert_eq!(all_ids(&conn).unwrap(), vec![id]);
        let row = get(&conn, id).unwrap().unwrap();
        assert_eq!((row.execution_id.as_str(), row.request), ("e1", request));

        assert!(remove(&conn, id).unwrap());
        assert!(!remove(&conn, id).unwrap());
        assert_eq!(get(&conn, id).unwrap(), None);
    }
}
