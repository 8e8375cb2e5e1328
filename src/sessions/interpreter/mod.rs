//! The local code interpreter: a loopback HTTP server with the session pool's data-plane API,
//! running Python in sandboxed, stateful sessions, so the production client path runs locally.
//!
//! Each session is a long-lived Python kernel (`kernel.py`) in its own sandbox (see
//! [`sandbox`]), holding its variables between executions until the cooldown. At start-up a
//! probe kernel measures which isolation layers hold; each missing one is logged as a warning
//! and shown by `GET /status`. With no confining layer at all, [`serve`] refuses to start
//! unless [`InterpreterOptions::allow_unisolated`] is set.

mod allocate;
mod kernel;
mod outcome;
mod pool;
mod routes;
pub mod sandbox;
mod startup;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use sandbox::{IsolationLayer, IsolationReport, ResourceLimits};
pub use startup::InterpreterError;

/// Environment variable naming the Python interpreter (for example a virtual environment's
/// `bin/python`) that sessions run.
pub const PYTHON_ENV: &str = "LOCAL_INTERPRETER_PYTHON";
/// Environment variable that, set to `1`, lets the interpreter run code with no isolation.
pub const ALLOW_UNISOLATED_ENV: &str = "LOCAL_INTERPRETER_ALLOW_UNISOLATED";

/// How to run the local interpreter. `Default` listens on an ephemeral loopback port.
#[derive(Debug, Clone)]
pub struct InterpreterOptions {
    /// Where to listen; must be a loopback address.
    pub listen: SocketAddr,
    /// The Python interpreter sessions run. It and its directories must be readable by the
    /// sandbox's uid (a root service runs sessions under uids from `sandbox_uid_base`).
    pub python: PathBuf,
    /// Where session directories are made; a fresh temporary directory when `None`. Removed
    /// at shutdown when the interpreter made it.
    pub work_root: Option<PathBuf>,
    /// How long an idle session keeps its state (Azure allows 300–3600 s).
    pub cooldown: Duration,
    /// The execution timeout when a request names none (Azure caps any at 220 s).
    pub default_timeout: Duration,
    /// Characters kept of stdout and of stderr per execution (Azure's default is 4096).
    pub max_output_chars: usize,
    /// Run code even when no isolation layer works. Off by default; never silently.
    pub allow_unisolated: bool,
    /// Use bubblewrap when it is installed.
    pub use_bwrap: bool,
    /// Apply the seccomp filter where the kernel has seccomp.
    pub use_seccomp: bool,
    /// Apply Landlock where the kernel has it.
    pub use_landlock: bool,
    /// Per-process resource limits inside each session.
    pub limits: ResourceLimits,
    /// Live sessions at most; when full, the least recently used idle session is ended.
    pub max_sessions: usize,
    /// Keep one session started ahead of need, so a new identifier does not wait for its
    /// sandbox and interpreter to start (one idle Python process).
    pub spare_session: bool,
    /// First host uid for sessions when the service runs as root (one uid per session).
    pub sandbox_uid_base: u32,
    /// How many uids from `sandbox_uid_base` sessions rotate through.
    pub sandbox_uid_count: u32,
}

impl Default for InterpreterOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            python: PathBuf::from("/usr/bin/python3"),
            work_root: None,
            cooldown: Duration::from_secs(300),
            default_timeout: Duration::from_secs(120),
            max_output_chars: 4096,
            allow_unisolated: false,
            use_bwrap: true,
            use_seccomp: true,
            use_landlock: true,
            limits: ResourceLimits::default(),
            max_sessions: 32,
            spare_session: true,
            sandbox_uid_base: 200_000,
            sandbox_uid_count: 10_000,
        }
    }
}

impl InterpreterOptions {
    /// The defaults, with the interpreter from `LOCAL_INTERPRETER_PYTHON` and the opt-in from
    /// `LOCAL_INTERPRETER_ALLOW_UNISOLATED=1` when set.
    pub fn from_env() -> Self {
        let mut options = Self::default();
        if let Some(python) = std::env::var_os(PYTHON_ENV).filter(|p| !p.is_empty()) {
            options.python = PathBuf::from(python);
        }
        options.allow_unisolated = std::env::var(ALLOW_UNISOLATED_ENV).as_deref() == Ok("1");
        options
    }
}

/// A running interpreter; dropping it stops the server and kills its sessions.
pub struct RunningInterpreter {
    addr: SocketAddr,
    isolation: IsolationReport,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    sweeper: tokio::task::JoinHandle<()>,
    pool: Arc<pool::Pool>,
    owned_work_root: Option<PathBuf>,
}

impl RunningInterpreter {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The pool endpoint to give a session client, e.g. `http://127.0.0.1:PORT/`.
    pub fn base_url(&self) -> reqwest::Url {
        reqwest::Url::parse(&format!("http://{}/", self.addr))
            .expect("a socket address is a valid host")
    }

    /// The isolation layers measured at start-up.
    pub fn isolation(&self) -> &IsolationReport {
        &self.isolation
    }

    /// Stops accepting requests, waits for the server, ends every session and removes the
    /// session directories.
    pub async fn shutdown(mut self) {
        if let Some(signal) = self.shutdown.take() {
            let _ = signal.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.sweeper.abort();
        self.pool.end_all().await;
        if let Some(root) = self.owned_work_root.take() {
            let _ = std::fs::remove_dir_all(root);
        }
        tracing::info!("local interpreter stopped");
    }
}

impl Drop for RunningInterpreter {
    fn drop(&mut self) {
        if let Some(signal) = self.shutdown.take() {
            let _ = signal.send(());
        }
        self.sweeper.abort();
        if let Some(root) = self.owned_work_root.take() {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

/// Starts the interpreter: plans and probes the sandbox, then serves on `options.listen`.
pub async fn serve(options: InterpreterOptions) -> Result<RunningInterpreter, InterpreterError> {
    startup::serve(options).await
}
