//! The connection loop: Hello, GetWorkItems, dispatch, and reconnect until the owner stops it.
//!
//! Any end of the stream other than the owner's shutdown leads to a reconnect after a
//! full-jitter backoff, including a peer that cancels the stream or goes away. The backoff
//! restarts when a message arrives. A stream silent for longer than the watchdog counts as
//! dead. After several consecutive transport failures the channel is rebuilt, in case the
//! connection under it is half-open.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tonic::Code;

use super::super::channel::{SidecarClient, connect_lazy, sidecar_client};
use super::super::error::client_deadline_passed;
use super::super::proto;
use super::super::proto::work_item::Request;
use super::super::registry::Registry;
use super::item::ItemContext;
use super::{ConnectionState, ShutdownReport, Worker, activity, orchestration};

/// Why a session ended.
enum Ended {
    /// The owner asked the worker to stop.
    Stopped,
    /// The connection ended; `transport` says whether it counts toward rebuilding the channel,
    /// `graceful` that the backend closed a stream that had delivered work (as in a drain).
    Failed {
        transport: bool,
        graceful: bool,
        reason: String,
    },
}

/// The loop's state across sessions.
struct Looping {
    worker: Worker,
    grpc: SidecarClient,
    state: watch::Sender<ConnectionState>,
    stop: watch::Receiver<Option<Duration>>,
    in_flight: JoinSet<()>,
    orchestrations: Arc<Semaphore>,
    activities: Arc<Semaphore>,
    abandon: watch::Sender<bool>,
}

/// Runs until the owner sends a grace period on `stop`, then drains in-flight items.
pub(super) async fn run(
    worker: Worker,
    state: watch::Sender<ConnectionState>,
    stop: watch::Receiver<Option<Duration>>,
) -> ShutdownReport {
    let grpc = sidecar_client(worker.channel.clone(), worker.metadata.clone());
    let options = &worker.options;
    let mut looping = Looping {
        orchestrations: Arc::new(Semaphore::new(options.max_concurrent_orchestrations.max(1))),
        activities: Arc::new(Semaphore::new(options.max_concurrent_activities.max(1))),
        grpc,
        state,
        stop,
        in_flight: JoinSet::new(),
        abandon: watch::channel(false).0,
        worker,
    };
    let mut backoff = looping.worker.options.backoff();
    let mut transport_failures = 0u32;

    loop {
        let ended = looping.session(&mut backoff, &mut transport_failures).await;
        let Ended::Failed {
            transport,
            graceful,
            reason,
        } = ended
        else {
            break;
        };

        let _ = looping.state.send(ConnectionState::Reconnecting);
        if transport {
            transport_failures += 1;
        }
        let delay = backoff.next_delay();
        let delay_ms = delay.as_millis() as u64;
        if graceful {
            tracing::info!(reason = %reason, delay_ms, "disconnected from the task hub; reconnecting");
        } else {
            let attempt = backoff.attempt();
            tracing::warn!(reason = %reason, attempt, delay_ms, "connection to the task hub failed; reconnecting");
        }

        if transport_failures >= looping.worker.options.channel_recreate_after {
            looping.rebuild_channel();
            transport_failures = 0;
        }
        if looping.sleep_or_stop(delay).await {
            break;
        }
    }

    looping.drain().await
}

impl Looping {
    /// One connection: Hello, open the stream, dispatch until it ends.
    async fn session(&mut self, backoff: &mut super::Backoff, failures: &mut u32) -> Ended {
        let options = self.worker.options.clone();

        let mut hello = tonic::Request::new(());
        hello.set_timeout(options.hello_timeout);
        let mut grpc = self.grpc.clone();
        let hello = tokio::time::timeout(options.hello_timeout, grpc.hello(hello));
        match self.or_stop(hello).await {
            None => return Ended::Stopped,
            Some(Err(_)) => return transport_failure("Hello timed out"),
            Some(Ok(Err(status))) => return status_failure("Hello", &status),
            Some(Ok(Ok(_))) => {}
        }

        let request = proto::GetWorkItemsRequest {
            max_concurrent_orchestration_work_items: clamp(options.max_concurrent_orchestrations),
            max_concurrent_activity_work_items: clamp(options.max_concurrent_activities),
            work_item_filters: options
                .use_work_item_filters
                .then(|| filters(&self.worker.registry)),
            ..Default::default()
        };
        let _ = self.state.send(ConnectionState::Connected);
        tracing::info!(worker.id = %self.worker.worker_id(), "connected to the task hub");

        // Some backends send the response headers only with the first item, so the watchdog
        // covers the wait for them too.
        let open = tokio::time::timeout(options.silent_disconnect, grpc.get_work_items(request));
        let mut stream = match self.or_stop(open).await {
            None => return Ended::Stopped,
            Some(Err(_)) => return transport_failure("no work item stream within the watchdog"),
            Some(Ok(Err(status))) => return status_failure("GetWorkItems", &status),
            Some(Ok(Ok(response))) => response.into_inner(),
        };

        let mut received = false;
        loop {
            let next = tokio::time::timeout(options.silent_disconnect, stream.message());
            let message = tokio::select! {
                biased;
                _ = stopped(&mut self.stop) => return Ended::Stopped,
                Some(_) = self.in_flight.join_next(), if !self.in_flight.is_empty() => continue,
                message = next => message,
            };
            let item = match message {
                Err(_) => return transport_failure("the stream was silent past the watchdog"),
                Ok(Err(status)) => return status_failure("GetWorkItems stream", &status),
                Ok(Ok(None)) => {
                    return Ended::Failed {
                        transport: !received,
                        graceful: received,
                        reason: "the backend ended the stream".into(),
                    };
                }
                Ok(Ok(Some(item))) => item,
            };

            if !received {
                received = true;
                backoff.reset();
                *failures = 0;
            }
            self.dispatch(item);
        }
    }

    /// Starts a task for a work item; health pings only prove the stream is alive.
    fn dispatch(&mut self, item: proto::WorkItem) {
        let ctx = Arc::new(ItemContext {
            grpc: self.grpc.clone(),
            registry: self.worker.registry.clone(),
            max_completion_bytes: self.worker.options.max_completion_bytes,
            abandon: self.abandon.subscribe(),
        });
        let token = item.completion_token;
        match item.request {
            Some(Request::OrchestratorRequest(request)) => {
                let limit = self.orchestrations.clone();
                self.in_flight
                    .spawn(orchestration::run(ctx, limit, request, token));
            }
            Some(Request::ActivityRequest(request)) => {
                let limit = self.activities.clone();
                self.in_flight
                    .spawn(activity::run(ctx, limit, request, token));
            }
            Some(Request::HealthPing(_)) => tracing::trace!("health ping"),
            Some(Request::EntityRequest(_) | Request::EntityRequestV2(_)) => {
                // Entities are not supported; the worker never registers any, so a backend that
                // sends one anyway gets it back for another worker.
                tracing::warn!("entity work item received; abandoning it");
                let grpc = self.grpc.clone();
                self.in_flight.spawn(async move {
                    let mut grpc = grpc;
                    let request = proto::AbandonEntityTaskRequest {
                        completion_token: token,
                    };
                    let _ = grpc.abandon_task_entity_work_item(request).await;
                });
            }
            None => tracing::warn!("work item of an unknown kind ignored"),
        }
    }

    fn rebuild_channel(&mut self) {
        match connect_lazy(&self.worker.endpoint) {
            Ok(channel) => {
                tracing::info!("rebuilding the channel after repeated transport failures");
                self.grpc = sidecar_client(channel, self.worker.metadata.clone());
            }
            Err(err) => tracing::error!(error = %err, "cannot rebuild the channel"),
        }
    }

    /// Sleeps for `delay`; true if the owner stopped the worker meanwhile.
    async fn sleep_or_stop(&mut self, delay: Duration) -> bool {
        self.or_stop(tokio::time::sleep(delay)).await.is_none()
    }

    /// Awaits `future` unless the owner stops the worker first.
    async fn or_stop<F: Future>(&mut self, future: F) -> Option<F::Output> {
        tokio::select! {
            biased;
            _ = stopped(&mut self.stop) => None,
            output = future => Some(output),
        }
    }

    /// Waits for in-flight items within the grace period, then abandons what is left.
    async fn drain(mut self) -> ShutdownReport {
        let grace = self.stop.borrow().unwrap_or_default();
        let abandon_budget = (grace / 4).min(Duration::from_secs(2));
        while self.in_flight.try_join_next().is_some() {}
        let in_flight = self.in_flight.len();
        let _ = self.state.send(ConnectionState::Stopping);
        tracing::info!(
            in_flight,
            grace_ms = grace.as_millis() as u64,
            "worker stopping"
        );

        let finish = async { while self.in_flight.join_next().await.is_some() {} };
        let finished = tokio::time::timeout(grace - abandon_budget, finish)
            .await
            .is_ok();
        let mut abandoned = 0;
        if !finished {
            abandoned = self.in_flight.len();
            let _ = self.abandon.send(true);
            let give_back = async { while self.in_flight.join_next().await.is_some() {} };
            let _ = tokio::time::timeout(abandon_budget, give_back).await;
            self.in_flight.shutdown().await;
        }

        let _ = self.state.send(ConnectionState::Stopped);
        tracing::info!(abandoned, "worker stopped");
        ShutdownReport {
            in_flight,
            abandoned,
        }
    }
}

/// Resolves when the owner has asked to stop (or dropped the handle).
async fn stopped(stop: &mut watch::Receiver<Option<Duration>>) {
    let _ = stop.wait_for(Option::is_some).await;
}

fn transport_failure(reason: &str) -> Ended {
    Ended::Failed {
        transport: true,
        graceful: false,
        reason: reason.to_owned(),
    }
}

fn status_failure(rpc: &str, status: &tonic::Status) -> Ended {
    Ended::Failed {
        transport: matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded)
            || client_deadline_passed(status),
        graceful: false,
        reason: format!("{rpc}: {:?}: {}", status.code(), status.message()),
    }
}

/// Filters naming every registered orchestrator and activity, any version, and no entities.
fn filters(registry: &Registry) -> proto::WorkItemFilters {
    let mut orchestrations: Vec<_> = registry
        .orchestrator_names()
        .map(|name| proto::OrchestrationFilter {
            name: name.to_owned(),
            versions: Vec::new(),
        })
        .collect();
    let mut activities: Vec<_> = registry
        .activity_names()
        .map(|name| proto::ActivityFilter {
            name: name.to_owned(),
            versions: Vec::new(),
        })
        .collect();
    orchestrations.sort_by(|a, b| a.name.cmp(&b.name));
    activities.sort_by(|a, b| a.name.cmp(&b.name));
    proto::WorkItemFilters {
        orchestrations,
        activities,
        entities: Vec::new(),
    }
}

fn clamp(limit: usize) -> i32 {
    i32::try_from(limit).unwrap_or(i32::MAX)
}
