//! Work items: building and leasing them, and taking their completions and abandons.
//!
//! Every delivery gets a fresh completion token. A completion or abandon must name a token that
//! is still outstanding; otherwise it gets NOT_FOUND and changes nothing.

use std::sync::Arc;

use rusqlite::Connection;

use super::Hub;
use super::apply::{self, Effects};
use crate::durabletask::proto::{self, work_item::Request};
use crate::taskhub::dispatch::{ActivityLease, OrchestrationLease, WorkerId};
use crate::taskhub::error::{Result, TaskHubError};
use crate::taskhub::events;
use crate::taskhub::store::{activities, inbox, instances};
use crate::taskhub::time::{self, Micros};

/// A work item ready to send, with its completion token inside.
pub type Claimed = proto::WorkItem;

struct Turn {
    name: String,
    version: Option<String>,
    execution_id: String,
    event_ids: Vec<i64>,
    request: proto::OrchestratorRequest,
}

fn new_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Reads what an instance's next turn delivers, if it has anything deliverable now.
fn load_turn(conn: &Connection, instance_id: &str, now: Micros) -> Result<Option<Turn>> {
    let Some(row) = instances::get(conn, instance_id)? else {
        return Ok(None);
    };
    if row.is_terminal() {
        inbox::clear(conn, instance_id)?;
        return Ok(None);
    }
    let pending = inbox::pending(conn, instance_id, Some(now))?;
    if pending.is_empty() {
        return Ok(None);
    }
    if row.status == proto::OrchestrationStatus::Suspended as i32
        && !pending.iter().any(|p| events::wakes_suspended(&p.event))
    {
        return Ok(None);
    }
    let past_events = inbox::history(conn, instance_id)?;
    let starts = matches!(
        pending[0].event.event_type,
        Some(proto::history_event::EventType::ExecutionStarted(_))
    );
    if past_events.is_empty() && !starts {
        // Events raised before a scheduled start wait for the start itself.
        return Ok(None);
    }

    let mut new_events = Vec::with_capacity(pending.len() + 1);
    new_events.push(events::orchestrator_started(now));
    new_events.extend(pending.iter().map(|p| p.event.clone()));
    Ok(Some(Turn {
        name: row.name.clone(),
        version: row.version.clone(),
        execution_id: row.execution_id.clone(),
        event_ids: pending.iter().map(|p| p.id).collect(),
        request: proto::OrchestratorRequest {
            instance_id: instance_id.to_owned(),
            execution_id: Some(row.execution_id),
            past_events,
            new_events,
            ..Default::default()
        },
    }))
}

impl Hub {
    /// Up to `max` orchestrator work items for `worker`, as far as instances are ready and it
    /// has credit. One store call reads them all, so a busy hub hands out many items per commit.
    pub async fn claim_orchestrations(
        self: &Arc<Self>,
        worker: WorkerId,
        max: usize,
    ) -> Result<Vec<Claimed>> {
        let reserved: Vec<String> = {
            let mut dispatch = self.dispatch();
            std::iter::from_fn(|| dispatch.reserve_orchestration(worker))
                .take(max)
                .collect()
        };
        if reserved.is_empty() {
            return Ok(Vec::new());
        }
        let ids = reserved.clone();
        let turns = self
            .store()
            .call(move |conn| {
                let now = time::now();
                ids.iter()
                    .map(|id| load_turn(conn, id, now))
                    .collect::<Result<Vec<_>>>()
            })
            .await;
        let turns = match turns {
            Ok(turns) => turns,
            Err(err) => {
                let mut dispatch = self.dispatch();
                for id in &reserved {
                    dispatch.unreserve_orchestration(id, worker);
                    dispatch.mark_ready(id);
                }
                return Err(err);
            }
        };

        let filter = self.dispatch().filter(worker);
        let mut claimed = Vec::with_capacity(turns.len());
        for (instance_id, turn) in reserved.into_iter().zip(turns) {
            let Some(turn) = turn else {
                self.dispatch()
                    .unreserve_orchestration(&instance_id, worker);
                continue;
            };
            if !filter.allows_orchestration(&turn.name, turn.version.as_deref()) {
                self.dispatch().skip_orchestration(&instance_id, worker);
                continue;
            }
            let token = new_token();
            let expires_at = self.lease_deadline();
            let lease = OrchestrationLease {
                instance_id: instance_id.clone(),
                execution_id: turn.execution_id,
                event_ids: turn.event_ids,
                new_events: turn.request.new_events.clone(),
                worker,
                expires_at,
            };
            if !self.dispatch().lease_orchestration(token.clone(), lease) {
                continue;
            }
            tracing::debug!(
                instance.id = %instance_id,
                work_item.kind = "orchestration",
                events = turn.request.new_events.len(),
                "work item dispatched"
            );
            claimed.push(proto::WorkItem {
                completion_token: token,
                request: Some(Request::OrchestratorRequest(turn.request)),
            });
        }
        self.schedule_sweep();
        Ok(claimed)
    }

    /// Up to `max` activity work items for `worker`, as far as activities are queued and it has
    /// credit, read in one store call.
    pub async fn claim_activities(
        self: &Arc<Self>,
        worker: WorkerId,
        max: usize,
    ) -> Result<Vec<Claimed>> {
        let reserved: Vec<i64> = {
            let mut dispatch = self.dispatch();
            std::iter::from_fn(|| dispatch.reserve_activity(worker))
                .take(max)
                .collect()
        };
        if reserved.is_empty() {
            return Ok(Vec::new());
        }
        let ids = reserved.clone();
        let rows = self
            .store()
            .call(move |conn| {
                ids.iter()
                    .map(|id| activities::get(conn, *id))
                    .collect::<Result<Vec<_>>>()
            })
            .await;
        let rows = match rows {
            Ok(rows) => rows,
            Err(err) => {
                let mut dispatch = self.dispatch();
                for id in reserved.into_iter().rev() {
                    dispatch.unreserve_activity(id, worker, true);
                }
                return Err(err);
            }
        };

        let filter = self.dispatch().filter(worker);
        let mut claimed = Vec::with_capacity(rows.len());
        for (activity_id, row) in reserved.into_iter().zip(rows) {
            let Some(row) = row else {
                self.dispatch()
                    .unreserve_activity(activity_id, worker, false);
                continue;
            };
            if !filter.allows_activity(&row.request.name, row.request.version.as_deref()) {
                self.dispatch().skip_activity(activity_id, worker);
                continue;
            }
            let token = new_token();
            let expires_at = self.lease_deadline();
            let instance_id = row
                .request
                .orchestration_instance
                .as_ref()
                .map(|i| i.instance_id.clone())
                .unwrap_or_default();
            let lease = ActivityLease {
                activity_id,
                instance_id: instance_id.clone(),
                task_id: row.request.task_id,
                worker,
                expires_at,
            };
            if !self.dispatch().lease_activity(token.clone(), lease) {
                continue;
            }
            tracing::debug!(
                instance.id = %instance_id,
                work_item.kind = "activity",
                task.id = row.request.task_id,
                "work item dispatched"
            );
            claimed.push(proto::WorkItem {
                completion_token: token,
                request: Some(Request::ActivityRequest(row.request)),
            });
        }
        self.schedule_sweep();
        Ok(claimed)
    }

    /// Commits an orchestrator turn.
    pub async fn complete_orchestration(
        self: &Arc<Self>,
        response: proto::OrchestratorResponse,
    ) -> Result<()> {
        let lease = self
            .dispatch()
            .take_orchestration(&response.completion_token, &response.instance_id)
            .ok_or_else(apply::stale)?;
        let instance_id = lease.instance_id.clone();

        let hub = self.clone();
        let result = self
            .store()
            .call(move |conn| apply::complete_turn(conn, &hub, &lease, &response, time::now()))
            .await;
        match result {
            Ok(fx) => {
                self.dispatch().finish(&instance_id, false);
                tracing::debug!(instance.id = %instance_id, work_item.kind = "orchestration", "work item completed");
                self.apply(fx);
                Ok(())
            }
            Err(err) => {
                let stale = matches!(err, TaskHubError::Rejected(_));
                self.dispatch().finish(&instance_id, !stale);
                Err(err)
            }
        }
    }

    /// Records an activity's result as an event for its orchestration.
    pub async fn complete_activity(
        self: &Arc<Self>,
        response: proto::ActivityResponse,
    ) -> Result<()> {
        let lease = self
            .dispatch()
            .take_activity(&response.completion_token, &response.instance_id)
            .ok_or_else(apply::stale)?;

        let task_id = lease.task_id;
        let activity_id = lease.activity_id;
        let result = self
            .store()
            .call(move |conn| {
                let mut fx = Effects::default();
                let Some(row) = activities::get(conn, activity_id)? else {
                    return Ok(fx);
                };
                activities::remove(conn, activity_id)?;
                let instance_id = &lease.instance_id;
                match instances::get(conn, instance_id)? {
                    Some(instance)
                        if instance.execution_id == row.execution_id && !instance.is_terminal() =>
                    {
                        let now = time::now();
                        let outcome = events::activity_outcome(&response);
                        inbox::push(
                            conn,
                            instance_id,
                            now,
                            &events::task_finished(task_id, outcome, now),
                        )?;
                        fx.wake.push((instance_id.clone(), now));
                    }
                    _ => {}
                }
                Ok(fx)
            })
            .await;
        match result {
            Ok(fx) => {
                self.apply(fx);
                Ok(())
            }
            Err(err) => {
                self.dispatch().push_activity(activity_id);
                self.dispatch().notify_all();
                Err(err)
            }
        }
    }

    /// Gives an orchestrator work item back for redelivery.
    pub fn abandon_orchestration(&self, token: &str) -> Result<()> {
        let mut dispatch = self.dispatch();
        let lease = dispatch
            .take_orchestration(token, "")
            .ok_or_else(apply::stale)?;
        dispatch.finish(&lease.instance_id, true);
        Ok(())
    }

    /// Gives an activity work item back for redelivery.
    pub fn abandon_activity(&self, token: &str) -> Result<()> {
        let mut dispatch = self.dispatch();
        let lease = dispatch.take_activity(token, "").ok_or_else(apply::stale)?;
        dispatch.push_activity(lease.activity_id);
        dispatch.notify_all();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::durabletask::proto::orchestrator_action::OrchestratorActionType as Action;
    use crate::durabletask::proto::{OrchestrationStatus, history_event::EventType};
    use crate::taskhub::filters::WorkFilter;
    use crate::taskhub::store::Location;

    /// A hub in memory, and the sender that keeps it running while held.
    async fn hub() -> (Arc<Hub>, tokio::sync::watch::Sender<bool>) {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let hub = Hub::open(&Location::Memory, Duration::from_secs(60), stopped)
            .await
            .unwrap();
        (hub, stop)
    }

    async fn start(hub: &Arc<Hub>, id: &str) {
        let request = proto::CreateInstanceRequest {
            instance_id: id.into(),
            name: "orch".into(),
            input: Some("1".into()),
            ..Default::default()
        };
        hub.start(request).await.unwrap();
    }

    async fn claim_one(hub: &Arc<Hub>, worker: WorkerId) -> Option<Claimed> {
        hub.claim_orchestrations(worker, 1).await.unwrap().pop()
    }

    fn request(item: &Claimed) -> &proto::OrchestratorRequest {
        match &item.request {
            Some(Request::OrchestratorRequest(request)) => request,
            other => panic!("not an orchestrator item: {other:?}"),
        }
    }

    fn kinds(events: &[proto::HistoryEvent]) -> Vec<&'static str> {
        events
            .iter()
            .map(|e| match e.event_type {
                Some(EventType::OrchestratorStarted(_)) => "orchestratorStarted",
                Some(EventType::ExecutionStarted(_)) => "executionStarted",
                Some(EventType::EventRaised(_)) => "eventRaised",
                Some(EventType::ExecutionTerminated(_)) => "executionTerminated",
                Some(EventType::TimerFired(_)) => "timerFired",
                _ => "other",
            })
            .collect()
    }

    fn action(id: i32, kind: Action) -> proto::OrchestratorAction {
        proto::OrchestratorAction {
            id,
            orchestrator_action_type: Some(kind),
        }
    }

    #[tokio::test]
    async fn continue_as_new_keeps_new_events_and_drops_old_timers() {
        let (hub, _running) = hub().await;
        let (worker, _) = hub.dispatch().add_worker(10, 10, WorkFilter::default());
        start(&hub, "can").await;
        let first = claim_one(&hub, worker).await.unwrap();
        let old_execution = request(&first).execution_id.clone();
        let raise = proto::RaiseEventRequest {
            instance_id: "can".into(),
            name: "e".into(),
            input: None,
        };
        hub.raise_event(raise).await.unwrap();

        let timer = proto::CreateTimerAction {
            fire_at: Some(crate::taskhub::time::to_timestamp(
                time::now() + 3_600_000_000,
            )),
        };
        let again = proto::CompleteOrchestrationAction {
            orchestration_status: OrchestrationStatus::ContinuedAsNew as i32,
            result: Some("2".into()),
            ..Default::default()
        };
        let response = proto::OrchestratorResponse {
            instance_id: "can".into(),
            actions: vec![
                action(1, Action::CreateTimer(timer)),
                action(2, Action::CompleteOrchestration(again)),
            ],
            completion_token: first.completion_token.clone(),
            ..Default::default()
        };
        hub.complete_orchestration(response).await.unwrap();

        let next = claim_one(&hub, worker).await.unwrap();
        let next = request(&next);
        assert!(next.past_events.is_empty());
        assert_ne!(next.execution_id, old_execution);
        assert_eq!(
            kinds(&next.new_events),
            ["orchestratorStarted", "executionStarted", "eventRaised"]
        );
        let Some(EventType::ExecutionStarted(started)) = &next.new_events[1].event_type else {
            unreachable!()
        };
        assert_eq!(started.input.as_deref(), Some("2"));
        let pending = hub
            .store()
            .call(|conn| inbox::pending(conn, "can", None))
            .await
            .unwrap();
        assert_eq!(
            pending.len(),
            2,
            "only the new start and the event: {pending:?}"
        );
    }

    #[tokio::test]
    async fn terminate_is_direct_before_the_first_turn_and_an_event_after() {
        let (hub, _running) = hub().await;
        let (worker, _) = hub.dispatch().add_worker(10, 10, WorkFilter::default());
        start(&hub, "fresh").await;
        let terminate = |id: &str| proto::TerminateRequest {
            instance_id: id.into(),
            output: Some("\"bye\"".into()),
            recursive: false,
        };
        hub.terminate(terminate("fresh")).await.unwrap();
        let state = hub.get("fresh".into(), true).await.unwrap().unwrap();
        assert_eq!(
            state.orchestration_status,
            OrchestrationStatus::Terminated as i32
        );
        assert_eq!(state.output.as_deref(), Some("\"bye\""));
        assert!(
            claim_one(&hub, worker).await.is_none(),
            "nothing left to run"
        );

        start(&hub, "ran").await;
        let first = claim_one(&hub, worker).await.unwrap();
        let response = proto::OrchestratorResponse {
            instance_id: "ran".into(),
            completion_token: first.completion_token.clone(),
            ..Default::default()
        };
        hub.complete_orchestration(response).await.unwrap();
        hub.terminate(terminate("ran")).await.unwrap();
        let next = claim_one(&hub, worker).await.unwrap();
        assert_eq!(
            kinds(&request(&next).new_events),
            ["orchestratorStarted", "executionTerminated"]
        );
    }
}
