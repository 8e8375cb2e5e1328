//! The hub: the store, the dispatch state, the timer task and the long-poll notifications, and
//! the operations that combine them. The gRPC service is a thin layer over these operations.

mod apply;
mod client;
mod lifecycle;
mod work;

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::dispatch::Dispatch;
use super::error::Result;
use super::store::{self, Store};
use super::time::{self, Micros};
use super::timers::{Timers, Wake};
use super::waiters::Waiters;

pub use apply::Effects;
pub use client::WaitFor;

/// The shared state of a running task hub.
pub struct Hub {
    store: Store,
    dispatch: Mutex<Dispatch>,
    timers: Timers,
    waiters: Waiters,
    lease_timeout: Duration,
    shutdown: watch::Receiver<bool>,
    store_closed: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Hub {
    /// Opens the store and schedules everything it holds: pending events (at once when due,
    /// including timers that fell due while the hub was down) and queued activities.
    pub async fn open(
        location: &store::Location,
        lease_timeout: Duration,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Self>> {
        let (store, store_closed) = Store::open(location)?;
        let (wake_times, activity_ids) = store
            .call(|conn| Ok((store::inbox_wake_times(conn)?, store::activity_ids(conn)?)))
            .await?;

        let hub = Arc::new_cyclic(|weak: &Weak<Hub>| {
            let weak = weak.clone();
            let timers = Timers::spawn(
                move |wake| {
                    if let Some(hub) = weak.upgrade() {
                        hub.on_due(wake);
                    }
                },
                shutdown.clone(),
            );
            Hub {
                store,
                dispatch: Mutex::new(Dispatch::default()),
                timers,
                waiters: Waiters::default(),
                lease_timeout,
                shutdown,
                store_closed: Mutex::new(Some(store_closed)),
            }
        });

        tracing::info!(
            pending.instances = wake_times.len(),
            queued.activities = activity_ids.len(),
            "task hub store opened"
        );
        hub.apply(Effects {
            wake: wake_times,
            activities: activity_ids,
            ..Effects::default()
        });
        Ok(hub)
    }

    /// A receiver that resolves once the store has closed (after the last hub handle is
    /// dropped). Only the first caller gets it.
    pub fn take_store_closed(&self) -> Option<oneshot::Receiver<()>> {
        self.store_closed.lock().expect("store_closed lock").take()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Resolves when the hub shuts down.
    pub fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut shutdown = self.shutdown.clone();
        async move {
            let _ = shutdown.wait_for(|stopped| *stopped).await;
        }
    }

    /// The dispatch state, locked. Never held across an await or a store call.
    pub fn dispatch(&self) -> std::sync::MutexGuard<'_, Dispatch> {
        self.dispatch.lock().expect("dispatch lock")
    }

    /// Carries out the in-memory side of committed changes: instances that became ready (now or
    /// later), activities queued, and long polls to wake.
    pub fn apply(&self, fx: Effects) {
        let now = time::now();
        let mut woke = !fx.activities.is_empty();
        {
            let mut dispatch = self.dispatch();
            for (instance_id, at) in fx.wake {
                if at <= now {
                    dispatch.mark_ready(&instance_id);
                    woke = true;
                } else {
                    self.timers.at(at, Wake::Instance(instance_id));
                }
            }
            for id in fx.activities {
                dispatch.push_activity(id);
            }
            if woke {
                dispatch.notify_all();
            }
        }
        self.waiters.notify(&fx.changed);
    }

    fn on_due(&self, wake: Wake) {
        let now = time::now();
        let mut dispatch = self.dispatch();
        match wake {
            Wake::Instance(instance_id) => {
                dispatch.mark_ready(&instance_id);
                dispatch.notify_all();
            }
            Wake::Leases => {
                let (expired, next) = dispatch.expire_due(now);
                if expired > 0 {
                    tracing::warn!(
                        work_items = expired,
                        "work item leases expired; delivering again"
                    );
                }
                if let Some(at) = next {
                    self.timers.at(at, Wake::Leases);
                }
            }
        }
    }

    /// Schedules the lease sweep a new lease asked for, if any.
    fn schedule_sweep(&self) {
        if let Some(at) = self.dispatch().take_sweep_request() {
            self.timers.at(at, Wake::Leases);
        }
    }

    fn lease_deadline(&self) -> Micros {
        time::now() + self.lease_timeout.as_micros() as i64
    }
}
