//! The errors of the client and of building a connection, each saying whether a retry may help.

use super::auth::AuthError;
use super::channel::ChannelError;
use super::payload::PayloadError;

/// Why a client or worker could not be built from a connection string. Never retryable.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The endpoint is unusable.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The credential could not be built.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No such instance. Not retryable.
    #[error("not found: {0}")]
    NotFound(String),
    /// An instance with that id exists in a status the reuse policy does not replace. Not retryable.
    #[error("already exists: {0}")]
    AlreadyExists(String),
    /// The backend refused the request as malformed. Not retryable.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The backend could not be reached, or refused for now. Retryable.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The call's deadline passed first (for waits: the instance did not get there in time).
    /// Retryable with a longer deadline.
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    /// Any other gRPC failure; retryable when the code is Aborted, Cancelled or Unknown.
    #[error("backend call failed ({code:?}): {message}")]
    Rpc {
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
    /// A payload could not be encoded or decoded. Not retryable.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The backend answered with something this SDK cannot read. Not retryable.
    #[error("unexpected response from the backend: {0}")]
    InvalidResponse(String),
}

impl ClientError {
    /// True when the same call may succeed if repeated later.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Unavailable(_) | ClientError::DeadlineExceeded(_) => true,
            ClientError::Rpc { code, .. } => matches!(
                code,
                tonic::Code::Aborted | tonic::Code::Cancelled | tonic::Code::Unknown
            ),
            _ => false,
        }
    }

    /// The gRPC code this error came from, if it came from the backend.
    pub fn code(&self) -> Option<tonic::Code> {
        Some(match self {
            ClientError::NotFound(_) => tonic::Code::NotFound,
            ClientError::AlreadyExists(_) => tonic::Code::AlreadyExists,
            ClientError::InvalidArgument(_) => tonic::Code::InvalidArgument,
            ClientError::Unavailable(_) => tonic::Code::Unavailable,
            ClientError::DeadlineExceeded(_) => tonic::Code::DeadlineExceeded,
            ClientError::Rpc { code, .. } => *code,
            ClientError::Payload(_) | ClientError::InvalidResponse(_) => return None,
        })
    }
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> Self {
        let message = status.message().to_owned();
        if client_deadline_passed(&status) {
            return ClientError::DeadlineExceeded(message);
        }
        match status.code() {
            tonic::Code::NotFound => ClientError::NotFound(message),
            tonic::Code::AlreadyExists => ClientError::AlreadyExists(message),
            tonic::Code::InvalidArgument => ClientError::InvalidArgument(message),
            tonic::Code::Unavailable => ClientError::Unavailable(message),
            tonic::Code::DeadlineExceeded => ClientError::DeadlineExceeded(message),
            code => ClientError::Rpc { code, message },
        }
    }
}

/// Tonic reports a deadline enforced on our side as Cancelled with a `TimeoutExpired` source;
/// for callers it is the same as the server's DeadlineExceeded.
pub(crate) fn client_deadline_passed(status: &tonic::Status) -> bool {
    if status.code() != tonic::Code::Cancelled {
        return false;
    }
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        if err.is::<tonic::TimeoutExpired>() {
            return true;
        }
        source = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_variants_and_retryability() {
        let cases = [
            (tonic::Code::NotFound, false),
            (tonic::Code::AlreadyExists, false),
            (tonic::Code::InvalidArgument, false),
            (tonic::Code::Unavailable, true),
            (tonic::Code::DeadlineExceeded, true),
            (tonic::Code::Unknown, true),
            (tonic::Code::PermissionDenied, false),
        ];
        for (code, retryable) in cases {
            let err = ClientError::from(tonic::Status::new(code, "m"));
            assert_eq!(err.code(), Some(code));
            assert_eq!(err.is_retryable(), retryable, "{code:?}");
        }
        let timeout = tonic::Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert!(matches!(
            ClientError::from(timeout),
            ClientError::DeadlineExceeded(_)
        ));
        assert!(matches!(
            ClientError::from(tonic::Status::not_found("x")),
            ClientError::NotFound(m) if m == "x"
        ));
    }
}
