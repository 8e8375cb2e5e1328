//! The sandbox a session's kernel runs in: planned once at start-up, measured by a probe.
//!
//! The plan chooses the layers this machine offers (bubblewrap namespaces, an unprivileged uid
//! per session, resource limits, seccomp, Landlock). The probe starts one kernel and reads what
//! the kernel measured from inside (uid, capabilities, no-new-privs, seccomp mode, Landlock ABI,
//! limits); the resulting [`IsolationReport`] is logged and served by the status endpoint.

pub(crate) mod command;
pub mod limits;
mod report;
mod seccomp;
pub(crate) mod uids;

use std::path::{Path, PathBuf};

pub use limits::ResourceLimits;
pub(crate) use report::measure;
pub use report::{IsolationLayer, IsolationReport};

/// What every session's sandbox is made of, decided once by [`SandboxPlan::new`].
#[derive(Debug, Clone)]
pub(crate) struct SandboxPlan {
    /// bubblewrap, when installed and not disabled.
    pub bwrap: Option<PathBuf>,
    /// The Python interpreter, as the user named it.
    pub python: PathBuf,
    /// Directories outside `/usr` that the interpreter needs (a virtual environment, its base).
    pub python_binds: Vec<PathBuf>,
    /// The kernel script on the host, readable by every sandbox uid.
    pub kernel_path: PathBuf,
    /// The root's top-level links (`/lib` → `usr/lib`), or directories to bind when not links.
    pub root_links: Vec<(PathBuf, Option<PathBuf>)>,
    /// The seccomp program: raw bytes for bwrap, and the program for direct starts.
    pub seccomp: Option<Vec<u8>>,
    pub seccomp_program: Option<seccompiler::BpfProgram>,
    /// Whether the kernel applies Landlock (the kernel reports whether it held).
    pub landlock: bool,
    /// The service runs as root: each session then runs under its own unprivileged uid.
    pub host_root: bool,
    pub limits: ResourceLimits,
}

/// The per-session part of a sandbox: its host uid and its working directory.
#[derive(Debug, Clone)]
pub(crate) struct SessionSandbox {
    pub uid: u32,
    pub workdir: PathBuf,
    /// The `RLIMIT_NPROC` value for this session's uid.
    pub processes: u64,
}

impl SandboxPlan {
    /// Plans the sandbox: bubblewrap when `bwrap` names it, the interpreter's directories, the
    /// root's layout, and the seccomp filter and Landlock when wanted and available.
    pub fn new(
        bwrap: Option<PathBuf>,
        python: PathBuf,
        python_dirs: Vec<PathBuf>,
        kernel_path: PathBuf,
        limits: ResourceLimits,
        use_seccomp: bool,
        use_landlock: bool,
    ) -> Self {
        let program = use_seccomp.then(seccomp::compile).flatten();
        let python_binds = python_dirs
            .into_iter()
            .filter(|dir| !dir.starts_with("/usr"))
            .fold(Vec::<PathBuf>::new(), |mut kept, dir| {
                if !kept.iter().any(|k| dir.starts_with(k)) {
                    kept.retain(|k| !k.starts_with(&dir));
                    kept.push(dir);
                }
                kept
            });
        Self {
            bwrap,
            python,
            python_binds,
            kernel_path,
            root_links: root_links(),
            seccomp: program.as_ref().map(seccomp::to_bytes),
            seccomp_program: program,
            landlock: use_landlock && landlock_abi() > 0,
            // SAFETY: geteuid has no preconditions.
            host_root: unsafe { libc::geteuid() } == 0,
            limits,
        }
    }
}

/// Finds `bwrap` on the service's PATH.
pub(crate) fn find_bwrap() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("bwrap"))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The Landlock ABI version this kernel offers, 0 when it has none.
pub(crate) fn landlock_abi() -> i64 {
    const CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a null attribute and size 0 the call only returns the ABI version.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    abi.max(0)
}

fn root_links() -> Vec<(PathBuf, Option<PathBuf>)> {
    ["/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin"]
        .into_iter()
        .map(PathBuf::from)
        .filter_map(|path| match std::fs::read_link(&path) {
            Ok(target) => Some((path, Some(target))),
            Err(_) if path.is_dir() => Some((path, None)),
            Err(_) => None,
        })
        .collect()
}
