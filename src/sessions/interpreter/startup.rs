//! Starting the interpreter: check the options, find the Python's directories, plan and probe
//! the sandbox, report the isolation, then serve.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::kernel::{KERNEL_SOURCE, Kernel};
use super::pool::{Pool, PoolSettings};
use super::routes::{AppState, normalize_path, router};
use super::sandbox::uids::UidClaim;
use super::sandbox::{self, IsolationReport, SandboxPlan, SessionSandbox};
use super::{InterpreterOptions, RunningInterpreter};

/// Why the interpreter did not start. None of these is retryable: each needs a change of
/// options or of the machine.
#[derive(Debug, thiserror::Error)]
pub enum InterpreterError {
    #[error("refusing to listen on {0}: the local interpreter serves loopback addresses only")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the Python interpreter {python} is not usable: {reason}")]
    Python { python: PathBuf, reason: String },
    #[error("cannot prepare the work directory {path}: {source}")]
    WorkRoot {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the sandbox does not start: {0}")]
    Sandbox(String),
    #[error(
        "no isolation layer works on this machine (missing: {missing}); refusing to run code. \
         Install bubblewrap, or set LOCAL_INTERPRETER_ALLOW_UNISOLATED=1 to run it unconfined"
    )]
    NoIsolation { missing: String },
}

impl InterpreterError {
    /// Always false: starting again with the same options fails the same way.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

pub(super) async fn serve(
    options: InterpreterOptions,
) -> Result<RunningInterpreter, InterpreterError> {
    if !options.listen.ip().is_loopback() {
        return Err(InterpreterError::NotLoopback(options.listen));
    }
    let python_dirs = python_dirs(&options.python).await?;
    let (work_root, owned) = prepare_work_root(options.work_root.as_deref())?;
    let kernel_path = work_root.join("kernel.py");
    write_readable(&kernel_path, KERNEL_SOURCE).map_err(|source| InterpreterError::WorkRoot {
        path: kernel_path.clone(),
        source,
    })?;

    let bwrap = options.use_bwrap.then(sandbox::find_bwrap).flatten();
    if options.use_bwrap && bwrap.is_none() {
        warn!("bubblewrap (bwrap) is not installed: sessions run without namespaces");
    }
    let plan = |bwrap| {
        SandboxPlan::new(
            bwrap,
            options.python.clone(),
            python_dirs.clone(),
            kernel_path.clone(),
            options.limits.clone(),
            options.use_seccomp,
            options.use_landlock,
        )
    };
    let mut chosen = plan(bwrap.clone());
    let mut isolation = match probe(&chosen, &options, &work_root).await {
        Ok(report) => report,
        Err(error) if chosen.bwrap.is_some() => {
            warn!(%error, "bubblewrap does not work here: sessions run without namespaces");
            chosen = plan(None);
            probe(&chosen, &options, &work_root).await?
        }
        Err(error) => return Err(error),
    };

    for layer in isolation.missing() {
        warn!(layer = layer.name, detail = %layer.detail, "isolation layer missing");
    }
    if !isolation.isolated {
        let missing = isolation
            .missing()
            .map(|l| l.name)
            .collect::<Vec<_>>()
            .join(", ");
        if !options.allow_unisolated {
            return Err(InterpreterError::NoIsolation { missing });
        }
        warn!("RUNNING UNTRUSTED CODE WITHOUT ISOLATION, as opted in");
        isolation.unisolated_opt_in = true;
    }

    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|source| InterpreterError::Bind {
            addr: options.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| InterpreterError::Bind {
            addr: options.listen,
            source,
        })?;

    let pool = Arc::new(Pool::new(
        Arc::new(chosen),
        PoolSettings {
            work_root,
            cooldown: options.cooldown,
            max_sessions: options.max_sessions.max(1),
            uid_base: options.sandbox_uid_base,
            uid_count: options.sandbox_uid_count.max(1),
            startup_timeout: STARTUP_TIMEOUT,
            spare_session: options.spare_session,
        },
    ));
    let sweeper = tokio::spawn({
        let pool = pool.clone();
        let every =
            (options.cooldown / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        async move {
            let mut ticks = tokio::time::interval(every);
            loop {
                ticks.tick().await;
                pool.expire_idle().await;
            }
        }
    });

    let state = Arc::new(AppState {
        pool: pool.clone(),
        isolation: isolation.clone(),
        default_timeout: options.default_timeout,
        max_output_chars: options.max_output_chars,
    });
    let app = tower::ServiceBuilder::new()
        .map_request(normalize_path)
        .service(router(state));
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let service = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
        let graceful = axum::serve(listener, service).with_graceful_shutdown(async {
            let _ = shutdown_rx.await;
        });
        if let Err(error) = graceful.await {
            warn!(%error, "local interpreter server failed");
        }
    });

    let active: Vec<&str> = isolation
        .layers
        .iter()
        .filter(|l| l.active)
        .map(|l| l.name)
        .collect();
    info!(%addr, python = %options.python.display(), active = ?active, "local interpreter started");
    Ok(RunningInterpreter {
        addr,
        isolation,
        shutdown: Some(shutdown_tx),
        server: Some(server),
        sweeper,
        pool,
        owned_work_root: owned,
    })
}

/// Starts one kernel in a throwaway session and measures its confinement.
async fn probe(
    plan: &SandboxPlan,
    options: &InterpreterOptions,
    work_root: &Path,
) -> Result<IsolationReport, InterpreterError> {
    let claim = match plan.host_root {
        true => Some(
            UidClaim::claim(options.sandbox_uid_base, options.sandbox_uid_count)
                .ok_or_else(|| InterpreterError::Sandbox("every sandbox uid is in use".into()))?,
        ),
        false => None,
    };
    // SAFETY: geteuid has no preconditions.
    let uid = claim
        .as_ref()
        .map_or_else(|| unsafe { libc::geteuid() }, UidClaim::uid);
    let workdir = work_root.join("probe");
    let _ = std::fs::remove_dir_all(&workdir);
    let prepared = std::fs::create_dir_all(workdir.join(".tmp")).and_then(|()| {
        if plan.host_root {
            std::os::unix::fs::chown(&workdir, Some(uid), Some(uid))?;
            std::os::unix::fs::chown(workdir.join(".tmp"), Some(uid), Some(uid))?;
        }
        Ok(())
    });
    prepared.map_err(|source| InterpreterError::WorkRoot {
        path: workdir.clone(),
        source,
    })?;

    let session = SessionSandbox {
        uid,
        workdir: workdir.clone(),
        processes: sandbox::limits::processes_of(uid) + plan.limits.processes,
    };
    let started = Kernel::start(plan, &session, STARTUP_TIMEOUT).await;
    let report = match started {
        Ok((mut kernel, ready)) => {
            kernel.kill().await;
            Ok(sandbox::measure(plan, &ready))
        }
        Err(error) => Err(InterpreterError::Sandbox(error.to_string())),
    };
    let _ = std::fs::remove_dir_all(&workdir);
    report
}

/// The interpreter's prefix, base prefix and real executable's directory, which a sandbox
/// must show it.
async fn python_dirs(python: &Path) -> Result<Vec<PathBuf>, InterpreterError> {
    let failed = |reason: String| InterpreterError::Python {
        python: python.to_path_buf(),
        reason,
    };
    let output = tokio::process::Command::new(python)
        .args([
            "-I",
            "-c",
            "import sys, json; print(json.dumps([sys.prefix, sys.base_prefix]))",
        ])
        .env_clear()
        .output()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !output.status.success() {
        return Err(failed(format!("it exited with {}", output.status)));
    }
    let mut dirs: Vec<PathBuf> =
        serde_json::from_slice(&output.stdout).map_err(|e| failed(e.to_string()))?;
    if let Some(real_dir) = std::fs::canonicalize(python)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        dirs.push(real_dir);
    }
    Ok(dirs)
}

fn prepare_work_root(
    configured: Option<&Path>,
) -> Result<(PathBuf, Option<PathBuf>), InterpreterError> {
    use std::os::unix::fs::PermissionsExt;
    let (root, owned) = match configured {
        Some(path) => (path.to_path_buf(), false),
        None => (
            std::env::temp_dir().join(format!(
                "evalgate-interpreter-{}",
                uuid::Uuid::new_v4().simple()
            )),
            true,
        ),
    };
    // Sandbox uids must traverse it to reach their own directories, but not list it.
    std::fs::create_dir_all(&root)
        .and_then(|()| std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o711)))
        .map_err(|source| InterpreterError::WorkRoot {
            path: root.clone(),
            source,
        })?;
    Ok((root.clone(), owned.then_some(root)))
}

fn write_readable(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
}
