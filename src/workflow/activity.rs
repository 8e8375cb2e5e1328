//! The run-code activity: sends the submitted code to a session and reports what happened.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::model::Evaluation;
use crate::durabletask::{ActivityContext, FailureDetails};

/// The prefix of the error types of session failures, which the retry policy looks for.
pub const SESSION_ERROR_PREFIX: &str = "SessionError.";

/// Why the code could not be run (not why the code failed: that is a failed evaluation).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct RunError {
    /// A short stable name, such as `RateLimited` or `Unauthorized`.
    pub kind: String,
    /// What went wrong, for reviewers and operators.
    pub message: String,
    /// True when trying again later may succeed.
    pub retryable: bool,
}

/// Runs code in an isolated session: the session-pool client in production and locally.
#[async_trait]
pub trait CodeRunner: Send + Sync {
    /// Runs `code` with a time limit and returns its evaluation.
    async fn run(&self, code: &str, timeout: Duration) -> Result<Evaluation, RunError>;
}

/// The activity's input.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunCodeInput {
    /// The code.
    pub code: String,
    /// The execution time limit in seconds.
    pub timeout_secs: u64,
}

/// Runs the code once. A session failure becomes failure details whose type starts with
/// [`SESSION_ERROR_PREFIX`], marked non-retriable when retrying cannot help.
pub async fn run_code(
    runner: Arc<dyn CodeRunner>,
    ctx: ActivityContext,
    input: RunCodeInput,
) -> Result<Evaluation, FailureDetails> {
    let timeout = Duration::from_secs(input.timeout_secs);
    match runner.run(&input.code, timeout).await {
        Ok(evaluation) => {
            tracing::debug!(instance.id = %ctx.instance_id, status = ?evaluation.status, "code ran");
            Ok(evaluation)
        }
        Err(err) => {
            tracing::warn!(instance.id = %ctx.instance_id, error.kind = %err.kind, retryable = err.retryable, "session failed");
            let failure =
                FailureDetails::new(format!("{SESSION_ERROR_PREFIX}{}", err.kind), err.message);
            if err.retryable {
                Err(failure)
            } else {
                Err(failure.non_retriable())
            }
        }
    }
}
