//! The replay state of one work item: the clock, the actions not yet seen in history, the tasks
//! waiting for results, and the external events waiting for a waiter.
//!
//! History events are applied here one at a time. Applying an event that completes a task stores
//! its outcome and wakes the future that waits for it; the driver then polls the orchestrator until
//! it makes no more progress.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::task::Waker;

use chrono::{DateTime, Utc};

use super::error::NonDeterminism;
use crate::durabletask::failure::FailureDetails;
use crate::durabletask::proto::history_event::EventType;
use crate::durabletask::proto::orchestrator_action::OrchestratorActionType as Action;
use crate::durabletask::proto::{self, HistoryEvent};

/// How a scheduled task ended.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// An activity returned this JSON result.
    Completed(Option<String>),
    /// An activity failed.
    Failed(FailureDetails),
    /// A timer fired.
    Fired,
}

#[derive(Default)]
struct TaskSlot {
    outcome: Option<Outcome>,
    waker: Option<Waker>,
}

struct Waiter {
    /// The event's payload once one was delivered to this waiter.
    delivered: Option<Option<String>>,
    waker: Option<Waker>,
    /// The case-folded event name.
    key: String,
}

/// Everything one replay knows. Owned by the driver and shared with the context.
pub(crate) struct ReplayState {
    pub instance_id: String,
    pub current_time: DateTime<Utc>,
    pub is_replaying: bool,
    pub custom_status: Option<String>,
    next_id: i32,
    next_waiter: u64,
    next_guid: u32,
    /// Actions the orchestrator created that history has not confirmed yet, by id.
    pending: BTreeMap<i32, proto::OrchestratorAction>,
    tasks: HashMap<i32, TaskSlot>,
    waiters: HashMap<u64, Waiter>,
    /// Waiter ids per case-folded event name, oldest first.
    queues: HashMap<String, VecDeque<u64>>,
    /// Events that arrived with nobody waiting, per case-folded name, oldest first.
    buffered: HashMap<String, VecDeque<Option<String>>>,
}

impl ReplayState {
    pub fn new(instance_id: String) -> Self {
        Self {
            instance_id,
            current_time: DateTime::UNIX_EPOCH,
            is_replaying: true,
            custom_status: None,
            next_id: 0,
            next_waiter: 0,
            next_guid: 0,
            pending: BTreeMap::new(),
            tasks: HashMap::new(),
            waiters: HashMap::new(),
            queues: HashMap::new(),
            buffered: HashMap::new(),
        }
    }

    /// Records a new action under the next sequence number and returns that number.
    pub fn schedule(&mut self, action: Action) -> i32 {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(
            id,
            proto::OrchestratorAction {
                id,
                orchestrator_action_type: Some(action),
            },
        );
        self.tasks.insert(id, TaskSlot::default());
        id
    }

    /// The next sequence number, for the completion action.
    pub fn next_action_id(&mut self) -> i32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// The next counter value for deterministic GUIDs.
    pub fn next_guid_counter(&mut self) -> u32 {
        self.next_guid += 1;
        self.next_guid
    }

    /// The outcome of task `id` if it has one; otherwise remembers who to wake.
    pub fn poll_task(&mut self, id: i32, waker: &Waker) -> Option<Outcome> {
        let slot = self.tasks.entry(id).or_default();
        match slot.outcome.take() {
            Some(outcome) => Some(outcome),
            None => {
                slot.waker = Some(waker.clone());
                None
            }
        }
    }

    /// Forgets a task whose future was dropped: a later result for it is ignored.
    pub fn forget_task(&mut self, id: i32) {
        self.tasks.remove(&id);
    }

    /// Registers a waiter for an event, served from the buffer when an event already arrived.
    pub fn add_waiter(&mut self, name: &str) -> u64 {
        let key = fold(name);
        let id = self.next_waiter;
        self.next_waiter += 1;

        let delivered = self.buffered.get_mut(&key).and_then(VecDeque::pop_front);
        if delivered.is_none() {
            self.queues.entry(key.clone()).or_default().push_back(id);
        }
        self.waiters.insert(
            id,
            Waiter {
                delivered,
                waker: None,
                key,
            },
        );
        id
    }

    /// The payload delivered to waiter `id`, if any; otherwise remembers who to wake.
    pub fn poll_waiter(&mut self, id: u64, waker: &Waker) -> Option<Option<String>> {
        let waiter = self.waiters.get_mut(&id)?;
        match waiter.delivered.take() {
            Some(payload) => {
                self.waiters.remove(&id);
                Some(payload)
            }
            None => {
                waiter.waker = Some(waker.clone());
                None
            }
        }
    }

    /// Removes a waiter whose future was dropped. An event it had been handed but never returned
    /// goes back to the front of the buffer, so no event is lost to a cancelled waiter.
    pub fn remove_waiter(&mut self, id: u64) {
        let Some(waiter) = self.waiters.remove(&id) else {
            return;
        };
        match waiter.delivered {
            Some(payload) => self
                .buffered
                .entry(waiter.key)
                .or_default()
                .push_front(payload),
            None => {
                if let Some(queue) = self.queues.get_mut(&waiter.key) {
                    queue.retain(|queued| *queued != id);
                }
            }
        }
    }

    /// The actions history has not confirmed, in id order: the new actions of this turn.
    pub fn take_pending(&mut self) -> Vec<proto::OrchestratorAction> {
        std::mem::take(&mut self.pending).into_values().collect()
    }

    /// The unconfirmed actions to send with the orchestration's completion. Timers whose futures
    /// were dropped are left out: they lost a race, and the finished instance needs no wake-up.
    pub fn take_pending_for_completion(&mut self) -> Vec<proto::OrchestratorAction> {
        let pending = self.take_pending();
        let tasks = &self.tasks;
        pending
            .into_iter()
            .filter(|action| {
                let timer = matches!(
                    action.orchestrator_action_type,
                    Some(Action::CreateTimer(_))
                );
                !timer || tasks.contains_key(&action.id)
            })
            .collect()
    }

    /// Applies one history event that is not handled by the driver itself.
    pub fn apply(&mut self, event: &HistoryEvent) -> Result<(), NonDeterminism> {
        let Some(kind) = &event.event_type else {
            return Ok(());
        };
        match kind {
            EventType::OrchestratorStarted(_) => {
                if let Some(timestamp) = &event.timestamp {
                    self.current_time = crate::durabletask::time::from_timestamp(timestamp);
                }
            }
            EventType::TaskScheduled(scheduled) => {
                self.confirm(event.event_id, "TaskScheduled", &scheduled.name)?
            }
            EventType::TimerCreated(_) => self.confirm(event.event_id, "TimerCreated", "")?,
            EventType::SubOrchestrationInstanceCreated(created) => self.confirm(
                event.event_id,
                "SubOrchestrationInstanceCreated",
                &created.name,
            )?,
            EventType::EventSent(sent) => self.confirm(event.event_id, "EventSent", &sent.name)?,
            EventType::TaskCompleted(done) => self.resolve(
                done.task_scheduled_id,
                Outcome::Completed(done.result.clone()),
            ),
            EventType::TaskFailed(failed) => {
                let details = failed.failure_details.clone().map(Into::into);
                let details = details.unwrap_or_else(|| FailureDetails::new("TaskFailed", ""));
                self.resolve(failed.task_scheduled_id, Outcome::Failed(details))
            }
            EventType::SubOrchestrationInstanceCompleted(done) => self.resolve(
                done.task_scheduled_id,
                Outcome::Completed(done.result.clone()),
            ),
            EventType::SubOrchestrationInstanceFailed(failed) => {
                let details = failed.failure_details.clone().map(Into::into);
                let details =
                    details.unwrap_or_else(|| FailureDetails::new("SubOrchestrationFailed", ""));
                self.resolve(failed.task_scheduled_id, Outcome::Failed(details))
            }
            EventType::TimerFired(fired) => self.resolve(fired.timer_id, Outcome::Fired),
            EventType::EventRaised(raised) => self.deliver(&raised.name, raised.input.clone()),
            // Markers and kinds this engine does not act on.
            _ => {}
        }
        Ok(())
    }

    /// Matches a history event that records an action against the action this replay created.
    fn confirm(
        &mut self,
        id: i32,
        recorded: &'static str,
        name: &str,
    ) -> Result<(), NonDeterminism> {
        let Some(action) = self.pending.remove(&id) else {
            return Err(NonDeterminism::MissingAction {
                id,
                recorded,
                name: name.to_owned(),
            });
        };
        let (expected, created_name) = match &action.orchestrator_action_type {
            Some(Action::ScheduleTask(task)) => ("TaskScheduled", task.name.as_str()),
            Some(Action::CreateTimer(_)) => ("TimerCreated", ""),
            Some(Action::CreateSubOrchestration(sub)) => {
                ("SubOrchestrationInstanceCreated", sub.name.as_str())
            }
            Some(Action::SendEvent(send)) => ("EventSent", send.name.as_str()),
            _ => ("another action", ""),
        };
        if expected != recorded || !created_name.eq_ignore_ascii_case(name) {
            return Err(NonDeterminism::Mismatch {
                id,
                recorded,
                recorded_name: name.to_owned(),
                created: expected,
                created_name: created_name.to_owned(),
            });
        }
        Ok(())
    }

    fn resolve(&mut self, id: i32, outcome: Outcome) {
        // A result for a task nobody waits for any more (a timer that lost a race, say) is dropped.
        let Some(slot) = self.tasks.get_mut(&id) else {
            return;
        };
        slot.outcome = Some(outcome);
        if let Some(waker) = slot.waker.take() {
            waker.wake();
        }
    }

    fn deliver(&mut self, name: &str, payload: Option<String>) {
        let key = fold(name);
        let waiter_id = self.queues.get_mut(&key).and_then(VecDeque::pop_front);
        let Some(waiter) = waiter_id.and_then(|id| self.waiters.get_mut(&id)) else {
            self.buffered.entry(key).or_default().push_back(payload);
            return;
        };
        waiter.delivered = Some(payload);
        if let Some(waker) = waiter.waker.take() {
            waker.wake();
        }
    }
}

/// Event names match case-insensitively, as in every Durable Task SDK.
fn fold(name: &str) -> String {
    name.to_lowercase()
}
