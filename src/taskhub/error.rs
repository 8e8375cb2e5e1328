//! Errors of the task hub, and how each becomes a gRPC status.

/// Why a task hub operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskHubError {
    /// SQLite refused a statement or a commit. Retrying may help when the cause was transient
    /// (a full disk that was cleared, a busy file), so callers see it as retryable.
    #[error("storage error: {0}")]
    Storage(#[from] rusqlite::Error),
    /// The transaction holding this change failed to commit, so nothing of it was stored.
    /// Retryable.
    #[error("storage commit failed: {0}")]
    CommitFailed(String),
    /// A stored record could not be decoded; the data directory is damaged. Not retryable.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The store thread is gone (the task hub is shutting down). Retryable against a new hub.
    #[error("the task hub store is closed")]
    Closed,
    /// The request was refused (unknown instance, conflicting id, stale token, ...); the
    /// status says why. Retrying the same request gives the same answer.
    #[error("{}", .0.message())]
    Rejected(tonic::Status),
    /// The data directory could not be created or opened. Not retryable without operator action.
    #[error("cannot prepare data directory {path}: {source}")]
    DataDir {
        /// The directory that was asked for.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The listen address is not a loopback address and remote access was not allowed.
    #[error(
        "refusing to listen on non-loopback address {0}: the task hub has no authentication; \
         allow it explicitly (--allow-remote) if that is intended"
    )]
    NonLoopback(std::net::SocketAddr),
    /// Binding or serving the gRPC listener failed.
    #[error("cannot serve on {addr}: {source}")]
    Listen {
        /// The address that was asked for.
        addr: std::net::SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl TaskHubError {
    /// True when the same request may succeed if retried.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Storage(_) | Self::CommitFailed(_) | Self::Closed
        )
    }
}

impl From<TaskHubError> for tonic::Status {
    fn from(err: TaskHubError) -> Self {
        match err {
            TaskHubError::Closed => tonic::Status::unavailable(err.to_string()),
            TaskHubError::Storage(_) | TaskHubError::CommitFailed(_) => {
                tonic::Status::unavailable(err.to_string())
            }
            TaskHubError::Rejected(status) => status,
            _ => tonic::Status::internal(err.to_string()),
        }
    }
}

/// Shorthand for results of task hub operations.
pub type Result<T, E = TaskHubError> = std::result::Result<T, E>;
