//! What the HTTP functions need from the durable backend, as a small trait: the Durable Task
//! client implements it in production, and tests can use a fake.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::workflow::model::{ApprovalEvent, Outcome, Progress, Submission};

/// Why the backend could not answer.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend is unreachable or overloaded for now; retrying later may succeed.
    #[error("durable backend unavailable: {0}")]
    Unavailable(String),
    /// The instance does not exist (any more).
    #[error("instance not found")]
    NotFound,
    /// Anything else; not retryable.
    #[error("durable backend error: {0}")]
    Other(String),
}

/// The runtime status of an orchestration instance, as named in the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// Scheduled, not yet started by a worker.
    Pending,
    /// Started and not finished.
    Running,
    /// Paused by an operator.
    Suspended,
    /// Returned an outcome.
    Completed,
    /// Failed as an orchestration.
    Failed,
    /// Terminated or canceled by an operator.
    Terminated,
}

impl Runtime {
    /// The name in the API, as the Durable Task clients spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Pending => "Pending",
            Runtime::Running => "Running",
            Runtime::Suspended => "Suspended",
            Runtime::Completed => "Completed",
            Runtime::Failed => "Failed",
            Runtime::Terminated => "Terminated",
        }
    }
}

/// One submission's orchestration as the backend reports it.
#[derive(Debug, Clone)]
pub struct InstanceView {
    /// The submission id.
    pub id: String,
    /// The orchestration's name, to tell ours from others in a shared task hub.
    pub name: String,
    /// The runtime status.
    pub runtime: Runtime,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub last_updated_at: DateTime<Utc>,
    /// The input, when payloads were fetched.
    pub submission: Option<Submission>,
    /// The published progress (the custom status).
    pub progress: Option<Progress>,
    /// The outcome, once completed.
    pub outcome: Option<Outcome>,
    /// Why the orchestration failed, when it did.
    pub failure: Option<String>,
}

/// Whether a start created the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// A new instance.
    Created,
    /// An instance with that id already exists; nothing was started.
    AlreadyExists,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The instances on this page.
    pub instances: Vec<InstanceView>,
    /// Where the next page starts, if there is one.
    pub continuation: Option<String>,
}

/// The orchestration operations behind the HTTP functions.
#[async_trait]
pub trait Instances: Send + Sync {
    /// Starts the code-evaluation orchestration under `id`, unless one exists.
    async fn start(&self, id: &str, submission: &Submission) -> Result<Started, BackendError>;
    /// Reads an instance with its payloads.
    async fn get(&self, id: &str) -> Result<Option<InstanceView>, BackendError>;
    /// Sends a reviewer's decision to an instance.
    async fn raise_approval(&self, id: &str, event: &ApprovalEvent) -> Result<(), BackendError>;
    /// Lists instances in any of `statuses`, with their payloads, a page at a time.
    async fn list(
        &self,
        statuses: &[Runtime],
        page_size: u32,
        continuation: Option<String>,
    ) -> Result<Page, BackendError>;
}
