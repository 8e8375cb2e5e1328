//! Allocating a session: its host uid and directory, and one pre-started spare.
//!
//! Like a pre-warmed Azure pool, the interpreter keeps one session's sandbox and kernel started
//! ahead of need, so a new identifier gets a running kernel at once; taking the spare starts
//! the next one in the background.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{debug, warn};

use super::kernel::Kernel;
use super::sandbox::limits::processes_of;
use super::sandbox::uids::UidClaim;
use super::sandbox::{SandboxPlan, SessionSandbox};

/// A session's sandbox before any identifier is given to it.
pub(crate) struct Allocated {
    pub sandbox: SessionSandbox,
    /// Holds the uid while the session lives (root service only).
    pub claim: Option<UidClaim>,
}

/// Claims a uid (when root) and makes the session's directory under `work_root`.
pub(crate) fn allocate(
    plan: &SandboxPlan,
    work_root: &Path,
    uid_base: u32,
    uid_count: u32,
) -> Option<Allocated> {
    let (claim, uid, processes) = if plan.host_root {
        let claim = UidClaim::claim(uid_base, uid_count)?;
        let uid = claim.uid();
        (Some(claim), uid, plan.limits.processes)
    } else {
        // SAFETY: geteuid has no preconditions.
        let uid = unsafe { libc::geteuid() };
        (None, uid, processes_of(uid) + plan.limits.processes)
    };

    let workdir = work_root.join(format!("{uid}-{}", uuid::Uuid::new_v4().simple()));
    if let Err(error) = prepare_workdir(&workdir, uid, plan.host_root, plan.bwrap.is_none()) {
        warn!(%error, "cannot create a session directory");
        return None;
    }
    Some(Allocated {
        sandbox: SessionSandbox {
            uid,
            workdir,
            processes,
        },
        claim,
    })
}

/// The session's directory, and inside it a private `/tmp` when no mount namespace gives one.
fn prepare_workdir(
    workdir: &Path,
    uid: u32,
    chown: bool,
    private_tmp: bool,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut dirs = vec![workdir.to_path_buf()];
    if private_tmp {
        dirs.push(workdir.join(".tmp"));
    }
    for dir in dirs {
        std::fs::create_dir(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        if chown {
            std::os::unix::fs::chown(&dir, Some(uid), Some(uid))?;
        }
    }
    Ok(())
}

/// A started session waiting for its identifier.
pub(crate) struct Prepared {
    pub allocated: Allocated,
    pub kernel: Kernel,
}

/// The one spare session, refilled in the background after each take.
pub(crate) struct Spare {
    slot: Mutex<Option<Prepared>>,
    filling: AtomicBool,
    closed: AtomicBool,
    plan: Arc<SandboxPlan>,
    work_root: PathBuf,
    uids: (u32, u32),
    startup_timeout: Duration,
}

impl Spare {
    pub fn new(
        plan: Arc<SandboxPlan>,
        work_root: PathBuf,
        uids: (u32, u32),
        startup_timeout: Duration,
    ) -> Self {
        Self {
            slot: Mutex::new(None),
            filling: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            plan,
            work_root,
            uids,
            startup_timeout,
        }
    }

    /// Takes the spare if one is ready, and starts preparing the next.
    pub fn take(self: &Arc<Self>) -> Option<Prepared> {
        let taken = self.slot.lock().expect("lock").take();
        self.refill();
        taken
    }

    /// Whether a spare is ready now.
    pub fn is_ready(&self) -> bool {
        self.slot.lock().expect("lock").is_some()
    }

    /// Starts a spare in the background unless one is ready or on its way. Runs on the
    /// runtime's own threads (see the sandbox's death-with-parent).
    pub fn refill(self: &Arc<Self>) {
        if self.closed.load(Ordering::SeqCst)
            || self.is_ready()
            || self.filling.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let spare = self.clone();
        tokio::spawn(async move {
            let prepared = spare.prepare().await;
            let mut slot = spare.slot.lock().expect("lock");
            match prepared {
                Some(prepared) if !spare.closed.load(Ordering::SeqCst) => *slot = Some(prepared),
                Some(prepared) => drop(prepared),
                None => debug!("the spare session did not start"),
            }
            spare.filling.store(false, Ordering::SeqCst);
        });
    }

    async fn prepare(&self) -> Option<Prepared> {
        let (base, count) = self.uids;
        let allocated = allocate(&self.plan, &self.work_root, base, count)?;
        match Kernel::start(&self.plan, &allocated.sandbox, self.startup_timeout).await {
            Ok((kernel, _)) => Some(Prepared { allocated, kernel }),
            Err(error) => {
                warn!(%error, "the spare session failed to start");
                let _ = std::fs::remove_dir_all(&allocated.sandbox.workdir);
                None
            }
        }
    }

    /// Stops refilling and kills the spare, if any.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let spare = self.slot.lock().expect("lock").take();
        if let Some(mut prepared) = spare {
            prepared.kernel.kill().await;
            let _ = std::fs::remove_dir_all(&prepared.allocated.sandbox.workdir);
        }
    }
}
