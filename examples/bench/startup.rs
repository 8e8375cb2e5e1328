//! Process start to the first `200` from `GET /`, and resident memory once idle.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::procs::{self, Proc};

/// How long a start may take before the benchmark gives up.
const START_LIMIT: Duration = Duration::from_secs(60);

/// Whether `GET /` on `port` answers 200 now.
fn ready(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// Starts `command` and returns it once `GET /` on `port` answers, with the time that took.
pub fn time_to_ready(command: Command, port: u16) -> anyhow::Result<(Proc, Duration)> {
    let started = Instant::now();
    let proc = Proc::spawn(command)?;
    while !ready(port) {
        if started.elapsed() > START_LIMIT {
            bail!("GET / on port {port} never answered 200");
        }
        // Polling granularity: a connection refused costs microseconds, so this bounds the error.
        std::thread::sleep(Duration::from_micros(500));
    }
    Ok((proc, started.elapsed()))
}

/// The command of `handler dev` on `port` with a fresh data directory under `scratch`.
pub fn dev_command(handler: &Path, scratch: &Path, port: u16, run: usize) -> Command {
    let mut command = Command::new(handler);
    command
        .args(["dev", "--port", &port.to_string()])
        .args(["--taskhub-listen", "127.0.0.1:0", "--data-dir"])
        .arg(scratch.join(format!("dev-{run}")));
    command
}

/// What `measure` found for one mode.
pub struct StartupReport {
    /// Start to first 200, per run, in milliseconds.
    pub ready_ms: Vec<f64>,
    /// Resident memory of the process (not its children) after `settle`, in KiB, per run.
    pub idle_rss_kib: Vec<f64>,
}

/// Starts a process `runs` times with `make(run, port)`, timing readiness and reading the
/// resident memory after `settle`.
pub fn measure(
    runs: usize,
    settle: Duration,
    mut make: impl FnMut(usize, u16) -> Command,
) -> anyhow::Result<StartupReport> {
    let mut report = StartupReport {
        ready_ms: Vec::new(),
        idle_rss_kib: Vec::new(),
    };
    for run in 0..runs {
        let port = procs::free_port();
        let (proc, took) = time_to_ready(make(run, port), port)?;
        report.ready_ms.push(took.as_secs_f64() * 1000.0);
        std::thread::sleep(settle);
        let (rss, _) = procs::rss_kib(proc.pid())?;
        report.idle_rss_kib.push(rss as f64);
    }
    Ok(report)
}
