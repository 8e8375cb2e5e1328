//! The worker: takes orchestration and activity work items from the backend and answers them.
//!
//! [`Worker::start`] spawns the connection loop (`session`), which keeps one `GetWorkItems`
//! stream open and starts a task per item. Orchestration items are replayed by the engine
//! (`orchestration`), activity items run the registered function (`activity`); both run under a
//! local concurrency limit and end with a Complete* call carrying the item's completion token,
//! or with an Abandon* when the item cannot be processed here (`complete`).

mod activity;
mod backoff;
mod complete;
mod item;
mod orchestration;
mod session;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::auth::{DTS_SCOPE, TokenSource, credential_for};
use super::channel::{CallMetadata, connect_lazy};
use super::connection::ConnectionString;
use super::error::ConnectError;
use super::registry::Registry;
pub use backoff::Backoff;

/// The largest orchestration or activity completion sent by default: what the Durable Task
/// Scheduler and gRPC's usual limits accept. A larger answer fails its orchestration or activity.
pub const DEFAULT_MAX_COMPLETION_BYTES: usize = 4 * 1024 * 1024;

/// How a worker connects, how much it runs at once, and how it recovers.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Orchestration turns run at once (and the number offered to the backend).
    pub max_concurrent_orchestrations: usize,
    /// Activities run at once (and the number offered to the backend).
    pub max_concurrent_activities: usize,
    /// The deadline of the Hello call that opens each connection.
    pub hello_timeout: Duration,
    /// A stream that delivers nothing (not even a health ping) for this long is treated as dead.
    pub silent_disconnect: Duration,
    /// The first reconnection delay's ceiling; it doubles per failure.
    pub backoff_base: Duration,
    /// The largest reconnection delay.
    pub backoff_cap: Duration,
    /// After this many consecutive transport failures the channel is rebuilt.
    pub channel_recreate_after: u32,
    /// The largest completion sent; see [`DEFAULT_MAX_COMPLETION_BYTES`].
    pub max_completion_bytes: usize,
    /// Ask the backend for work items of registered names only, so that workers with different
    /// registries can share a task hub. Off by default: unknown names then fail visibly.
    pub use_work_item_filters: bool,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            max_concurrent_orchestrations: 100 * cpus,
            max_concurrent_activities: 100 * cpus,
            hello_timeout: Duration::from_secs(30),
            silent_disconnect: Duration::from_secs(120),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(30),
            channel_recreate_after: 5,
            max_completion_bytes: DEFAULT_MAX_COMPLETION_BYTES,
            use_work_item_filters: false,
        }
    }
}

impl WorkerOptions {
    fn backoff(&self) -> Backoff {
        Backoff::new(self.backoff_base, self.backoff_cap)
    }
}

/// Whether the worker holds a work-item stream; for health endpoints and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Started, not yet connected.
    Connecting,
    /// Hello succeeded and the work-item stream is open.
    Connected,
    /// The connection was lost; waiting to try again.
    Reconnecting,
    /// Shutting down: no new work items are taken, in-flight ones are finishing.
    Stopping,
    /// Shut down.
    Stopped,
}

/// A worker, configured and not yet started.
#[derive(Clone)]
pub struct Worker {
    endpoint: String,
    channel: Channel,
    metadata: CallMetadata,
    registry: Arc<Registry>,
    options: WorkerOptions,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("endpoint", &self.endpoint)
            .field("metadata", &self.metadata)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker for the backend and task hub of `connection`, running what `registry` holds.
    pub fn new(
        connection: &ConnectionString,
        registry: Registry,
        options: WorkerOptions,
    ) -> Result<Self, ConnectError> {
        let tokens = credential_for(connection)?.map(|c| TokenSource::new(c, DTS_SCOPE));
        let channel = connect_lazy(&connection.endpoint)?;
        let metadata = CallMetadata::new(&connection.task_hub, tokens).for_worker(new_worker_id());
        Ok(Self {
            endpoint: connection.endpoint.clone(),
            channel,
            metadata,
            registry: Arc::new(registry),
            options,
        })
    }

    /// This worker's `workerid`: host, process id and a random suffix.
    pub fn worker_id(&self) -> &str {
        self.metadata.worker_id.as_deref().unwrap_or_default()
    }

    /// Starts the connection loop on the current Tokio runtime.
    pub fn start(self) -> WorkerHandle {
        let (state_tx, state) = watch::channel(ConnectionState::Connecting);
        let (stop, stop_rx) = watch::channel(None);
        tracing::info!(worker.id = %self.worker_id(), endpoint = %self.endpoint, "worker starting");
        let task = tokio::spawn(session::run(self, state_tx, stop_rx));
        WorkerHandle { stop, state, task }
    }
}

/// A running worker. Dropping it stops the worker at once, abandoning in-flight items; call
/// [`WorkerHandle::shutdown`] to let them finish.
#[derive(Debug)]
pub struct WorkerHandle {
    stop: watch::Sender<Option<Duration>>,
    state: watch::Receiver<ConnectionState>,
    task: JoinHandle<ShutdownReport>,
}

/// What shutdown found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Work items running when shutdown began.
    pub in_flight: usize,
    /// Of those, how many were given back unfinished.
    pub abandoned: usize,
}

impl WorkerHandle {
    /// Watches the connection state.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }

    /// Stops taking work items, lets in-flight ones finish within `grace`, and abandons the rest
    /// so the backend redelivers them.
    pub async fn shutdown(self, grace: Duration) -> ShutdownReport {
        let _ = self.stop.send(Some(grace));
        match self.task.await {
            Ok(report) => report,
            Err(err) => {
                tracing::error!(error = %err, "the worker loop ended abnormally");
                ShutdownReport {
                    in_flight: 0,
                    abandoned: 0,
                }
            }
        }
    }
}

fn new_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".to_owned());
    format!(
        "{host}:{}:{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    )
}
