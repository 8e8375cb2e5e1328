//! What one execution came to, in the terms both HTTP contracts report.

use serde_json::Value;

use super::kernel::KernelReply;

/// What one execution came to, as the HTTP layer reports it.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub status: OutcomeStatus,
    pub stdout: String,
    pub stderr: String,
    pub result: Value,
    pub duration_ms: u64,
    /// An error code and message for anything but success.
    pub error: Option<(String, String)>,
}

/// How the execution ended, before each contract spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutcomeStatus {
    Succeeded,
    Failed,
    TimedOut,
}

/// The kernel's reply as an outcome.
pub(crate) fn outcome(reply: KernelReply) -> Outcome {
    let status = match reply.status.as_str() {
        "Succeeded" => OutcomeStatus::Succeeded,
        "TimedOut" => OutcomeStatus::TimedOut,
        _ => OutcomeStatus::Failed,
    };
    let error = reply.error.map(|e| {
        let text = |key: &str| e[key].as_str().unwrap_or_default().to_string();
        (text("code"), text("message"))
    });
    Outcome {
        status,
        stdout: reply.stdout,
        stderr: reply.stderr,
        result: reply.result,
        duration_ms: reply.duration_ms,
        error,
    }
}

/// A failure the host itself reports; its message is also the stderr.
pub(crate) fn failure(code: &str, message: String) -> Outcome {
    Outcome {
        status: OutcomeStatus::Failed,
        stdout: String::new(),
        stderr: message.clone(),
        result: Value::Null,
        duration_ms: 0,
        error: Some((code.into(), message)),
    }
}
