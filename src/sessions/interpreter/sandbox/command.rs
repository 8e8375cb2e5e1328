//! Building the command that starts one session's kernel inside its sandbox.
//!
//! With bubblewrap: every namespace, a new session, death with the parent, every capability
//! dropped, `/usr` read-only, a private `/tmp` and `/dev`, the session's directory at
//! `/mnt/data`, a cleared environment and the seccomp filter. Before exec the child calls
//! `setsid`, drops to the session's unprivileged host uid when the service is root (so bwrap
//! never holds host root, and `RLIMIT_NPROC` applies), then sets the resource limits.
//!
//! bubblewrap's death-with-parent follows the *thread* that spawned it, so sessions are spawned
//! from the async task serving the request (a runtime worker, alive as long as the runtime),
//! never from `spawn_blocking`, whose idle threads exit and would take sessions with them.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::limits::{apply_rlimits, rlimit_table};
use super::{SandboxPlan, SessionSandbox};

/// Inside the sandbox: the kernel script, and the working directory ACA sessions use.
pub(crate) const KERNEL_IN_SANDBOX: &str = "/opt/evalgate/kernel.py";
pub(crate) const WORKDIR_IN_SANDBOX: &str = "/mnt/data";
/// The descriptor number the seccomp program is handed to bwrap on.
const SECCOMP_FD: libc::c_int = 200;

const ENVIRONMENT: &[(&str, &str)] = &[
    ("PATH", "/usr/local/bin:/usr/bin:/bin"),
    ("LANG", "C.UTF-8"),
    ("OPENBLAS_NUM_THREADS", "1"),
    ("OMP_NUM_THREADS", "1"),
    ("MKL_NUM_THREADS", "1"),
    ("MPLBACKEND", "Agg"),
];

/// The command for one session, and the seccomp descriptor it must keep open until spawned.
pub(crate) fn build(plan: &SandboxPlan, session: &SessionSandbox) -> (Command, Option<OwnedFd>) {
    let seccomp_fd = plan
        .seccomp
        .as_deref()
        .and_then(|bytes| memfd_with(bytes).ok());
    let mut command = match &plan.bwrap {
        Some(bwrap) => bwrap_command(bwrap, plan, session, seccomp_fd.is_some()),
        None => direct_command(plan, session),
    };
    command
        .env_clear()
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);

    let rlimits = rlimit_table(&plan.limits, session.processes);
    let drop_to = plan.host_root.then_some(session.uid);
    let raw_seccomp = seccomp_fd.as_ref().map(|fd| fd.as_raw_fd());
    let direct_filter = plan
        .bwrap
        .is_none()
        .then(|| plan.seccomp_program.clone())
        .flatten();
    // SAFETY: the closure only makes async-signal-safe calls (dup2, fcntl, setsid, setgroups,
    // setgid, setuid, setrlimit, prctl, seccomp) on data prepared before the fork.
    unsafe {
        command.pre_exec(move || {
            if let Some(fd) = raw_seccomp {
                if fd == SECCOMP_FD {
                    libc::fcntl(fd, libc::F_SETFD, 0);
                } else if libc::dup2(fd, SECCOMP_FD) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(uid) = drop_to
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(uid) != 0
                    || libc::setuid(uid) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            apply_rlimits(&rlimits)?;
            if let Some(filter) = &direct_filter {
                seccompiler::apply_filter(filter).map_err(std::io::Error::other)?;
            }
            Ok(())
        });
    }
    (command, seccomp_fd)
}

fn bwrap_command(
    bwrap: &Path,
    plan: &SandboxPlan,
    session: &SessionSandbox,
    with_seccomp: bool,
) -> Command {
    let mut command = Command::new(bwrap);
    command.args([
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--cap-drop",
        "ALL",
        "--hostname",
        "sandbox",
        "--ro-bind",
        "/usr",
        "/usr",
    ]);
    for (link, target) in &plan.root_links {
        match target {
            Some(target) => command.arg("--symlink").arg(target).arg(link),
            None => command.arg("--ro-bind").arg(link).arg(link),
        };
    }
    for path in &plan.python_binds {
        command.arg("--ro-bind").arg(path).arg(path);
    }
    command.args(["--proc", "/proc", "--dev", "/dev", "--size"]);
    command
        .arg(plan.limits.tmp_bytes.to_string())
        .args(["--tmpfs", "/tmp"]);
    command
        .arg("--bind")
        .arg(&session.workdir)
        .arg(WORKDIR_IN_SANDBOX);
    command
        .arg("--ro-bind")
        .arg(&plan.kernel_path)
        .arg(KERNEL_IN_SANDBOX);
    for (name, value) in ENVIRONMENT {
        command.args(["--setenv", name, value]);
    }
    command.args([
        "--setenv",
        "HOME",
        WORKDIR_IN_SANDBOX,
        "--chdir",
        WORKDIR_IN_SANDBOX,
    ]);
    if with_seccomp {
        command.args(["--seccomp", &SECCOMP_FD.to_string()]);
    }

    let config = kernel_config(plan, WORKDIR_IN_SANDBOX.into(), "/tmp".into(), true);
    command
        .arg("--")
        .arg(&plan.python)
        .args(["-I", KERNEL_IN_SANDBOX]);
    command.arg(config);
    command
}

/// Without bubblewrap: the kernel runs on the host's filesystem view, confined by the uid,
/// the limits, seccomp (applied in `pre_exec`) and Landlock (applied by the kernel itself).
fn direct_command(plan: &SandboxPlan, session: &SessionSandbox) -> Command {
    let data = session.workdir.clone();
    let tmp = session.workdir.join(".tmp");
    let mut command = Command::new(&plan.python);
    command.arg("-I").arg(&plan.kernel_path);
    command.arg(kernel_config(plan, data.clone(), tmp, plan.host_root));
    command
        .envs(ENVIRONMENT.iter().copied())
        .env("HOME", &data)
        .current_dir(&data);
    command
}

fn kernel_config(
    plan: &SandboxPlan,
    workdir: PathBuf,
    tmp: PathBuf,
    kill_others: bool,
) -> OsString {
    let landlock = plan.landlock.then(|| {
        let (read_only, read_write): (Vec<PathBuf>, Vec<PathBuf>) = if plan.bwrap.is_some() {
            (
                vec!["/".into()],
                vec![workdir.clone(), tmp.clone(), "/dev".into()],
            )
        } else {
            let mut read_only: Vec<PathBuf> = ["/usr", "/lib", "/lib64", "/bin", "/proc"]
                .map(PathBuf::from)
                .into();
            read_only.extend(plan.python_binds.iter().cloned());
            read_only.push(plan.kernel_path.clone());
            (
                read_only,
                vec![workdir.clone(), tmp.clone(), "/dev/null".into()],
            )
        };
        serde_json::json!({ "readOnly": read_only, "readWrite": read_write })
    });
    serde_json::json!({
        "workdir": workdir,
        "captureDir": tmp,
        "killOthers": kill_others,
        "landlock": landlock,
    })
    .to_string()
    .into()
}

/// An anonymous in-memory file holding `bytes`, positioned at the start.
fn memfd_with(bytes: &[u8]) -> std::io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name and valid flags; the result is checked before use.
    let raw = unsafe { libc::memfd_create(c"evalgate-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut file = std::fs::File::from(fd);
    std::io::Write::write_all(&mut file, bytes)?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))?;
    Ok(file.into())
}
