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
use crate::taskhub::timers::Wake;

/// A work item ready to send, with its completion token inside.
pub type Claimed = proto::WorkItem;

struct Turn {
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
    /// The next orchestrator work item for `worker`, if one is ready and it has credit.
    pub async fn claim_orchestration(
        self: &Arc<Self>,
        worker: WorkerId,
    ) -> Result<Option<Claimed>> {
        loop {
            let Some(instance_id) = self.dispatch().reserve_orchestration(worker) else {
                return Ok(None);
            };
            let id = instance_id.clone();
            let turn = self
                .store()
                .call(move |conn| load_turn(conn, &id, time::now()))
                .await;
            let turn = match turn {
                Ok(Some(turn)) => turn,
                Ok(None) => {
                    self.dispatch()
                        .unreserve_orchestration(&instance_id, worker);
                    continue;
                }
                Err(err) => {
                    let mut dispatch = self.dispatch();
                    dispatch.unreserve_orchestration(&instance_id, worker);
                    dispatch.mark_ready(&instance_id);
                    return Err(err);
                }
            };

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
                return Ok(None);
            }
            self.timers
                .at(expires_at, Wake::OrchestrationLease(token.clone()));
            tracing::debug!(
                instance.id = %instance_id,
                work_item.kind = "orchestration",
                events = turn.request.new_events.len(),
                "work item dispatched"
            );
            return Ok(Some(proto::WorkItem {
                completion_token: token,
                request: Some(Request::OrchestratorRequest(turn.request)),
            }));
        }
    }

    /// The next activity work item for `worker`, if one is queued and it has credit.
    pub async fn claim_activity(self: &Arc<Self>, worker: WorkerId) -> Result<Option<Claimed>> {
        loop {
            let Some(activity_id) = self.dispatch().reserve_activity(worker) else {
                return Ok(None);
            };
            let row = self
                .store()
                .call(move |conn| activities::get(conn, activity_id))
                .await;
            let row = match row {
                Ok(Some(row)) => row,
                Ok(None) => {
                    self.dispatch()
                        .unreserve_activity(activity_id, worker, false);
                    continue;
                }
                Err(err) => {
                    self.dispatch()
                        .unreserve_activity(activity_id, worker, true);
                    return Err(err);
                }
            };

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
                return Ok(None);
            }
            self.timers
                .at(expires_at, Wake::ActivityLease(token.clone()));
            tracing::debug!(
                instance.id = %instance_id,
                work_item.kind = "activity",
                task.id = row.request.task_id,
                "work item dispatched"
            );
            return Ok(Some(proto::WorkItem {
                completion_token: token,
                request: Some(Request::ActivityRequest(row.request)),
            }));
        }
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
