//! The workflow's code runner over the session-pool client: one fresh session per execution.

use std::time::Duration;

use async_trait::async_trait;

use crate::sessions::{ExecuteRequest, ExecutionStatus, SessionClient, SessionError, SessionId};
use crate::workflow::model::{Evaluation, EvaluationStatus};
use crate::workflow::{CodeRunner, RunError};

/// Runs code through a session pool, or through the local interpreter that speaks its API.
pub struct SessionRunner {
    client: SessionClient,
}

impl SessionRunner {
    /// A runner over `client`.
    pub fn new(client: SessionClient) -> Self {
        Self { client }
    }
}

#[async_trait]
impl CodeRunner for SessionRunner {
    async fn run(&self, code: &str, timeout: Duration) -> Result<Evaluation, RunError> {
        // A fresh session per execution, ended right after: nothing the code leaves behind
        // outlives it, and its slot in the pool is free at once instead of after the cooldown.
        let session = SessionId::generate();
        let request = ExecuteRequest {
            code: code.to_owned(),
            timeout,
            session_id: Some(session.clone()),
        };
        let executed = self.client.execute(&request).await;
        if let Err(err) = self.client.delete_session(&session).await {
            tracing::debug!(session.id = session.as_str(), error = %err, "session left to its cooldown");
        }
        let execution = executed.map_err(run_error)?;
        let mut stderr = execution.stderr;
        if execution.status == ExecutionStatus::TimedOut && stderr.trim().is_empty() {
            stderr = format!(
                "the code was stopped at the time limit of {} seconds",
                timeout.as_secs()
            );
        }
        let status = match execution.status {
            ExecutionStatus::Succeeded => EvaluationStatus::Succeeded,
            ExecutionStatus::Failed => EvaluationStatus::Failed,
            ExecutionStatus::TimedOut => EvaluationStatus::TimedOut,
            ExecutionStatus::Canceled => EvaluationStatus::Error,
        };
        Ok(Evaluation {
            status,
            stdout: execution.stdout,
            stderr,
            result: execution.result,
            duration_ms: execution.duration_ms,
        })
    }
}

fn run_error(err: SessionError) -> RunError {
    let kind = match &err {
        SessionError::Throttled { .. } => "RateLimited",
        SessionError::Server { .. } => "ServerError",
        SessionError::Timeout(_) => "Timeout",
        SessionError::Connection(_) => "Connection",
        SessionError::Rejected { .. } => "Rejected",
        SessionError::MalformedResponse { .. } => "MalformedResponse",
        SessionError::Credential(_) => "Credential",
        SessionError::InvalidRequest(_) => "InvalidRequest",
    };
    RunError {
        kind: kind.to_owned(),
        retryable: err.is_retryable(),
        message: err.to_string(),
    }
}
