//! Instance lifecycle changes inside a store transaction: continue-as-new, termination, and
//! finishing (cleaning up and telling the parent).

use rusqlite::Connection;

use super::Hub;
use super::apply::Effects;
use crate::durabletask::proto::{self, OrchestrationStatus, history_event::EventType};
use crate::taskhub::error::Result;
use crate::taskhub::events::{self, StartSpec, TaskOutcome};
use crate::taskhub::store::{InstanceRow, activities, inbox, instances};
use crate::taskhub::time::Micros;

/// Starts a new execution of the instance with the completion's result as input. Events that
/// arrived during the turn and the carried-over events follow the new start; results meant for
/// the old execution are dropped with it.
pub fn continue_as_new(
    conn: &Connection,
    row: &mut InstanceRow,
    done: proto::CompleteOrchestrationAction,
    now: Micros,
    fx: &mut Effects,
) -> Result<()> {
    let id = row.instance_id.clone();
    row.execution_id = uuid::Uuid::new_v4().simple().to_string();
    row.input = done.result;
    if done.new_version.is_some() {
        row.version = done.new_version;
    }
    row.output = None;
    row.failure = None;
    row.status = OrchestrationStatus::Running as i32;
    instances::save(conn, row)?;

    let arrived = inbox::pending(conn, &id, None)?;
    inbox::clear(conn, &id)?;
    inbox::clear_history(conn, &id)?;
    activities::clear(conn, &id)?;

    let spec = StartSpec {
        instance_id: id.clone(),
        execution_id: row.execution_id.clone(),
        name: row.name.clone(),
        version: row.version.clone(),
        input: row.input.clone(),
        scheduled_start: None,
        parent: row.parent.as_ref().map(|p| proto::ParentInstanceInfo {
            task_scheduled_id: p.task_id,
            orchestration_instance: Some(proto::OrchestrationInstance {
                instance_id: p.instance_id.clone(),
                execution_id: Some(p.execution_id.clone()),
            }),
            ..Default::default()
        }),
        tags: row.tags.clone(),
    };
    inbox::push(conn, &id, now, &events::execution_started(&spec, now))?;
    for event in &done.carryover_events {
        inbox::push(conn, &id, now, event)?;
    }
    for pending in arrived
        .iter()
        .filter(|p| !events::belongs_to_execution(&p.event))
    {
        inbox::push(conn, &id, pending.visible_at.max(now), &pending.event)?;
    }
    fx.wake.push((id, now));
    Ok(())
}

/// Terminates an instance: directly when no turn of it ever ran, otherwise by delivering
/// `executionTerminated` so the worker completes it as TERMINATED. False if it does not exist.
pub fn terminate(
    conn: &Connection,
    hub: &Hub,
    instance_id: &str,
    output: Option<String>,
    recursive: bool,
    now: Micros,
    fx: &mut Effects,
) -> Result<bool> {
    let Some(mut row) = instances::get(conn, instance_id)? else {
        return Ok(false);
    };
    if row.is_terminal() {
        return Ok(true);
    }
    if recursive {
        for child in instances::children(conn, instance_id)? {
            if !child.is_terminal() {
                terminate(conn, hub, &child.instance_id, output.clone(), true, now, fx)?;
            }
        }
    }

    row.last_updated_at = now;
    let never_ran = row.status == OrchestrationStatus::Pending as i32
        && !hub.dispatch().is_in_flight(instance_id);
    if never_ran {
        row.status = OrchestrationStatus::Terminated as i32;
        row.output = output;
        row.completed_at = Some(now);
        instances::save(conn, &row)?;
        finish(conn, &row, now, fx)?;
    } else {
        let event = events::event(
            -1,
            now,
            EventType::ExecutionTerminated(proto::ExecutionTerminatedEvent {
                input: output,
                recurse: recursive,
            }),
        );
        inbox::push(conn, instance_id, now, &event)?;
        instances::save(conn, &row)?;
        fx.wake.push((instance_id.to_owned(), now));
        fx.changed.push(instance_id.to_owned());
    }
    Ok(true)
}

/// Cleans up after an instance reached a terminal status and tells its parent, if any.
pub fn finish(conn: &Connection, row: &InstanceRow, now: Micros, fx: &mut Effects) -> Result<()> {
    inbox::clear(conn, &row.instance_id)?;
    activities::clear(conn, &row.instance_id)?;
    fx.changed.push(row.instance_id.clone());

    let Some(parent) = &row.parent else {
        return Ok(());
    };
    let Some(parent_row) = instances::get(conn, &parent.instance_id)? else {
        return Ok(());
    };
    if parent_row.execution_id != parent.execution_id || parent_row.is_terminal() {
        return Ok(());
    }
    let outcome = if row.status == OrchestrationStatus::Completed as i32 {
        TaskOutcome::Completed(row.output.clone())
    } else {
        let status = OrchestrationStatus::try_from(row.status)
            .map(|s| s.as_str_name())
            .unwrap_or("UNKNOWN");
        TaskOutcome::Failed(row.failure.clone().unwrap_or_else(|| {
            events::failure(
                "SubOrchestrationFailed",
                format!(
                    "sub-orchestration '{}' ended with status {status}",
                    row.instance_id
                ),
            )
        }))
    };
    let event = events::sub_orchestration_finished(parent.task_id, outcome, now);
    inbox::push(conn, &parent.instance_id, now, &event)?;
    fx.wake.push((parent.instance_id.clone(), now));
    Ok(())
}
