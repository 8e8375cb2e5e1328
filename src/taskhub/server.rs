//! Starting and stopping the task hub: options, the loopback guard, the gRPC listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;

use super::error::{Result, TaskHubError};
use super::hub::Hub;
use super::service::Service;
use super::store::Location;
use crate::durabletask::proto::task_hub_sidecar_service_server::TaskHubSidecarServiceServer;

/// Where the task hub keeps its data.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A SQLite database (WAL, synchronous commits) in this directory, created if missing.
    File(PathBuf),
    /// An in-memory database that disappears with the hub. For tests.
    Memory,
}

/// How to run a task hub.
#[derive(Debug, Clone)]
pub struct TaskHubOptions {
    /// The address to listen on; port 0 picks a free port (see [`RunningTaskHub::local_addr`]).
    pub listen: SocketAddr,
    /// Where data is kept.
    pub storage: Storage,
    /// Listen on a non-loopback address too. The task hub has no authentication, so this is
    /// off unless asked for.
    pub allow_non_loopback: bool,
    /// How long a worker may hold a work item before it is delivered again. A lease also ends
    /// at once when the worker's GetWorkItems stream goes away.
    pub lease_timeout: Duration,
    /// How often idle worker streams get a health ping.
    pub health_ping_interval: Duration,
    /// The largest gRPC message accepted or sent.
    pub max_message_bytes: usize,
}

/// The default listen address of the `handler taskhub` subcommand.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4001";

/// The default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = ".data/taskhub";

impl Default for TaskHubOptions {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            storage: Storage::File(PathBuf::from(DEFAULT_DATA_DIR)),
            allow_non_loopback: false,
            lease_timeout: Duration::from_secs(300),
            health_ping_interval: Duration::from_secs(15),
            max_message_bytes: 32 * 1024 * 1024,
        }
    }
}

impl TaskHubOptions {
    /// Options for tests: in memory, on a free loopback port.
    pub fn in_memory() -> Self {
        Self {
            listen: "127.0.0.1:0".parse().expect("valid address"),
            storage: Storage::Memory,
            ..Self::default()
        }
    }
}

/// A task hub serving in the background. Dropping it also stops the hub, without waiting;
/// [`RunningTaskHub::shutdown`] stops it and waits until it has stopped.
pub struct RunningTaskHub {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: JoinHandle<std::result::Result<(), tonic::transport::Error>>,
    store_closed: Option<tokio::sync::oneshot::Receiver<()>>,
}

/// How long shutdown waits for the store to finish its last commit and close.
const STORE_CLOSE_WAIT: Duration = Duration::from_secs(10);

impl RunningTaskHub {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving: worker streams and long polls end, the listener closes, and the store
    /// finishes its last commit.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(true);
        let served = self.server.await.map_err(|err| TaskHubError::Listen {
            addr: self.local_addr,
            source: std::io::Error::other(err.to_string()),
        })?;
        served.map_err(|err| TaskHubError::Listen {
            addr: self.local_addr,
            source: std::io::Error::other(err.to_string()),
        })?;
        if let Some(closed) = self.store_closed
            && tokio::time::timeout(STORE_CLOSE_WAIT, closed)
                .await
                .is_err()
        {
            tracing::warn!(
                "task hub store still open after shutdown; a handle outlived the server"
            );
        }
        tracing::info!(addr = %self.local_addr, "task hub stopped");
        Ok(())
    }
}

/// Opens the store and starts serving the Durable Task protocol on `options.listen`.
pub async fn serve(options: TaskHubOptions) -> Result<RunningTaskHub> {
    if !options.allow_non_loopback && !options.listen.ip().is_loopback() {
        return Err(TaskHubError::NonLoopback(options.listen));
    }
    let location = match &options.storage {
        Storage::File(dir) => Location::File(dir.clone()),
        Storage::Memory => Location::Memory,
    };

    let (stop, stopped) = watch::channel(false);
    let hub: Arc<Hub> = Hub::open(&location, options.lease_timeout, stopped.clone()).await?;
    let store_closed = hub.take_store_closed();

    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| TaskHubError::Listen {
            addr: options.listen,
            source,
        })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| TaskHubError::Listen {
            addr: options.listen,
            source,
        })?;
    let incoming = TcpListenerStream::new(listener).map(|stream| {
        stream.inspect(|s| {
            let _ = s.set_nodelay(true);
        })
    });

    let service = TaskHubSidecarServiceServer::new(Service::new(hub, options.health_ping_interval))
        .max_decoding_message_size(options.max_message_bytes)
        .max_encoding_message_size(options.max_message_bytes);
    let mut stopped_signal = stopped;
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .http2_keepalive_timeout(Some(Duration::from_secs(10)))
            // One debug span and event per RPC: its path, status and latency.
            .layer(tower_http::trace::TraceLayer::new_for_grpc())
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = stopped_signal.wait_for(|stopped| *stopped).await;
            }),
    );

    tracing::info!(addr = %local_addr, storage = ?options.storage, "task hub listening");
    Ok(RunningTaskHub {
        local_addr,
        stop,
        server,
        store_closed,
    })
}
