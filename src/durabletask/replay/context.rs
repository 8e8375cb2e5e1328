//! The orchestration context: everything an orchestrator may use, all of it deterministic.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::retry::RetryPolicy;
use super::state::ReplayState;
use super::tasks::{ActivityTask, EventTask, TimerTask};
use crate::durabletask::failure::FailureDetails;
use crate::durabletask::payload::{self, PayloadError};
use crate::durabletask::proto;
use crate::durabletask::proto::orchestrator_action::OrchestratorActionType as Action;
use crate::durabletask::time::to_timestamp;

/// Namespace of the deterministic GUIDs (a UUIDv5 of the instance, the time and a counter).
const GUID_NAMESPACE: Uuid = Uuid::from_u128(0x6b1e_44c4_93a2_4c57_9f0b_2d5e_8a71_c3d9);

/// An orchestrator's handle on its instance. Every method is deterministic: replaying the same
/// history gives the same answers, so the code may run any number of times.
#[derive(Clone)]
pub struct OrchestrationContext {
    state: Rc<RefCell<ReplayState>>,
}

impl OrchestrationContext {
    pub(crate) fn new(state: Rc<RefCell<ReplayState>>) -> Self {
        Self { state }
    }

    /// The id of the running instance.
    pub fn instance_id(&self) -> String {
        self.state.borrow().instance_id.clone()
    }

    /// The orchestration's current time: when the backend started the current turn. Never the
    /// wall clock, which would differ on replay.
    pub fn current_time(&self) -> DateTime<Utc> {
        self.state.borrow().current_time
    }

    /// True while the code re-runs past history; use it to avoid repeating side effects such as logs.
    pub fn is_replaying(&self) -> bool {
        self.state.borrow().is_replaying
    }

    /// A GUID that is the same on every replay.
    pub fn new_guid(&self) -> Uuid {
        let mut state = self.state.borrow_mut();
        let counter = state.next_guid_counter();
        let name = format!(
            "{}_{}_{}",
            state.instance_id,
            state.current_time.to_rfc3339(),
            counter
        );
        Uuid::new_v5(&GUID_NAMESPACE, name.as_bytes())
    }

    /// Publishes a value as the instance's custom status, readable by clients at any time.
    pub fn set_custom_status<T: Serialize + ?Sized>(&self, status: &T) -> Result<(), PayloadError> {
        let json = payload::encode(status)?;
        self.state.borrow_mut().custom_status = Some(json);
        Ok(())
    }

    /// Schedules an activity once and returns its result.
    pub fn call_activity<I, O>(&self, name: &str, input: &I) -> ActivityTask<O>
    where
        I: Serialize + ?Sized,
    {
        let input = match payload::encode(input) {
            Ok(json) => json,
            Err(err) => {
                let failure =
                    FailureDetails::new("PayloadError", format!("input of `{name}`: {err}"));
                return ActivityTask::failed(failure.non_retriable());
            }
        };
        let action = Action::ScheduleTask(proto::ScheduleTaskAction {
            name: name.to_owned(),
            input: Some(input),
            ..Default::default()
        });
        let id = self.state.borrow_mut().schedule(action);
        ActivityTask::scheduled(self.state.clone(), id)
    }

    /// Calls an activity and retries it under `policy`, waiting on durable timers between attempts
    /// so the retries survive restarts.
    pub async fn call_activity_with_retry<I, O>(
        &self,
        name: &str,
        input: &I,
        policy: &RetryPolicy,
    ) -> Result<O, FailureDetails>
    where
        I: Serialize + ?Sized,
        O: DeserializeOwned,
    {
        let started = self.current_time();
        let mut attempt = 1;
        loop {
            let failure = match self.call_activity::<I, O>(name, input).await {
                Ok(output) => return Ok(output),
                Err(failure) => failure,
            };
            let elapsed = (self.current_time() - started).to_std().unwrap_or_default();
            let Some(delay) = policy.delay_before_retry(attempt, elapsed, &failure) else {
                return Err(failure);
            };
            self.create_timer_after(delay).await;
            attempt += 1;
        }
    }

    /// A durable timer that fires at `fire_at`.
    pub fn create_timer(&self, fire_at: DateTime<Utc>) -> TimerTask {
        let action = Action::CreateTimer(proto::CreateTimerAction {
            fire_at: Some(to_timestamp(fire_at)),
        });
        let id = self.state.borrow_mut().schedule(action);
        TimerTask::scheduled(self.state.clone(), id)
    }

    /// A durable timer that fires `delay` after the orchestration's current time.
    pub fn create_timer_after(&self, delay: Duration) -> TimerTask {
        let delay = chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX);
        let fire_at = self
            .current_time()
            .checked_add_signed(delay)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.create_timer(fire_at)
    }

    /// Waits for the next external event called `name` (compared case-insensitively). Events that
    /// arrived before the wait are buffered and taken first in, first out.
    pub fn wait_for_external_event<T: DeserializeOwned>(&self, name: &str) -> EventTask<T> {
        let waiter = self.state.borrow_mut().add_waiter(name);
        EventTask::new(self.state.clone(), waiter)
    }
}
