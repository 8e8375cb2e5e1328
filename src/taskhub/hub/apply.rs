//! Changes made inside one store transaction: creating instances, committing a turn's actions,
//! terminating, and finishing an instance. Each records what the hub must do in memory once the
//! transaction commits ([`Effects`]).

use rusqlite::Connection;

use super::Hub;
use super::lifecycle::{continue_as_new, finish, terminate};
use crate::durabletask::proto::orchestrator_action::OrchestratorActionType as Action;
use crate::durabletask::proto::{self, OrchestrationStatus, history_event::EventType};
use crate::taskhub::dispatch::OrchestrationLease;
use crate::taskhub::error::{Result, TaskHubError};
use crate::taskhub::events::{self, StartSpec, TaskOutcome};
use crate::taskhub::store::{InstanceRow, Parent, activities, inbox, instances};
use crate::taskhub::time::{Micros, from_timestamp};

/// What the hub does in memory after a transaction commits.
#[derive(Debug, Default)]
pub struct Effects {
    /// Instances with an event deliverable from the given time.
    pub wake: Vec<(String, Micros)>,
    /// Activities newly queued.
    pub activities: Vec<i64>,
    /// Instances whose state changed, for long polls.
    pub changed: Vec<String>,
}

/// Creates (or replaces) an instance whose first turn is deliverable from its scheduled start.
pub fn create(conn: &Connection, spec: &StartSpec, now: Micros, fx: &mut Effects) -> Result<()> {
    instances::delete(conn, &spec.instance_id)?;
    let row = InstanceRow {
        instance_id: spec.instance_id.clone(),
        execution_id: spec.execution_id.clone(),
        name: spec.name.clone(),
        version: spec.version.clone(),
        status: OrchestrationStatus::Pending as i32,
        input: spec.input.clone(),
        output: None,
        custom_status: None,
        failure: None,
        tags: spec.tags.clone(),
        parent: spec.parent.as_ref().map(|p| Parent {
            instance_id: p
                .orchestration_instance
                .as_ref()
                .map(|i| i.instance_id.clone())
                .unwrap_or_default(),
            execution_id: p
                .orchestration_instance
                .as_ref()
                .and_then(|i| i.execution_id.clone())
                .unwrap_or_default(),
            task_id: p.task_scheduled_id,
        }),
        created_at: now,
        last_updated_at: now,
        completed_at: None,
        scheduled_start_at: spec.scheduled_start,
    };
    instances::save(conn, &row)?;

    let visible_at = spec.scheduled_start.unwrap_or(now).max(now);
    inbox::push(
        conn,
        &spec.instance_id,
        visible_at,
        &events::execution_started(spec, now),
    )?;
    fx.wake.push((spec.instance_id.clone(), visible_at));
    fx.changed.push(spec.instance_id.clone());
    Ok(())
}

/// Commits a completed turn: the delivered events, each action's history event and its effect,
/// and the new status.
pub fn complete_turn(
    conn: &Connection,
    hub: &Hub,
    lease: &OrchestrationLease,
    response: &proto::OrchestratorResponse,
    now: Micros,
) -> Result<Effects> {
    let mut fx = Effects::default();
    let mut row = match instances::get(conn, &lease.instance_id)? {
        Some(row) if row.execution_id == lease.execution_id && !row.is_terminal() => row,
        _ => return Err(stale()),
    };
    let id = row.instance_id.clone();

    inbox::remove(conn, &lease.event_ids)?;
    let mut history = lease.new_events.clone();
    for event in &history {
        match event.event_type {
            Some(EventType::ExecutionSuspended(_)) => {
                row.status = OrchestrationStatus::Suspended as i32
            }
            Some(EventType::ExecutionResumed(_)) => {
                row.status = OrchestrationStatus::Running as i32
            }
            _ => {}
        }
    }
    if row.status == OrchestrationStatus::Pending as i32 {
        row.status = OrchestrationStatus::Running as i32;
    }
    row.custom_status = response.custom_status.clone();
    row.last_updated_at = now;
    fx.changed.push(id.clone());

    let mut completion = None;
    for action in &response.actions {
        let Some(kind) = &action.orchestrator_action_type else {
            continue;
        };
        match kind {
            Action::ScheduleTask(task) => {
                history.push(events::event(
                    action.id,
                    now,
                    EventType::TaskScheduled(proto::TaskScheduledEvent {
                        name: task.name.clone(),
                        version: task.version.clone(),
                        input: task.input.clone(),
                        parent_trace_context: task.parent_trace_context.clone(),
                        tags: task.tags.clone(),
                    }),
                ));
                let request = proto::ActivityRequest {
                    name: task.name.clone(),
                    version: task.version.clone(),
                    input: task.input.clone(),
                    orchestration_instance: Some(proto::OrchestrationInstance {
                        instance_id: id.clone(),
                        execution_id: Some(row.execution_id.clone()),
                    }),
                    task_id: action.id,
                    parent_trace_context: task.parent_trace_context.clone(),
                    tags: task.tags.clone(),
                };
                fx.activities
                    .push(activities::push(conn, &row.execution_id, &request)?);
            }
            Action::CreateTimer(timer) => {
                let fire_at = timer.fire_at.as_ref().map(from_timestamp).unwrap_or(now);
                history.push(events::event(
                    action.id,
                    now,
                    EventType::TimerCreated(proto::TimerCreatedEvent {
                        fire_at: timer.fire_at,
                    }),
                ));
                let fired = events::event(
                    -1,
                    fire_at,
                    EventType::TimerFired(proto::TimerFiredEvent {
                        fire_at: timer.fire_at,
                        timer_id: action.id,
                    }),
                );
                inbox::push(conn, &id, fire_at, &fired)?;
                fx.wake.push((id.clone(), fire_at));
            }
            Action::CreateSubOrchestration(sub) => {
                let child_id = if sub.instance_id.is_empty() {
                    format!("{id}:{:04x}", action.id)
                } else {
                    sub.instance_id.clone()
                };
                history.push(events::event(
                    action.id,
                    now,
                    EventType::SubOrchestrationInstanceCreated(
                        proto::SubOrchestrationInstanceCreatedEvent {
                            instance_id: child_id.clone(),
                            name: sub.name.clone(),
                            version: sub.version.clone(),
                            input: sub.input.clone(),
                            parent_trace_context: sub.parent_trace_context.clone(),
                            tags: sub.tags.clone(),
                        },
                    ),
                ));
                start_child(conn, &row, action.id, sub, child_id, now, &mut fx)?;
            }
            Action::SendEvent(send) => {
                let target = send
                    .instance
                    .as_ref()
                    .map(|i| i.instance_id.clone())
                    .unwrap_or_default();
                history.push(events::event(
                    action.id,
                    now,
                    EventType::EventSent(proto::EventSentEvent {
                        instance_id: target.clone(),
                        name: send.name.clone(),
                        input: send.data.clone(),
                    }),
                ));
                deliver_event(conn, &target, &send.name, send.data.clone(), now, &mut fx)?;
            }
            Action::TerminateOrchestration(term) => {
                terminate(
                    conn,
                    hub,
                    &term.instance_id,
                    term.reason.clone(),
                    term.recurse,
                    now,
                    &mut fx,
                )?;
            }
            Action::CompleteOrchestration(done) => completion = Some(done.clone()),
            Action::SendEntityMessage(_) | Action::RewindOrchestration(_) => {
                completion = Some(proto::CompleteOrchestrationAction {
                    orchestration_status: OrchestrationStatus::Failed as i32,
                    failure_details: Some(events::failure(
                        "NotSupported",
                        "this task hub does not support entities or rewind",
                    )),
                    ..Default::default()
                });
            }
        }
    }
    history.push(events::orchestrator_completed(now));

    match completion {
        Some(done) if done.orchestration_status == OrchestrationStatus::ContinuedAsNew as i32 => {
            continue_as_new(conn, &mut row, done, now, &mut fx)?;
        }
        Some(done) if instances::is_terminal(done.orchestration_status) => {
            row.status = done.orchestration_status;
            row.output = done.result.clone();
            row.failure = done.failure_details.clone();
            row.completed_at = Some(now);
            history.push(events::event(
                -1,
                now,
                EventType::ExecutionCompleted(proto::ExecutionCompletedEvent {
                    orchestration_status: done.orchestration_status,
                    result: done.result,
                    failure_details: done.failure_details,
                }),
            ));
            inbox::append_history(conn, &id, &history)?;
            instances::save(conn, &row)?;
            finish(conn, &row, now, &mut fx)?;
        }
        _ => {
            inbox::append_history(conn, &id, &history)?;
            instances::save(conn, &row)?;
        }
    }
    Ok(fx)
}

/// The answer for a completion or abandon whose token names nothing current.
pub fn stale() -> TaskHubError {
    TaskHubError::Rejected(tonic::Status::not_found(
        "no work item with this completion token is outstanding (it completed, expired or was redelivered)",
    ))
}

fn start_child(
    conn: &Connection,
    parent: &InstanceRow,
    task_id: i32,
    sub: &proto::CreateSubOrchestrationAction,
    child_id: String,
    now: Micros,
    fx: &mut Effects,
) -> Result<()> {
    if let Some(existing) = instances::get(conn, &child_id)?
        && !existing.is_terminal()
    {
        let failure = events::failure(
            "InstanceAlreadyExists",
            format!("sub-orchestration instance '{child_id}' already exists and is not finished"),
        );
        let event = events::sub_orchestration_finished(task_id, TaskOutcome::Failed(failure), now);
        inbox::push(conn, &parent.instance_id, now, &event)?;
        fx.wake.push((parent.instance_id.clone(), now));
        return Ok(());
    }
    let spec = StartSpec {
        instance_id: child_id,
        execution_id: uuid::Uuid::new_v4().simple().to_string(),
        name: sub.name.clone(),
        version: sub.version.clone(),
        input: sub.input.clone(),
        scheduled_start: None,
        parent: Some(proto::ParentInstanceInfo {
            task_scheduled_id: task_id,
            name: Some(parent.name.clone()),
            version: parent.version.clone(),
            orchestration_instance: Some(proto::OrchestrationInstance {
                instance_id: parent.instance_id.clone(),
                execution_id: Some(parent.execution_id.clone()),
            }),
        }),
        tags: sub.tags.clone(),
    };
    create(conn, &spec, now, fx)
}

/// Adds an external event to an instance's inbox; dropped when the instance is gone or done.
pub fn deliver_event(
    conn: &Connection,
    instance_id: &str,
    name: &str,
    input: Option<String>,
    now: Micros,
    fx: &mut Effects,
) -> Result<bool> {
    match instances::get(conn, instance_id)? {
        Some(row) if !row.is_terminal() => {
            inbox::push(
                conn,
                instance_id,
                now,
                &events::event_raised(name, input, now),
            )?;
            fx.wake.push((instance_id.to_owned(), now));
            Ok(true)
        }
        Some(_) => Ok(true),
        None => Ok(false),
    }
}
