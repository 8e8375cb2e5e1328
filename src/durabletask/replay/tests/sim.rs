//! A simulated backend for the replay tests: it turns each response's actions into history events
//! the way a real backend does, and feeds results back as new events.

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::durabletask::proto::history_event::EventType as E;
use crate::durabletask::time::to_timestamp;

pub(super) fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + seconds, 0).unwrap()
}

pub(super) fn event(kind: E) -> HistoryEvent {
    HistoryEvent {
        event_id: -1,
        timestamp: None,
        event_type: Some(kind),
    }
}

/// A backend that keeps one instance's history.
pub(super) struct Sim {
    pub(super) registry: Registry,
    pub(super) history: Vec<HistoryEvent>,
    pub(super) inbox: Vec<HistoryEvent>,
    pub(super) now: DateTime<Utc>,
    pub(super) timers: std::collections::HashMap<i32, prost_types::Timestamp>,
    pub(super) last: Option<proto::OrchestratorResponse>,
}

impl Sim {
    pub(super) fn start(registry: Registry, name: &str, input: Option<&str>) -> Self {
        let started = E::ExecutionStarted(proto::ExecutionStartedEvent {
            name: name.to_owned(),
            input: input.map(str::to_owned),
            ..Default::default()
        });
        Sim {
            registry,
            history: Vec::new(),
            inbox: vec![event(started)],
            now: at(0),
            timers: Default::default(),
            last: None,
        }
    }

    /// Runs one work item with what arrived since the last one, and records its actions.
    pub(super) fn turn(&mut self) -> proto::OrchestratorResponse {
        let mut new_events = vec![HistoryEvent {
            event_id: -1,
            timestamp: Some(to_timestamp(self.now)),
            event_type: Some(E::OrchestratorStarted(Default::default())),
        }];
        new_events.append(&mut self.inbox);
        let request = proto::OrchestratorRequest {
            instance_id: "instance-1".into(),
            past_events: self.history.clone(),
            new_events: new_events.clone(),
            ..Default::default()
        };
        let response = execute(&self.registry, &request);

        self.history.extend(new_events);
        for action in &response.actions {
            let recorded = match action.orchestrator_action_type.clone().unwrap() {
                Action::ScheduleTask(task) => E::TaskScheduled(proto::TaskScheduledEvent {
                    name: task.name,
                    input: task.input,
                    ..Default::default()
                }),
                Action::CreateTimer(timer) => {
                    self.timers.insert(action.id, timer.fire_at.unwrap());
                    E::TimerCreated(proto::TimerCreatedEvent {
                        fire_at: timer.fire_at,
                    })
                }
                Action::CompleteOrchestration(done) => {
                    E::ExecutionCompleted(proto::ExecutionCompletedEvent {
                        orchestration_status: done.orchestration_status,
                        result: done.result,
                        failure_details: done.failure_details,
                    })
                }
                other => panic!("unexpected action {other:?}"),
            };
            self.history.push(HistoryEvent {
                event_id: action.id,
                timestamp: None,
                event_type: Some(recorded),
            });
        }
        self.history
            .push(event(E::OrchestratorCompleted(Default::default())));
        self.last = Some(response.clone());
        response
    }

    pub(super) fn advance(&mut self, seconds: i64) {
        self.now += chrono::Duration::seconds(seconds);
    }

    pub(super) fn complete(&mut self, id: i32, result: &str) {
        self.inbox
            .push(event(E::TaskCompleted(proto::TaskCompletedEvent {
                task_scheduled_id: id,
                result: Some(result.into()),
            })));
    }

    pub(super) fn fail(&mut self, id: i32, error_type: &str, non_retriable: bool) {
        let mut failure = FailureDetails::new(error_type, "it broke");
        failure.non_retriable = non_retriable;
        self.inbox.push(event(E::TaskFailed(proto::TaskFailedEvent {
            task_scheduled_id: id,
            failure_details: Some(failure.into()),
        })));
    }

    pub(super) fn fire(&mut self, id: i32) {
        let fire_at = self.timers[&id];
        self.inbox.push(event(E::TimerFired(proto::TimerFiredEvent {
            fire_at: Some(fire_at),
            timer_id: id,
        })));
    }

    pub(super) fn raise(&mut self, name: &str, payload: &str) {
        self.inbox
            .push(event(E::EventRaised(proto::EventRaisedEvent {
                name: name.into(),
                input: Some(payload.into()),
            })));
    }

    pub(super) fn push(&mut self, kind: E) {
        self.inbox.push(event(kind));
    }

    /// The whole history as the new events of one work item, as after a cache loss: it must give
    /// the same answer as the last incremental turn.
    pub(super) fn assert_full_replay_matches(&self) {
        let mut all = self.history.clone();
        // Drop what the last turn added (its actions and the closing marker): replaying its inputs
        // must recreate them.
        let added = self.last.as_ref().unwrap().actions.len() + 1;
        all.truncate(all.len() - added);
        let request = proto::OrchestratorRequest {
            instance_id: "instance-1".into(),
            new_events: all,
            ..Default::default()
        };
        let full = execute(&self.registry, &request);
        let last = self.last.as_ref().unwrap();
        assert_eq!(
            full.actions, last.actions,
            "full replay differs from the incremental run"
        );
        assert_eq!(full.custom_status, last.custom_status);
    }
}

pub(super) fn kinds(response: &proto::OrchestratorResponse) -> Vec<(i32, &'static str)> {
    response
        .actions
        .iter()
        .map(|action| {
            let kind = match action.orchestrator_action_type.as_ref().unwrap() {
                Action::ScheduleTask(_) => "task",
                Action::CreateTimer(_) => "timer",
                Action::CompleteOrchestration(_) => "complete",
                _ => "other",
            };
            (action.id, kind)
        })
        .collect()
}

pub(super) fn completion_of(
    response: &proto::OrchestratorResponse,
) -> &proto::CompleteOrchestrationAction {
    match response
        .actions
        .last()
        .and_then(|a| a.orchestrator_action_type.as_ref())
    {
        Some(Action::CompleteOrchestration(done)) => done,
        other => panic!("no completion, last action {other:?}"),
    }
}

pub(super) fn status_of(response: &proto::OrchestratorResponse) -> OrchestrationStatus {
    OrchestrationStatus::try_from(completion_of(response).orchestration_status).unwrap()
}

pub(super) fn registry_with<I, F, Fut, O>(f: F) -> Registry
where
    I: serde::de::DeserializeOwned + 'static,
    F: Fn(OrchestrationContext, I) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<O, FailureDetails>> + 'static,
    O: serde::Serialize + 'static,
{
    let mut registry = Registry::new();
    registry.add_orchestrator("Orch", f);
    registry
}
