//! The `instances` table: one row per orchestration instance, holding its current execution's
//! status, payloads and timestamps.

use std::collections::HashMap;

use prost::Message;
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::durabletask::proto::{self, OrchestrationStatus};
use crate::taskhub::error::{Result, TaskHubError};
use crate::taskhub::time::{Micros, to_timestamp};

/// True for the statuses an instance never leaves on its own.
pub fn is_terminal(status: i32) -> bool {
    [
        OrchestrationStatus::Completed,
        OrchestrationStatus::Failed,
        OrchestrationStatus::Terminated,
        OrchestrationStatus::Canceled,
    ]
    .iter()
    .any(|s| *s as i32 == status)
}

/// The orchestration that started a sub-orchestration, and the task it waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    /// The parent instance.
    pub instance_id: String,
    /// The parent's execution at the time; a result for an older execution is dropped.
    pub execution_id: String,
    /// The id of the parent's createSubOrchestration action.
    pub task_id: i32,
}

/// One instance as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRow {
    /// The instance id.
    pub instance_id: String,
    /// The current execution id; a new one at each continue-as-new.
    pub execution_id: String,
    /// The orchestrator's name.
    pub name: String,
    /// The orchestrator's version.
    pub version: Option<String>,
    /// An `OrchestrationStatus` value.
    pub status: i32,
    /// The current execution's input.
    pub input: Option<String>,
    /// The output once terminal.
    pub output: Option<String>,
    /// The custom status from the last completed turn.
    pub custom_status: Option<String>,
    /// Why it failed, when it did.
    pub failure: Option<proto::TaskFailureDetails>,
    /// Tags given at creation.
    pub tags: HashMap<String, String>,
    /// The parent, for a sub-orchestration.
    pub parent: Option<Parent>,
    /// When the instance was created.
    pub created_at: Micros,
    /// When anything about it last changed.
    pub last_updated_at: Micros,
    /// When it reached a terminal status.
    pub completed_at: Option<Micros>,
    /// When it was asked to start, if later than creation.
    pub scheduled_start_at: Option<Micros>,
}

const COLUMNS: &str = "instance_id, execution_id, name, version, status, input, output, \
    custom_status, failure, tags, parent_instance_id, parent_execution_id, parent_task_id, \
    created_at, last_updated_at, completed_at, scheduled_start_at";

impl InstanceRow {
    /// Reads a row selected with [`select_sql`].
    pub fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let failure: Option<Vec<u8>> = row.get(8)?;
        let tags: String = row.get(9)?;
        let parent_instance: Option<String> = row.get(10)?;
        let parent = match parent_instance {
            Some(instance_id) => Some(Parent {
                instance_id,
                execution_id: row.get::<_, Option<String>>(11)?.unwrap_or_default(),
                task_id: row.get::<_, Option<i32>>(12)?.unwrap_or_default(),
            }),
            None => None,
        };
        Ok(Self {
            instance_id: row.get(0)?,
            execution_id: row.get(1)?,
            name: row.get(2)?,
            version: row.get(3)?,
            status: row.get(4)?,
            input: row.get(5)?,
            output: row.get(6)?,
            custom_status: row.get(7)?,
            failure: failure.and_then(|bytes| proto::TaskFailureDetails::decode(&*bytes).ok()),
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            parent,
            created_at: row.get(13)?,
            last_updated_at: row.get(14)?,
            completed_at: row.get(15)?,
            scheduled_start_at: row.get(16)?,
        })
    }

    /// True once the instance has reached a terminal status.
    pub fn is_terminal(&self) -> bool {
        is_terminal(self.status)
    }

    /// The protocol view of this instance. Payloads are left out unless asked for.
    pub fn to_state(&self, with_payloads: bool) -> proto::OrchestrationState {
        let payload = |value: &Option<String>| if with_payloads { value.clone() } else { None };
        proto::OrchestrationState {
            instance_id: self.instance_id.clone(),
            name: self.name.clone(),
            version: self.version.clone(),
            orchestration_status: self.status,
            scheduled_start_timestamp: self.scheduled_start_at.map(to_timestamp),
            created_timestamp: Some(to_timestamp(self.created_at)),
            last_updated_timestamp: Some(to_timestamp(self.last_updated_at)),
            input: payload(&self.input),
            output: payload(&self.output),
            custom_status: payload(&self.custom_status),
            failure_details: self.failure.clone(),
            execution_id: Some(self.execution_id.clone()),
            completed_timestamp: self.completed_at.map(to_timestamp),
            parent_instance_id: self.parent.as_ref().map(|p| p.instance_id.clone()),
            tags: self.tags.clone(),
        }
    }
}

/// `SELECT <every column> FROM instances` followed by `rest`.
pub fn select_sql(rest: &str) -> String {
    format!("SELECT {COLUMNS} FROM instances {rest}")
}

/// The instance with this id.
pub fn get(conn: &Connection, instance_id: &str) -> Result<Option<InstanceRow>> {
    let mut stmt = conn.prepare_cached(&select_sql("WHERE instance_id = ?1"))?;
    Ok(stmt
        .query_row([instance_id], InstanceRow::from_row)
        .optional()?)
}

/// Inserts or replaces the whole row.
pub fn save(conn: &Connection, row: &InstanceRow) -> Result<()> {
    let tags = serde_json::to_string(&row.tags)
        .map_err(|err| TaskHubError::Corrupt(format!("tags: {err}")))?;
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO instances ({COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
    ))?;
    stmt.execute(params![
        row.instance_id,
        row.execution_id,
        row.name,
        row.version,
        row.status,
        row.input,
        row.output,
        row.custom_status,
        row.failure.as_ref().map(Message::encode_to_vec),
        tags,
        row.parent.as_ref().map(|p| &p.instance_id),
        row.parent.as_ref().map(|p| &p.execution_id),
        row.parent.as_ref().map(|p| p.task_id),
        row.created_at,
        row.last_updated_at,
        row.completed_at,
        row.scheduled_start_at,
    ])?;
    Ok(())
}

/// Deletes an instance with its history, pending events and queued activities.
pub fn delete(conn: &Connection, instance_id: &str) -> Result<()> {
    for table in ["instances", "history", "inbox", "activities"] {
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE instance_id = ?1"))?
            .execute([instance_id])?;
    }
    Ok(())
}

/// The ids of the non-terminal sub-orchestrations of an instance.
pub fn children(conn: &Connection, instance_id: &str) -> Result<Vec<InstanceRow>> {
    let mut stmt = conn.prepare_cached(&select_sql("WHERE parent_instance_id = ?1"))?;
    let rows = stmt.query_map([instance_id], InstanceRow::from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::taskhub::store::Location;
    use crate::taskhub::store::schema;

    pub fn sample(id: &str) -> InstanceRow {
        InstanceRow {
            instance_id: id.into(),
            execution_id: "e1".into(),
            name: "orch".into(),
            version: None,
            status: OrchestrationStatus::Pending as i32,
            input: Some("1".into()),
            output: None,
            custom_status: None,
            failure: None,
            tags: HashMap::from([("k".into(), "v".into())]),
            parent: Some(Parent {
                instance_id: "p".into(),
                execution_id: "pe".into(),
                task_id: 3,
            }),
            created_at: 10,
            last_updated_at: 11,
            completed_at: None,
            scheduled_start_at: Some(12),
        }
    }

    #[test]
    fn rows_round_trip_and_delete_takes_everything() {
        let conn = schema::open(&Location::Memory).unwrap();
        let mut row = sample("a");
        row.failure = Some(crate::taskhub::events::failure("T", "boom"));
        save(&conn, &row).unwrap();
        assert_eq!(get(&conn, "a").unwrap(), Some(row.clone()));
        assert_eq!(children(&conn, "p").unwrap(), vec![row]);

        delete(&conn, "a").unwrap();
        assert_eq!(get(&conn, "a").unwrap(), None);
    }

    #[test]
    fn terminal_statuses() {
        assert!(is_terminal(OrchestrationStatus::Completed as i32));
        assert!(is_terminal(OrchestrationStatus::Canceled as i32));
        assert!(!is_terminal(OrchestrationStatus::Running as i32));
        assert!(!is_terminal(OrchestrationStatus::Suspended as i32));
    }
}
