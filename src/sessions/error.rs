//! Why an execution request failed, classified for the orchestration's retry policy.

use std::time::Duration;

/// A failed call to the session pool. [`SessionError::is_retryable`] says whether the same
/// request may succeed later; the client itself never retries.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// 429: the pool is busy. Retryable, after [`SessionError::retry_after`] when given.
    #[error("the session pool is throttling requests (429 {code})")]
    Throttled {
        retry_after: Option<Duration>,
        code: String,
        message: String,
    },
    /// 5xx, or 408: the pool failed. Retryable.
    #[error("the session pool failed ({status} {code})")]
    Server {
        status: u16,
        code: String,
        message: String,
    },
    /// No answer within the client's request timeout. Retryable.
    #[error("the session pool did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed or was reset. Retryable.
    #[error("cannot reach the session pool: {0}")]
    Connection(String),
    /// The pool refused the request (400, 401, 403, 404 or another 4xx). Terminal: the code
    /// and message are Azure's, from the response body.
    #[error("the session pool refused the request ({status} {code}: {message})")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    /// The pool answered with a body this client cannot read. Terminal.
    #[error("the session pool's answer ({status}) is malformed: {reason}")]
    MalformedResponse { status: u16, reason: String },
    /// No token could be had from the credential. Retryable (identity endpoints fail
    /// transiently; a misconfiguration fails every attempt of the bounded policy).
    #[error("cannot get a token for the session pool: {0}")]
    Credential(String),
    /// The request itself is invalid (for example its endpoint). Terminal.
    #[error("invalid session request: {0}")]
    InvalidRequest(String),
}

impl SessionError {
    /// Whether sending the same request again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Throttled { .. }
                | Self::Server { .. }
                | Self::Timeout(_)
                | Self::Connection(_)
                | Self::Credential(_)
        )
    }

    /// How long the pool asked to wait before retrying, for a 429 with `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status the pool answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Throttled { .. } => Some(429),
            Self::Server { status, .. }
            | Self::Rejected { status, .. }
            | Self::MalformedResponse { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The Azure error code from the body, when there was one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Throttled { code, .. }
            | Self::Server { code, .. }
            | Self::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_retryable_and_terminal() {
        let throttled = SessionError::Throttled {
            retry_after: Some(Duration::from_secs(3)),
            code: "TooManyRequests".into(),
            message: String::new(),
        };
        assert!(throttled.is_retryable());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(3)));
        let rejected = SessionError::Rejected {
            status: 403,
            code: "Forbidden".into(),
            message: "no role".into(),
        };
        assert!(!rejected.is_retryable());
        assert_eq!(rejected.code(), Some("Forbidden"));
        assert!(
            !SessionError::MalformedResponse {
                status: 200,
                reason: "x".into()
            }
            .is_retryable()
        );
        assert!(SessionError::Connection("reset".into()).is_retryable());
    }
}
