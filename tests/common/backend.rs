//! The durabletask in-memory backend as a child process on 127.0.0.1, and Python SDK scripts.
//!
//! [`Backend::start`] runs `tests/support/inmemory_backend.py`, reads the port from its
//! `LISTENING <port>` line and kills the process on drop. [`Script`] runs any other script of
//! `tests/support/` the same way, and [`run_script`] runs one to completion.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::python::python_with;

/// How long a script may take to print its readiness line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The path of a script in `tests/support/`.
pub fn support_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// A running in-memory backend. Killed when dropped.
pub struct Backend {
    python: PathBuf,
    port: u16,
    process: Script,
}

impl Backend {
    /// Starts a backend on a port the OS picks. `None` when Python tests are opted out;
    /// panics with an install hint when the durabletask package is missing.
    pub fn start() -> Option<Self> {
        let python = python_with(&["durabletask.testing", "grpc"])?;
        Some(Self::start_with(python, 0).expect("start the in-memory backend"))
    }

    /// Starts a backend with `python` on `port` (0: any). A port just freed by a killed backend
    /// may take a moment to bind again, so binding is retried until a deadline.
    pub fn start_with(python: PathBuf, port: u16) -> anyhow::Result<Self> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let script = support_script("inmemory_backend.py");
            let port_arg = port.to_string();
            match Script::spawn(&python, &script, &[port_arg.as_str()], "LISTENING ") {
                Ok((process, line)) => {
                    let port = line
                        .trim()
                        .strip_prefix("LISTENING ")
                        .and_then(|p| p.parse().ok())
                        .with_context(|| format!("unexpected readiness line `{line}`"))?;
                    return Ok(Self {
                        python,
                        port,
                        process,
                    });
                }
                Err(err) if port != 0 && Instant::now() < deadline => {
                    eprintln!("backend not up on port {port} yet: {err:#}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Starts a new, empty backend on this backend's port (after this one was killed).
    pub fn restart(&self) -> anyhow::Result<Self> {
        Self::start_with(self.python.clone(), self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, as the Python SDK takes it.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The Python interpreter that runs it, for driving Python SDK scripts.
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// The connection string of this backend.
    pub fn connection_string(&self) -> String {
        format!(
            "Endpoint=http://127.0.0.1:{};TaskHub=default;Authentication=None",
            self.port
        )
    }

    /// The same, parsed.
    pub fn connection(&self) -> evalgate::durabletask::connection::ConnectionString {
        self.connection_string()
            .parse()
            .expect("the backend's connection string parses")
    }

    /// Kills the backend at once (SIGKILL), as a crash would; its state is lost.
    pub fn kill(&mut self) {
        self.process.kill();
    }
}

/// A long-running script. Killed when dropped.
pub struct Script {
    child: Child,
}

impl Script {
    /// Runs `script` with `args` and waits for a stdout line starting with `ready`; returns
    /// the process and that line. Fails if the script exits or is silent for too long.
    pub fn spawn(
        python: &Path,
        script: &Path,
        args: &[&str],
        ready: &str,
    ) -> anyhow::Result<(Self, String)> {
        let mut child = Command::new(python)
            .arg(script)
            .args(args)
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("run {}", script.display()))?;

        // A reader thread keeps draining stdout after the readiness line, so the pipe never fills.
        let stdout = child.stdout.take().context("stdout is piped")?;
        let (lines, ready_lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });

        let mut script_process = Self { child };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match ready_lines.recv_timeout(left) {
                Ok(line) if line.starts_with(ready) => return Ok((script_process, line)),
                Ok(line) => eprintln!("{}: {line}", script.display()),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    script_process.kill();
                    bail!("{} printed no `{ready}` line in time", script.display());
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = script_process.child.wait()?;
                    bail!("{} exited ({status}) before `{ready}`", script.display());
                }
            }
        }
    }

    /// Asks the script to stop (SIGTERM) and waits up to `timeout`; kills it after that.
    pub fn terminate(&mut self, timeout: Duration) {
        // The pid is our own child's, so this signals nothing else.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }

    /// Kills the script at once.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `script` with `args` to completion within `timeout` and returns its stdout.
pub async fn run_script(
    python: &Path,
    script: &Path,
    args: &[&str],
    timeout: Duration,
) -> anyhow::Result<String> {
    let child = tokio::process::Command::new(python)
        .arg(script)
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("run {}", script.display()))?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .with_context(|| format!("{} did not finish in {timeout:?}", script.display()))??;
    let stdout = String::from_utf8(output.stdout)?;
    if !output.status.success() {
        bail!("{} failed ({}): {stdout}", script.display(), output.status);
    }
    Ok(stdout)
}

/// Polls the instance until `done` holds, failing after `timeout`. For states a long-poll RPC
/// cannot wait for, such as a custom status or Suspended.
pub async fn wait_for_instance(
    client: &evalgate::durabletask::client::Client,
    instance_id: &str,
    timeout: Duration,
    mut done: impl FnMut(&evalgate::durabletask::client::InstanceState) -> bool,
) -> anyhow::Result<evalgate::durabletask::client::InstanceState> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    while tokio::time::Instant::now() < deadline {
        if let Some(state) = client.get_instance(instance_id, true).await? {
            if done(&state) {
                return Ok(state);
            }
            last = Some(state);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("instance {instance_id} did not get there in {timeout:?}; last seen: {last:?}")
}
