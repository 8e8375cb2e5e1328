//! Client operations: starting, signalling, inspecting, waiting for and purging instances.

use std::sync::Arc;
use std::time::Duration;

use super::Hub;
use super::apply::{self, Effects};
use super::lifecycle;
use crate::durabletask::proto::{self, OrchestrationStatus, history_event::EventType};
use crate::taskhub::error::{Result, TaskHubError};
use crate::taskhub::events::{self, StartSpec};
use crate::taskhub::store::{InstanceFilter, Order, Page, inbox, instances, queries};
use crate::taskhub::time::{self, from_timestamp};

/// What a long poll waits for.
#[derive(Debug, Clone, Copy)]
pub enum WaitFor {
    /// The first turn has completed (the status is no longer PENDING).
    Start,
    /// A terminal status.
    Completion,
}

fn not_found(instance_id: &str) -> TaskHubError {
    TaskHubError::Rejected(tonic::Status::not_found(format!(
        "orchestration instance '{instance_id}' not found"
    )))
}

impl Hub {
    /// Creates an instance, honouring the request's id-reuse policy.
    pub async fn start(self: &Arc<Self>, request: proto::CreateInstanceRequest) -> Result<String> {
        let instance_id = if request.instance_id.is_empty() {
            uuid::Uuid::new_v4().simple().to_string()
        } else {
            request.instance_id.clone()
        };
        let spec = StartSpec {
            instance_id: instance_id.clone(),
            execution_id: request
                .execution_id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
            name: request.name.clone(),
            version: request.version.clone(),
            input: request.input.clone(),
            scheduled_start: request
                .scheduled_start_timestamp
                .as_ref()
                .map(from_timestamp),
            parent: None,
            tags: request.tags.clone(),
        };
        let replaceable = request
            .orchestration_id_reuse_policy
            .map(|p| p.replaceable_status)
            .unwrap_or_default();

        let hub = self.clone();
        let fx = self
            .store()
            .call(move |conn| {
                if let Some(existing) = instances::get(conn, &spec.instance_id)? {
                    if !replaceable.contains(&existing.status) {
                        let status = OrchestrationStatus::try_from(existing.status)
                            .map(|s| s.as_str_name())
                            .unwrap_or("UNKNOWN");
                        return Err(TaskHubError::Rejected(tonic::Status::already_exists(
                            format!(
                                "orchestration instance '{}' already exists with status {status}, \
                             which the request's id-reuse policy does not allow replacing",
                                spec.instance_id
                            ),
                        )));
                    }
                    hub.dispatch().forget_instance(&spec.instance_id);
                }
                let mut fx = Effects::default();
                apply::create(conn, &spec, time::now(), &mut fx)?;
                Ok(fx)
            })
            .await?;
        tracing::debug!(instance.id = %instance_id, "instance created");
        self.apply(fx);
        Ok(instance_id)
    }

    /// Raises an external event. NOT_FOUND for an unknown instance; dropped for a finished one.
    pub async fn raise_event(self: &Arc<Self>, request: proto::RaiseEventRequest) -> Result<()> {
        let fx = self
            .store()
            .call(move |conn| {
                let mut fx = Effects::default();
                let found = apply::deliver_event(
                    conn,
                    &request.instance_id,
                    &request.name,
                    request.input,
                    time::now(),
                    &mut fx,
                )?;
                if found {
                    Ok(fx)
                } else {
                    Err(not_found(&request.instance_id))
                }
            })
            .await?;
        self.apply(fx);
        Ok(())
    }

    /// Terminates an instance (and its sub-orchestrations when `recursive`). Unknown: no-op.
    pub async fn terminate(self: &Arc<Self>, request: proto::TerminateRequest) -> Result<()> {
        let hub = self.clone();
        let fx = self
            .store()
            .call(move |conn| {
                let mut fx = Effects::default();
                lifecycle::terminate(
                    conn,
                    &hub,
                    &request.instance_id,
                    request.output,
                    request.recursive,
                    time::now(),
                    &mut fx,
                )?;
                Ok(fx)
            })
            .await?;
        self.apply(fx);
        Ok(())
    }

    /// Suspends (`suspend`) or resumes an instance by delivering the matching event.
    pub async fn suspend_or_resume(
        self: &Arc<Self>,
        instance_id: String,
        reason: Option<String>,
        suspend: bool,
    ) -> Result<()> {
        let fx = self
            .store()
            .call(move |conn| {
                let mut fx = Effects::default();
                let row =
                    instances::get(conn, &instance_id)?.ok_or_else(|| not_found(&instance_id))?;
                if row.is_terminal() {
                    return Ok(fx);
                }
                let now = time::now();
                let event_type = if suspend {
                    EventType::ExecutionSuspended(proto::ExecutionSuspendedEvent { input: reason })
                } else {
                    EventType::ExecutionResumed(proto::ExecutionResumedEvent { input: reason })
                };
                inbox::push(conn, &instance_id, now, &events::event(-1, now, event_type))?;
                fx.wake.push((instance_id, now));
                Ok(fx)
            })
            .await?;
        self.apply(fx);
        Ok(())
    }

    /// The state of an instance, if it exists.
    pub async fn get(
        &self,
        instance_id: String,
        with_payloads: bool,
    ) -> Result<Option<proto::OrchestrationState>> {
        self.store()
            .call(move |conn| {
                Ok(instances::get(conn, &instance_id)?.map(|row| row.to_state(with_payloads)))
            })
            .await
    }

    /// Waits until the instance has started or finished, woken by its state changes. Gives up
    /// after `timeout` (DEADLINE_EXCEEDED) or when the hub shuts down (UNAVAILABLE).
    pub async fn wait(
        &self,
        instance_id: String,
        with_payloads: bool,
        what: WaitFor,
        timeout: Option<Duration>,
    ) -> Result<Option<proto::OrchestrationState>> {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let notify = self.waiters.subscribe(&instance_id);
        let stopped = self.stopped();
        tokio::pin!(stopped);
        let result = loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();

            let state = match self.get(instance_id.clone(), with_payloads).await {
                Ok(state) => state,
                Err(err) => break Err(err),
            };
            let done = state.as_ref().is_some_and(|s| match what {
                WaitFor::Start => s.orchestration_status != OrchestrationStatus::Pending as i32,
                WaitFor::Completion => instances::is_terminal(s.orchestration_status),
            });
            if done {
                break Ok(state);
            }
            let expired = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut notified => {}
                () = expired => break Err(TaskHubError::Rejected(tonic::Status::deadline_exceeded(
                    format!("orchestration instance '{instance_id}' did not reach the awaited state in time"),
                ))),
                () = &mut stopped => break Err(TaskHubError::Closed),
            }
        };
        self.waiters.release(&instance_id, notify);
        result
    }

    /// A page of instances matching a filter.
    pub async fn query(
        &self,
        filter: InstanceFilter,
        order: Order,
        limit: usize,
        token: Option<String>,
    ) -> Result<Page> {
        self.store()
            .call(move |conn| queries::page(conn, &filter, order, limit, token.as_deref()))
            .await
    }

    /// Deletes terminal instances: one by id, or every one matching `filter`; with `recursive`,
    /// their sub-orchestrations too. Returns how many were deleted.
    pub async fn purge(
        &self,
        instance_id: Option<String>,
        filter: InstanceFilter,
        recursive: bool,
    ) -> Result<usize> {
        self.store()
            .call(move |conn| {
                let roots: Vec<String> = match instance_id {
                    Some(id) => vec![id],
                    None => {
                        let filter = InstanceFilter {
                            terminal_only: true,
                            ..filter
                        };
                        queries::page(conn, &filter, Order::Created, 0, None)?
                            .rows
                            .into_iter()
                            .map(|r| r.instance_id)
                            .collect()
                    }
                };
                let mut deleted = 0;
                let mut stack = roots;
                while let Some(id) = stack.pop() {
                    match instances::get(conn, &id)? {
                        Some(row) if row.is_terminal() => {
                            if recursive {
                                stack.extend(
                                    instances::children(conn, &id)?
                                        .into_iter()
                                        .map(|c| c.instance_id),
                                );
                            }
                            instances::delete(conn, &id)?;
                            deleted += 1;
                        }
                        _ => {}
                    }
                }
                Ok(deleted)
            })
            .await
    }

    /// The committed history of an instance's current execution; NOT_FOUND if unknown.
    pub async fn history(&self, instance_id: String) -> Result<Vec<proto::HistoryEvent>> {
        self.store()
            .call(move |conn| {
                if instances::get(conn, &instance_id)?.is_none() {
                    return Err(not_found(&instance_id));
                }
                inbox::history(conn, &instance_id)
            })
            .await
    }
}
