//! Resource limits for one session's processes, set between fork and exec.
//!
//! These are per-process rlimits, not a cgroup: a session may hold up to `processes` times
//! `memory_bytes` of address space, and its `/mnt/data` is bounded per file (`file_size_bytes`)
//! rather than in total. The machines this runs on offer no delegated cgroup v2 memory
//! controller; the process cap is what bounds the product.

use std::io;

/// Per-process resource limits applied to a session's sandbox (all its processes inherit them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceLimits {
    /// Address space per process, in bytes (`RLIMIT_AS`): a memory hog gets `MemoryError`.
    pub memory_bytes: u64,
    /// CPU seconds a session's process may use over its whole life (`RLIMIT_CPU` hard limit);
    /// the kernel lowers the soft limit to each execution's allowance.
    pub cpu_seconds: u64,
    /// Processes the sandbox's uid may have at once (`RLIMIT_NPROC`): stops a fork bomb.
    /// Enforced only for a non-root uid, which is why a root service runs each session under
    /// its own uid.
    pub processes: u64,
    /// Largest file a process may write, in bytes (`RLIMIT_FSIZE`); output capture files too.
    pub file_size_bytes: u64,
    /// Open file descriptors per process (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Size of the private `/tmp` of a sandbox, in bytes.
    pub tmp_bytes: u64,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 2 << 30,
            cpu_seconds: 1800,
            processes: 64,
            file_size_bytes: 64 << 20,
            open_files: 256,
            tmp_bytes: 256 << 20,
        }
    }
}

/// The limits as `(resource, value)` pairs, computed before fork so the child only calls
/// `setrlimit` (async-signal-safe).
pub(crate) fn rlimit_table(limits: &ResourceLimits, processes: u64) -> [(libc::c_int, u64); 6] {
    [
        (libc::RLIMIT_AS as libc::c_int, limits.memory_bytes),
        (libc::RLIMIT_CPU as libc::c_int, limits.cpu_seconds),
        (libc::RLIMIT_NPROC as libc::c_int, processes),
        (libc::RLIMIT_FSIZE as libc::c_int, limits.file_size_bytes),
        (libc::RLIMIT_NOFILE as libc::c_int, limits.open_files),
        (libc::RLIMIT_CORE as libc::c_int, 0),
    ]
}

/// Sets each limit, soft and hard alike. Called in the forked child: no allocation.
pub(crate) fn apply_rlimits(table: &[(libc::c_int, u64); 6]) -> io::Result<()> {
    for &(resource, value) in table {
        let limit = libc::rlimit {
            rlim_cur: value as libc::rlim_t,
            rlim_max: value as libc::rlim_t,
        };
        // SAFETY: setrlimit reads a valid, initialised struct.
        if unsafe { libc::setrlimit(resource as _, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// How many processes `uid` owns now, for a service that is not root: its sessions share the
/// service's uid, so their process budget is added on top of what the user already runs.
pub(crate) fn processes_of(uid: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|entry| {
            use std::os::unix::fs::MetadataExt;
            entry.metadata().map(|m| m.uid() == uid).unwrap_or(false)
        })
        .count() as u64
}
