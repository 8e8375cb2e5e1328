//! Building the history events the task hub writes, and their stored encoding.
//!
//! Events the hub creates carry `eventId = -1` unless they stand for an action, whose id they copy,
//! and are stamped with the hub's clock.

use prost::Message;

use super::error::{Result, TaskHubError};
use super::time::{Micros, to_timestamp};
use crate::durabletask::proto::{self, history_event::EventType};

/// A history event of the given type, stamped at `at`.
pub fn event(event_id: i32, at: Micros, event_type: EventType) -> proto::HistoryEvent {
    proto::HistoryEvent {
        event_id,
        timestamp: Some(to_timestamp(at)),
        event_type: Some(event_type),
    }
}

/// The marker that opens every batch of new events; its time is the orchestration's clock.
pub fn orchestrator_started(at: Micros) -> proto::HistoryEvent {
    event(-1, at, EventType::OrchestratorStarted(Default::default()))
}

/// The marker that closes every committed batch.
pub fn orchestrator_completed(at: Micros) -> proto::HistoryEvent {
    event(-1, at, EventType::OrchestratorCompleted(Default::default()))
}

/// What starts an execution: the orchestrator's name, version, input and parent.
#[derive(Debug, Clone, Default)]
pub struct StartSpec {
    /// The instance being started.
    pub instance_id: String,
    /// The execution being started.
    pub execution_id: String,
    /// The orchestrator's registered name.
    pub name: String,
    /// The orchestrator's version, if any.
    pub version: Option<String>,
    /// The JSON input, if any.
    pub input: Option<String>,
    /// The scheduled start time, if any.
    pub scheduled_start: Option<Micros>,
    /// The parent orchestration, for a sub-orchestration.
    pub parent: Option<proto::ParentInstanceInfo>,
    /// Tags given at creation.
    pub tags: std::collections::HashMap<String, String>,
}

/// The `executionStarted` event of an execution.
pub fn execution_started(spec: &StartSpec, at: Micros) -> proto::HistoryEvent {
    event(
        -1,
        at,
        EventType::ExecutionStarted(proto::ExecutionStartedEvent {
            name: spec.name.clone(),
            version: spec.version.clone(),
            input: spec.input.clone(),
            orchestration_instance: Some(proto::OrchestrationInstance {
                instance_id: spec.instance_id.clone(),
                execution_id: Some(spec.execution_id.clone()),
            }),
            parent_instance: spec.parent.clone(),
            scheduled_start_timestamp: spec.scheduled_start.map(to_timestamp),
            tags: spec.tags.clone(),
            ..Default::default()
        }),
    )
}

/// The result of an activity or sub-orchestration.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskOutcome {
    /// It returned this JSON output.
    Completed(Option<String>),
    /// It failed for this reason.
    Failed(proto::TaskFailureDetails),
}

/// Reads an activity's outcome from its response. A failure counts only when it has a message,
/// as every Durable Task worker expects; an empty message is filled in rather than dropped.
pub fn activity_outcome(response: &proto::ActivityResponse) -> TaskOutcome {
    match &response.failure_details {
        Some(failure) => {
            let mut failure = failure.clone();
            if failure.error_message.is_empty() && failure.error_type.is_empty() {
                return TaskOutcome::Completed(response.result.clone());
            }
            if failure.error_message.is_empty() {
                failure.error_message = format!("{} (no message)", failure.error_type);
            }
            TaskOutcome::Failed(failure)
        }
        None => TaskOutcome::Completed(response.result.clone()),
    }
}

/// The event that brings an activity's outcome back to its orchestration.
pub fn task_finished(task_id: i32, outcome: TaskOutcome, at: Micros) -> proto::HistoryEvent {
    let event_type = match outcome {
        TaskOutcome::Completed(result) => EventType::TaskCompleted(proto::TaskCompletedEvent {
            task_scheduled_id: task_id,
            result,
        }),
        TaskOutcome::Failed(failure) => EventType::TaskFailed(proto::TaskFailedEvent {
            task_scheduled_id: task_id,
            failure_details: Some(failure),
        }),
    };
    event(-1, at, event_type)
}

/// The event that brings a sub-orchestration's outcome back to its parent.
pub fn sub_orchestration_finished(
    task_id: i32,
    outcome: TaskOutcome,
    at: Micros,
) -> proto::HistoryEvent {
    let event_type = match outcome {
        TaskOutcome::Completed(result) => EventType::SubOrchestrationInstanceCompleted(
            proto::SubOrchestrationInstanceCompletedEvent {
                task_scheduled_id: task_id,
                result,
            },
        ),
        TaskOutcome::Failed(failure) => {
            EventType::SubOrchestrationInstanceFailed(proto::SubOrchestrationInstanceFailedEvent {
                task_scheduled_id: task_id,
                failure_details: Some(failure),
            })
        }
    };
    event(-1, at, event_type)
}

/// An external event raised on an instance.
pub fn event_raised(name: &str, input: Option<String>, at: Micros) -> proto::HistoryEvent {
    event(
        -1,
        at,
        EventType::EventRaised(proto::EventRaisedEvent {
            name: name.to_owned(),
            input,
        }),
    )
}

/// A failure made by the hub itself, with a type name and a message.
pub fn failure(error_type: &str, message: impl Into<String>) -> proto::TaskFailureDetails {
    proto::TaskFailureDetails {
        error_type: error_type.to_owned(),
        error_message: message.into(),
        is_non_retriable: true,
        ..Default::default()
    }
}

/// Encodes an event for storage.
pub fn encode(event: &proto::HistoryEvent) -> Vec<u8> {
    event.encode_to_vec()
}

/// Decodes a stored event.
pub fn decode(bytes: &[u8]) -> Result<proto::HistoryEvent> {
    proto::HistoryEvent::decode(bytes)
        .map_err(|err| TaskHubError::Corrupt(format!("history event: {err}")))
}

/// True for the event types that may wake a suspended instance.
pub fn wakes_suspended(event: &proto::HistoryEvent) -> bool {
    matches!(
        event.event_type,
        Some(EventType::ExecutionResumed(_) | EventType::ExecutionTerminated(_))
    )
}

/// True for events that belong to one execution and mean nothing to the next (continue-as-new
/// drops them): results of tasks, timers and sub-orchestrations.
pub fn belongs_to_execution(event: &proto::HistoryEvent) -> bool {
    matches!(
        event.event_type,
        Some(
            EventType::TaskCompleted(_)
                | EventType::TaskFailed(_)
                | EventType::TimerFired(_)
                | EventType::SubOrchestrationInstanceCompleted(_)
                | EventType::SubOrchestrationInstanceFailed(_)
                | EventType::ExecutionStarted(_)
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_without_message_gets_one() {
        let response = proto::ActivityResponse {
            failure_details: Some(proto::TaskFailureDetails {
                error_type: "builtins.ValueError".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let TaskOutcome::Failed(failure) = activity_outcome(&response) else {
            panic!("a failure with a type is a failure");
        };
        assert!(!failure.error_message.is_empty());
    }

    #[test]
    fn empty_failure_details_count_as_success() {
        let response = proto::ActivityResponse {
            result: Some("1".into()),
            failure_details: Some(Default::default()),
            ..Default::default()
        };
        assert_eq!(
            activity_outcome(&response),
            TaskOutcome::Completed(Some("1".into()))
        );
    }

    #[test]
    fn events_round_trip_through_storage() {
        let event = event_raised("Approval", Some("true".into()), 42);
        assert_eq!(decode(&encode(&event)).unwrap(), event);
    }
}
