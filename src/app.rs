//! The handler process: the HTTP functions and the Durable Task worker in one process.
//!
//! The HTTP server starts at once so the Functions host's readiness probe is answered before the
//! worker has connected; the worker connects in the background and reconnects on its own. On
//! shutdown the server stops taking requests, then the worker finishes or gives back what it holds.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::durabletask::Registry;
use crate::durabletask::client::{
    Client, InstanceQuery, InstanceState, RuntimeStatus, ScheduleOptions,
};
use crate::durabletask::error::ClientError;
use crate::durabletask::worker::{Worker, WorkerOptions};
use crate::functions::instances::{BackendError, InstanceView, Instances, Page, Runtime, Started};
use crate::functions::{ApiSettings, AppState};
use crate::workflow::model::{ApprovalEvent, Submission};
use crate::workflow::{self, CodeRunner, HUMAN_APPROVAL_EVENT, ORCHESTRATOR};

/// How long in-flight work items get to finish on shutdown.
const DRAIN_GRACE: Duration = Duration::from_secs(20);

/// Runs the handler until `shutdown` resolves: serves HTTP on `listener` and runs the worker.
pub async fn run(
    config: Config,
    listener: TcpListener,
    runner: Arc<dyn CodeRunner>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let client = Client::new(&config.connection).context("cannot build the Durable Task client")?;
    let mut registry = Registry::new();
    workflow::register(&mut registry, runner);
    let worker = Worker::new(&config.connection, registry, WorkerOptions::default())
        .context("cannot build the Durable Task worker")?
        .start();

    let state = AppState {
        instances: Arc::new(DurableInstances { client }),
        settings: ApiSettings {
            approval_timeout: config.approval_timeout,
            execution_timeout: config.execution_timeout,
            trust_principal_headers: config.trust_principal_headers,
        },
    };
    let address = listener.local_addr()?;
    tracing::info!(%address, task_hub = %config.connection.task_hub, "handler listening");

    let served = axum::serve(listener, crate::functions::router(state))
        .with_graceful_shutdown(shutdown)
        .await;

    tracing::info!("draining the worker");
    let report = worker.shutdown(DRAIN_GRACE).await;
    tracing::info!(?report, "handler stopped");
    served.context("HTTP server failed")
}

/// Binds the HTTP port on loopback: the Functions host forwards requests to it locally.
pub async fn bind(port: u16) -> anyhow::Result<TcpListener> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}

/// The HTTP functions' view of the Durable Task client.
struct DurableInstances {
    client: Client,
}

#[async_trait]
impl Instances for DurableInstances {
    async fn start(&self, id: &str, submission: &Submission) -> Result<Started, BackendError> {
        let options = ScheduleOptions {
            instance_id: Some(id.to_owned()),
            ..Default::default()
        };
        match self
            .client
            .schedule_new_orchestration(ORCHESTRATOR, submission, options)
            .await
        {
            Ok(_) => Ok(Started::Created),
            Err(ClientError::AlreadyExists(_)) => Ok(Started::AlreadyExists),
            Err(err) => Err(backend_error(err)),
        }
    }

    async fn get(&self, id: &str) -> Result<Option<InstanceView>, BackendError> {
        let state = self
            .client
            .get_instance(id, true)
            .await
            .map_err(backend_error)?;
        Ok(state.map(view))
    }

    async fn raise_approval(&self, id: &str, event: &ApprovalEvent) -> Result<(), BackendError> {
        self.client
            .raise_event(id, HUMAN_APPROVAL_EVENT, event)
            .await
            .map_err(backend_error)
    }

    async fn list(
        &self,
        statuses: &[Runtime],
        page_size: u32,
        continuation: Option<String>,
    ) -> Result<Page, BackendError> {
        let statuses = statuses.iter().flat_map(|s| runtime_statuses(*s)).collect();
        let query = InstanceQuery {
            statuses,
            page_size,
            continuation,
            fetch_payloads: true,
            ..Default::default()
        };
        let page = self.client.query(&query).await.map_err(backend_error)?;
        Ok(Page {
            instances: page.instances.into_iter().map(view).collect(),
            continuation: page.continuation,
        })
    }
}

fn runtime_statuses(runtime: Runtime) -> Vec<RuntimeStatus> {
    match runtime {
        Runtime::Pending => vec![RuntimeStatus::Pending],
        Runtime::Running => vec![RuntimeStatus::Running],
        Runtime::Suspended => vec![RuntimeStatus::Suspended],
        Runtime::Completed => vec![RuntimeStatus::Completed],
        Runtime::Failed => vec![RuntimeStatus::Failed],
        Runtime::Terminated => vec![RuntimeStatus::Terminated, RuntimeStatus::Canceled],
    }
}

fn view(state: InstanceState) -> InstanceView {
    let runtime = match state.status {
        RuntimeStatus::Pending => Runtime::Pending,
        RuntimeStatus::Running | RuntimeStatus::ContinuedAsNew => Runtime::Running,
        RuntimeStatus::Suspended => Runtime::Suspended,
        RuntimeStatus::Completed => Runtime::Completed,
        RuntimeStatus::Failed => Runtime::Failed,
        RuntimeStatus::Terminated | RuntimeStatus::Canceled => Runtime::Terminated,
    };
    InstanceView {
        submission: state.input_as().ok(),
        progress: state.custom_status_as().ok(),
        outcome: if runtime == Runtime::Completed {
            state.output_as().ok()
        } else {
            None
        },
        failure: state.failure.as_ref().map(ToString::to_string),
        id: state.instance_id,
        name: state.name,
        runtime,
        created_at: state.created_at,
        last_updated_at: state.last_updated_at,
    }
}

fn backend_error(err: ClientError) -> BackendError {
    match err {
        ClientError::NotFound(_) => BackendError::NotFound,
        err if err.is_retryable() => BackendError::Unavailable(err.to_string()),
        err => BackendError::Other(err.to_string()),
    }
}
