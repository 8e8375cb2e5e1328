//! The host's handle on one session's kernel: start it in its sandbox, send one execution at a
//! time over its stdin, read the reply line from its stdout under a wall-clock deadline.
//!
//! Submitted code runs inside the kernel's own process, so it can reach the protocol pipes and
//! forge its reply. That gives it no more than its output already does: control over its own
//! session's result. The host therefore treats replies as untrusted: bounded in length, parsed
//! strictly, and a malformed one ends the session.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::sandbox::command;
use super::sandbox::{SandboxPlan, SessionSandbox};

/// The kernel script, written to the work root at start-up and bound into each sandbox.
pub(crate) const KERNEL_SOURCE: &str = include_str!("kernel.py");

/// Longest reply line accepted, per character of the output cap (JSON escaping can grow
/// text sixfold, and there are two streams and a result).
const REPLY_BYTES_PER_OUTPUT_CHAR: usize = 24;
const REPLY_BYTES_BASE: usize = 64 * 1024;
/// How much of bwrap's stderr is kept to explain a start that failed.
const STARTUP_STDERR_BYTES: u64 = 4096;

/// One execution, as sent to the kernel.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KernelRequest<'a> {
    pub code: &'a str,
    pub timeout: f64,
    pub max_output: usize,
}

/// The kernel's account of one execution.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KernelReply {
    /// `Succeeded`, `Failed` or `TimedOut`.
    pub status: String,
    pub error: Option<Value>,
    pub stdout: String,
    pub stderr: String,
    pub result: Value,
    pub duration_ms: u64,
    /// Every process the execution started is gone.
    pub clean: bool,
}

/// Why a kernel could not run an execution; each ends the session.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KernelError {
    #[error("the sandbox did not start: {0}")]
    Start(String),
    #[error("the execution overran its wall-clock deadline")]
    Deadline,
    #[error("the session's interpreter exited")]
    Exited,
    #[error("the session's interpreter broke the protocol: {0}")]
    Protocol(String),
}

/// A running kernel process.
pub(crate) struct Kernel {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Kernel {
    /// Starts a kernel and waits for its `ready` message, which reports its confinement.
    pub async fn start(
        plan: &SandboxPlan,
        session: &SessionSandbox,
        deadline: Duration,
    ) -> Result<(Self, Value), KernelError> {
        let (mut command, seccomp_fd) = command::build(plan, session);
        let mut child = command
            .spawn()
            .map_err(|e| KernelError::Start(format!("cannot start the sandbox: {e}")))?;
        drop(seccomp_fd);
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(KernelError::Start("the sandbox has no pipes".into()));
        };

        // bwrap reports its own failures on stderr; keep the start of it, drop the rest.
        let diagnostics = tokio::spawn(async move {
            let mut head = Vec::new();
            let mut stderr = stderr;
            let _ = (&mut stderr)
                .take(STARTUP_STDERR_BYTES)
                .read_to_end(&mut head)
                .await;
            let _ = tokio::io::copy(&mut stderr, &mut tokio::io::sink()).await;
            head
        });

        let mut kernel = Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        let ready = tokio::time::timeout(deadline, read_line(&mut kernel.stdout, REPLY_BYTES_BASE))
            .await
            .map_err(|_| KernelError::Deadline)
            .and_then(|line| line.map_err(|e| KernelError::Protocol(e.to_string())))
            .and_then(|line| line.ok_or(KernelError::Exited))
            .and_then(|line| {
                let message: Value = serde_json::from_slice(&line)
                    .map_err(|e| KernelError::Protocol(e.to_string()))?;
                Ok(message["ready"].clone())
            });
        match ready {
            Ok(ready) if ready.is_object() => Ok((kernel, ready)),
            Ok(_) => {
                kernel.kill().await;
                Err(KernelError::Protocol("no ready message".into()))
            }
            Err(error) => {
                kernel.kill().await;
                let head = tokio::time::timeout(Duration::from_secs(2), diagnostics)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                let said = String::from_utf8_lossy(&head).trim().to_string();
                Err(KernelError::Start(if said.is_empty() {
                    error.to_string()
                } else {
                    format!("{error}: {said}")
                }))
            }
        }
    }

    /// Runs one execution; `deadline` bounds sending, running and replying together.
    pub async fn execute(
        &mut self,
        request: &KernelRequest<'_>,
        deadline: Duration,
    ) -> Result<KernelReply, KernelError> {
        let mut line =
            serde_json::to_vec(request).map_err(|e| KernelError::Protocol(e.to_string()))?;
        line.push(b'\n');
        let limit = REPLY_BYTES_BASE + request.max_output * REPLY_BYTES_PER_OUTPUT_CHAR;

        let exchange = async {
            self.stdin.write_all(&line).await?;
            self.stdin.flush().await?;
            read_line(&mut self.stdout, limit).await
        };
        match tokio::time::timeout(deadline, exchange).await {
            Err(_) => Err(KernelError::Deadline),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(KernelError::Exited),
            Ok(Err(e)) => Err(KernelError::Protocol(e.to_string())),
            Ok(Ok(None)) => Err(KernelError::Exited),
            Ok(Ok(Some(reply))) => {
                serde_json::from_slice(&reply).map_err(|e| KernelError::Protocol(e.to_string()))
            }
        }
    }

    /// Kills the sandbox (its pid namespace goes with it) and reaps it.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// One line of at most `limit` bytes; `None` at end of stream.
async fn read_line(
    reader: &mut BufReader<ChildStdout>,
    limit: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    let read = reader
        .take(limit as u64)
        .read_until(b'\n', &mut line)
        .await?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "reply longer than the limit, or cut short",
        ));
    }
    Ok(Some(line))
}
