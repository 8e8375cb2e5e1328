//! The session pool: one kernel per session identifier, kept until its cooldown runs out.
//!
//! As in Azure, the first execution with a new identifier allocates the session and its state
//! lives until the session has been idle for the cooldown. A session whose execution overran
//! its deadline, left processes behind or whose interpreter died is torn down at once: the
//! next call with that identifier gets a fresh session.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::allocate::{Spare, allocate};
use super::kernel::{Kernel, KernelError, KernelRequest};
use super::outcome::{Outcome, OutcomeStatus, failure, outcome};
use super::sandbox::uids::UidClaim;
use super::sandbox::{SandboxPlan, SessionSandbox};

/// How the pool sizes and ages its sessions.
#[derive(Debug, Clone)]
pub(crate) struct PoolSettings {
    pub work_root: PathBuf,
    pub cooldown: Duration,
    pub max_sessions: usize,
    pub uid_base: u32,
    pub uid_count: u32,
    pub startup_timeout: Duration,
    pub spare_session: bool,
}

/// Why the pool could not run an execution at all; both are worth retrying.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PoolError {
    /// Every session is busy, or no sandbox uid or directory is free.
    #[error("no session can be allocated now ({0} live)")]
    Full(usize),
    /// The session's sandbox did not start.
    #[error("the session did not start: {0}")]
    StartFailed(String),
}

/// A live session's times, as `GET /session` reports them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionInfo {
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_accessed_at: chrono::DateTime<chrono::Utc>,
    pub expire_at: chrono::DateTime<chrono::Utc>,
}

struct Session {
    sandbox: SessionSandbox,
    /// Holds the session's uid while the session lives (root service only).
    _uid: Option<UidClaim>,
    kernel: tokio::sync::Mutex<Option<Kernel>>,
    last_used: Mutex<Instant>,
    /// Set once the session is being torn down; it never runs code again.
    ended: AtomicBool,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// All live sessions of one interpreter.
pub(crate) struct Pool {
    plan: Arc<SandboxPlan>,
    settings: PoolSettings,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    spare: Arc<Spare>,
}

impl Pool {
    /// A pool, with its spare session starting in the background.
    pub fn new(plan: Arc<SandboxPlan>, settings: PoolSettings) -> Self {
        let spare = Arc::new(Spare::new(
            plan.clone(),
            settings.work_root.clone(),
            (settings.uid_base, settings.uid_count),
            settings.startup_timeout,
        ));
        if settings.spare_session {
            spare.refill();
        }
        Self {
            plan,
            settings,
            sessions: Mutex::new(HashMap::new()),
            spare,
        }
    }

    /// Whether a pre-started session is ready for the next new identifier.
    pub fn spare_ready(&self) -> bool {
        self.spare.is_ready()
    }

    /// Runs `code` in the session named `identifier`, allocating it on first use.
    pub async fn execute(
        &self,
        identifier: &str,
        code: &str,
        timeout: Duration,
        max_output: usize,
    ) -> Result<Outcome, PoolError> {
        // A session may be ended (evicted, cooled down) while this request waits for it.
        loop {
            let session = self.session(identifier).await?;
            let kernel = session.kernel.lock().await;
            if !session.ended.load(Ordering::SeqCst) {
                return self
                    .run_locked(identifier, &session, kernel, code, timeout, max_output)
                    .await;
            }
        }
    }

    /// Runs `code` in `session`, whose kernel the caller has locked.
    async fn run_locked(
        &self,
        identifier: &str,
        session: &Arc<Session>,
        mut kernel: tokio::sync::MutexGuard<'_, Option<Kernel>>,
        code: &str,
        timeout: Duration,
        max_output: usize,
    ) -> Result<Outcome, PoolError> {
        *session.last_used.lock().expect("lock") = Instant::now();

        if kernel.is_none() {
            match Kernel::start(&self.plan, &session.sandbox, self.settings.startup_timeout).await {
                Ok((started, _)) => *kernel = Some(started),
                Err(error) => {
                    warn!(session.id = identifier, %error, "session failed to start");
                    drop(kernel);
                    self.end(identifier, session).await;
                    return Err(PoolError::StartFailed(error.to_string()));
                }
            }
        }

        let request = KernelRequest {
            code,
            timeout: timeout.as_secs_f64(),
            max_output,
        };
        // The kernel interrupts the code itself at `timeout`; the deadline catches code that
        // does not let itself be interrupted.
        let deadline = timeout + Duration::from_secs(3);
        let started = Instant::now();
        let reply = kernel
            .as_mut()
            .expect("started")
            .execute(&request, deadline)
            .await;
        *session.last_used.lock().expect("lock") = Instant::now();
        drop(kernel);

        match reply {
            Ok(reply) => {
                if !reply.clean {
                    warn!(
                        session.id = identifier,
                        "processes survived cleanup; ending the session"
                    );
                    self.end(identifier, session).await;
                }
                Ok(outcome(reply))
            }
            Err(error) => {
                // A kernel that died after its allowance was stopped by its CPU limit.
                let overran = started.elapsed() >= timeout;
                debug!(session.id = identifier, %error, "ending the session");
                self.end(identifier, session).await;
                Ok(match error {
                    KernelError::Deadline | KernelError::Exited if overran => Outcome {
                        status: OutcomeStatus::TimedOut,
                        ..failure(
                            "ExecutionTimeout",
                            "execution timed out; the session was ended".into(),
                        )
                    },
                    other => failure("SessionTerminated", other.to_string()),
                })
            }
        }
    }

    /// Ends the named session, if it exists. Returns whether it did.
    pub async fn delete(&self, identifier: &str) -> bool {
        let session = self.sessions.lock().expect("lock").get(identifier).cloned();
        match session {
            Some(session) => {
                self.end(identifier, &session).await;
                true
            }
            None => false,
        }
    }

    /// When a live session was created, last used, and will expire if left idle.
    pub fn info(&self, identifier: &str) -> Option<SessionInfo> {
        let session = self
            .sessions
            .lock()
            .expect("lock")
            .get(identifier)
            .cloned()?;
        let idle = session.last_used.lock().expect("lock").elapsed();
        let now = chrono::Utc::now();
        let last_accessed_at = now - chrono::Duration::from_std(idle).unwrap_or_default();
        let cooldown = chrono::Duration::from_std(self.settings.cooldown).unwrap_or_default();
        Some(SessionInfo {
            created_at: session.created_at,
            last_accessed_at,
            expire_at: last_accessed_at + cooldown,
        })
    }

    /// Ends every session idle for longer than the cooldown.
    pub async fn expire_idle(&self) {
        let cooldown = self.settings.cooldown;
        let idle: Vec<(String, Arc<Session>)> = self
            .sessions
            .lock()
            .expect("lock")
            .iter()
            .filter(|(_, s)| s.last_used.lock().expect("lock").elapsed() >= cooldown)
            .map(|(id, s)| (id.clone(), s.clone()))
            .collect();
        for (identifier, session) in idle {
            debug!(session.id = %identifier, "session cooled down");
            self.end(&identifier, &session).await;
        }
    }

    /// Ends every session and the spare; used at shutdown.
    pub async fn end_all(&self) {
        self.spare.close().await;
        let all: Vec<(String, Arc<Session>)> =
            self.sessions.lock().expect("lock").drain().collect();
        for (identifier, session) in all {
            self.end(&identifier, &session).await;
        }
    }

    async fn session(&self, identifier: &str) -> Result<Arc<Session>, PoolError> {
        loop {
            let evicted = {
                let mut sessions = self.sessions.lock().expect("lock");
                if let Some(session) = sessions.get(identifier) {
                    return Ok(session.clone());
                }
                if sessions.len() < self.settings.max_sessions {
                    let session =
                        Arc::new(self.new_session().ok_or(PoolError::Full(sessions.len()))?);
                    sessions.insert(identifier.to_string(), session.clone());
                    return Ok(session);
                }
                // Full: make room by ending the least recently used idle session, tearing it
                // down off this request's path.
                let oldest = sessions
                    .iter()
                    .filter(|(_, s)| s.kernel.try_lock().is_ok())
                    .min_by_key(|(_, s)| *s.last_used.lock().expect("lock"))
                    .map(|(id, _)| id.clone())
                    .ok_or(PoolError::Full(self.settings.max_sessions))?;
                sessions.remove(&oldest).expect("present")
            };
            tokio::spawn(teardown(self.plan.clone(), evicted));
        }
    }

    /// A session from the spare when one is ready, else a sandbox whose kernel starts on
    /// first use.
    fn new_session(&self) -> Option<Session> {
        let spare = self
            .settings
            .spare_session
            .then(|| self.spare.take())
            .flatten();
        let (allocated, kernel) = match spare {
            Some(prepared) => (prepared.allocated, Some(prepared.kernel)),
            None => {
                let (base, count) = (self.settings.uid_base, self.settings.uid_count);
                (
                    allocate(&self.plan, &self.settings.work_root, base, count)?,
                    None,
                )
            }
        };
        Some(Session {
            sandbox: allocated.sandbox,
            _uid: allocated.claim,
            kernel: tokio::sync::Mutex::new(kernel),
            last_used: Mutex::new(Instant::now()),
            ended: AtomicBool::new(false),
            created_at: chrono::Utc::now(),
        })
    }

    async fn end(&self, identifier: &str, session: &Arc<Session>) {
        {
            let mut sessions = self.sessions.lock().expect("lock");
            if sessions
                .get(identifier)
                .is_some_and(|s| Arc::ptr_eq(s, session))
            {
                sessions.remove(identifier);
            }
        }
        teardown(self.plan.clone(), session.clone()).await;
    }
}

/// Kills a session's sandbox and removes its directory; its uid is freed when the last
/// reference to the session goes.
async fn teardown(plan: Arc<SandboxPlan>, session: Arc<Session>) {
    session.ended.store(true, Ordering::SeqCst);
    if let Some(mut kernel) = session.kernel.lock().await.take() {
        kernel.kill().await;
    }
    if plan.bwrap.is_none() && plan.host_root {
        kill_processes_of(session.sandbox.uid);
    }
    if let Err(error) = std::fs::remove_dir_all(&session.sandbox.workdir)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        warn!(%error, "cannot remove a session directory");
    }
}

/// Without a pid namespace, a session's leftovers are found by their uid and killed.
fn kill_processes_of(uid: u32) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if entry.metadata().is_ok_and(|m| m.uid() == uid) {
            // SAFETY: signalling a pid has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    debug!(uid, "swept the processes of a session uid");
}
