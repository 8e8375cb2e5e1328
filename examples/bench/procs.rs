//! The processes a benchmark measures: `handler` in its modes, started as children, read from
//! `/proc` (resident memory, CPU time) and killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A child process that is killed when it goes out of scope.
pub struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Proc {
    /// Starts `command` with stdout piped (stderr discarded: logs are not measured output).
    pub fn spawn(mut command: Command) -> anyhow::Result<Proc> {
        command
            .env_remove("WEBSITE_INSTANCE_ID")
            .env_remove("WEBSITE_SITE_NAME")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn().context("cannot start the process")?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Proc { child, lines })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The rest of the first stdout line that starts with `prefix`, within `limit`.
    pub fn line_after(&self, prefix: &str, limit: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .with_context(|| format!("no line starting with {prefix:?} in {limit:?}"))?;
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok(rest.trim().to_owned());
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `handler dev` on `port`, with its data in `data_dir`; returns it with its API base URL.
pub fn dev(handler: &Path, data_dir: &Path, port: u16) -> anyhow::Result<(Proc, String)> {
    let mut command = Command::new(handler);
    command
        .args(["dev", "--port", &port.to_string()])
        .args(["--taskhub-listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir);
    let proc = Proc::spawn(command)?;
    let api = proc.line_after("api: ", Duration::from_secs(60))?;
    Ok((proc, api))
}

/// `handler taskhub` on a free port with its data in `data_dir`; returns it with its address.
pub fn taskhub(handler: &Path, data_dir: &Path) -> anyhow::Result<(Proc, String)> {
    let mut command = Command::new(handler);
    command
        .args(["taskhub", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir);
    let proc = Proc::spawn(command)?;
    let addr = proc.line_after("LISTENING ", Duration::from_secs(30))?;
    Ok((proc, addr))
}

/// `handler interpreter` on a free port; returns it with its URL.
pub fn interpreter(handler: &Path) -> anyhow::Result<(Proc, String)> {
    let mut command = Command::new(handler);
    command.args(["interpreter", "--listen", "127.0.0.1:0"]);
    let proc = Proc::spawn(command)?;
    let url = proc.line_after("local interpreter listening on ", Duration::from_secs(30))?;
    Ok((proc, url))
}

/// The command of `handler` in serve mode on `port`, pointed at a task hub and a pool.
pub fn serve_command(handler: &Path, port: u16, hub: &str, pool: &str) -> Command {
    let mut command = Command::new(handler);
    command
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env(
            "DURABLE_TASK_SCHEDULER_CONNECTION_STRING",
            format!("Endpoint=http://{hub};TaskHub=default;Authentication=None"),
        )
        .env("SESSION_POOL_URL", pool);
    command
}

/// Resident memory of one process, in KiB: (current, peak).
pub fn rss_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
    };
    match (field("VmRSS:"), field("VmHWM:")) {
        (Some(rss), Some(peak)) => Ok((rss, peak)),
        _ => bail!("no VmRSS/VmHWM for pid {pid}"),
    }
}

/// Resident memory of a process and every descendant, in KiB (the interpreter's Python kernels
/// are children of `handler dev`).
pub fn tree_rss_kib(pid: u32) -> u64 {
    descendants(pid)
        .into_iter()
        .chain(std::iter::once(pid))
        .filter_map(|p| rss_kib(p).ok().map(|(rss, _)| rss))
        .sum()
}

fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if let Some(ppid) = stat_fields(pid).and_then(|f| f.get(1).and_then(|p| p.parse().ok()))
            {
                parents.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// The fields of `/proc/<pid>/stat` after the command name: state, ppid, ...
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// CPU seconds used by a process and its waited-for children (user + system).
pub fn cpu_seconds(pid: u32) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let Some(fields) = stat_fields(pid) else {
        return 0.0;
    };
    // After the name: utime, stime, cutime, cstime are fields 12..=15 (0-based from state).
    let sum: f64 = fields[11..15]
        .iter()
        .filter_map(|v| v.parse::<f64>().ok())
        .sum();
    sum / ticks
}

/// CPU time of a process tree whose members come and go: a Python kernel dies with its sandbox
/// when its session ends, and its time mostly does not reach the handler's `cutime` (the
/// handler's own `cutime` showed under half of the tree's CPU). Each sample records every live
/// member's own time; a member's last sample stands for it once it is gone.
#[derive(Default)]
pub struct TreeCpu {
    seen: std::collections::HashMap<u32, f64>,
}

impl TreeCpu {
    /// Records the CPU seconds of `root` and its live descendants so far.
    pub fn sample(&mut self, root: u32) {
        for pid in descendants(root).into_iter().chain(std::iter::once(root)) {
            let cpu = cpu_seconds(pid);
            let entry = self.seen.entry(pid).or_insert(0.0);
            *entry = entry.max(cpu);
        }
    }

    /// The CPU seconds of every member ever sampled.
    pub fn total(&self) -> f64 {
        self.seen.values().sum()
    }

    /// The CPU seconds of one member.
    pub fn of(&self, pid: u32) -> f64 {
        self.seen.get(&pid).copied().unwrap_or(0.0)
    }
}

/// The 1-minute load average, to show how busy the shared machine was.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}

/// The `handler` next to this example in the same target directory.
pub fn default_handler() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let dir = exe
        .parent()
        .and_then(|examples| examples.parent())
        .expect("target/<profile>/examples");
    dir.join("handler")
}
