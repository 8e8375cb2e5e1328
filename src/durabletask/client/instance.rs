//! What the client reads and asks about instances: status, state, queries and purge filters.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use super::super::failure::FailureDetails;
use super::super::payload::{self, PayloadError};
use super::super::proto;
use super::super::time::{from_timestamp, to_timestamp};
use super::ClientError;

/// Where an orchestration instance is in its life. Mirrors the wire's `OrchestrationStatus`,
/// where 0 means running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuntimeStatus {
    /// Started and not finished.
    Running,
    /// Returned an output.
    Completed,
    /// Restarted itself with a new input.
    ContinuedAsNew,
    /// Ended with an error.
    Failed,
    /// Cancelled (not produced by current backends).
    Canceled,
    /// Ended by a terminate request.
    Terminated,
    /// Scheduled, not yet started by a worker.
    Pending,
    /// Paused by a suspend request.
    Suspended,
}

impl RuntimeStatus {
    /// True when the instance will not change again (unless restarted).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RuntimeStatus::Completed
                | RuntimeStatus::Failed
                | RuntimeStatus::Canceled
                | RuntimeStatus::Terminated
        )
    }

    /// The status's wire value.
    pub fn to_proto(self) -> proto::OrchestrationStatus {
        use proto::OrchestrationStatus as P;
        match self {
            RuntimeStatus::Running => P::Running,
            RuntimeStatus::Completed => P::Completed,
            RuntimeStatus::ContinuedAsNew => P::ContinuedAsNew,
            RuntimeStatus::Failed => P::Failed,
            RuntimeStatus::Canceled => P::Canceled,
            RuntimeStatus::Terminated => P::Terminated,
            RuntimeStatus::Pending => P::Pending,
            RuntimeStatus::Suspended => P::Suspended,
        }
    }
}

impl From<proto::OrchestrationStatus> for RuntimeStatus {
    fn from(value: proto::OrchestrationStatus) -> Self {
        use proto::OrchestrationStatus as P;
        match value {
            P::Running => RuntimeStatus::Running,
            P::Completed => RuntimeStatus::Completed,
            P::ContinuedAsNew => RuntimeStatus::ContinuedAsNew,
            P::Failed => RuntimeStatus::Failed,
            P::Canceled => RuntimeStatus::Canceled,
            P::Terminated => RuntimeStatus::Terminated,
            P::Pending => RuntimeStatus::Pending,
            P::Suspended => RuntimeStatus::Suspended,
        }
    }
}

impl TryFrom<i32> for RuntimeStatus {
    type Error = ClientError;

    fn try_from(value: i32) -> Result<Self, Self::Error> {
        proto::OrchestrationStatus::try_from(value)
            .map(Into::into)
            .map_err(|_| {
                ClientError::InvalidResponse(format!("unknown orchestration status {value}"))
            })
    }
}

/// A snapshot of one instance.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceState {
    /// The instance id.
    pub instance_id: String,
    /// The orchestrator's registered name.
    pub name: String,
    /// Where it is in its life.
    pub status: RuntimeStatus,
    /// When it was scheduled.
    pub created_at: DateTime<Utc>,
    /// When its state last changed.
    pub last_updated_at: DateTime<Utc>,
    /// When it reached a terminal status, if the backend reports it.
    pub completed_at: Option<DateTime<Utc>>,
    /// The JSON input, when payloads were fetched and there is one.
    pub input: Option<String>,
    /// The JSON output (or termination output), when payloads were fetched and there is one.
    pub output: Option<String>,
    /// The JSON custom status the orchestrator last set.
    pub custom_status: Option<String>,
    /// Why it failed, when it did.
    pub failure: Option<FailureDetails>,
}

impl InstanceState {
    /// The input decoded as `T` (`null` when absent).
    pub fn input_as<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        payload::decode(self.input.as_deref())
    }

    /// The output decoded as `T` (`null` when absent).
    pub fn output_as<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        payload::decode(self.output.as_deref())
    }

    /// The custom status decoded as `T` (`null` when absent).
    pub fn custom_status_as<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        payload::decode(self.custom_status.as_deref())
    }

    pub(crate) fn from_proto(state: proto::OrchestrationState) -> Result<Self, ClientError> {
        Ok(Self {
            status: RuntimeStatus::try_from(state.orchestration_status)?,
            instance_id: state.instance_id,
            name: state.name,
            created_at: state
                .created_timestamp
                .as_ref()
                .map(from_timestamp)
                .unwrap_or_default(),
            last_updated_at: state
                .last_updated_timestamp
                .as_ref()
                .map(from_timestamp)
                .unwrap_or_default(),
            completed_at: state.completed_timestamp.as_ref().map(from_timestamp),
            input: non_empty(state.input),
            output: non_empty(state.output),
            custom_status: non_empty(state.custom_status),
            failure: state.failure_details.map(Into::into),
        })
    }
}

/// Which instances [`Client::query`](super::Client::query) returns, one page at a time.
#[derive(Debug, Clone, Default)]
pub struct InstanceQuery {
    /// Only these statuses; empty means any.
    pub statuses: Vec<RuntimeStatus>,
    /// Only instances created at or after this time.
    pub created_from: Option<DateTime<Utc>>,
    /// Only instances created before this time.
    pub created_to: Option<DateTime<Utc>>,
    /// Only ids that start with this.
    pub id_prefix: Option<String>,
    /// The most instances per page; 0 lets the backend decide.
    pub page_size: u32,
    /// Where the previous page stopped.
    pub continuation: Option<String>,
    /// Whether to include inputs and outputs.
    pub fetch_payloads: bool,
}

impl InstanceQuery {
    pub(crate) fn to_proto(&self) -> proto::InstanceQuery {
        proto::InstanceQuery {
            runtime_status: statuses(&self.statuses),
            created_time_from: self.created_from.map(to_timestamp),
            created_time_to: self.created_to.map(to_timestamp),
            task_hub_names: Vec::new(),
            max_instance_count: i32::try_from(self.page_size).unwrap_or(i32::MAX),
            continuation_token: self.continuation.clone(),
            instance_id_prefix: self.id_prefix.clone(),
            fetch_inputs_and_outputs: self.fetch_payloads,
        }
    }
}

/// One page of a query.
#[derive(Debug, Clone)]
pub struct QueryPage {
    /// The instances on this page.
    pub instances: Vec<InstanceState>,
    /// Pass this back as [`InstanceQuery::continuation`] for the next page; `None` on the last.
    pub continuation: Option<String>,
}

/// Which terminal instances [`Client::purge_where`](super::Client::purge_where) deletes.
#[derive(Debug, Clone, Default)]
pub struct PurgeFilter {
    /// Only instances created at or after this time.
    pub created_from: Option<DateTime<Utc>>,
    /// Only instances created before this time.
    pub created_to: Option<DateTime<Utc>>,
    /// Only these statuses; empty means any terminal one.
    pub statuses: Vec<RuntimeStatus>,
}

impl PurgeFilter {
    pub(crate) fn to_proto(&self) -> proto::PurgeInstanceFilter {
        proto::PurgeInstanceFilter {
            created_time_from: self.created_from.map(to_timestamp),
            created_time_to: self.created_to.map(to_timestamp),
            runtime_status: statuses(&self.statuses),
            timeout: None,
        }
    }
}

/// What a purge did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeResult {
    /// How many instances were deleted.
    pub deleted: u32,
    /// False when the backend stopped early and more matching instances remain.
    pub complete: bool,
}

fn statuses(statuses: &[RuntimeStatus]) -> Vec<i32> {
    statuses.iter().map(|s| s.to_proto() as i32).collect()
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_on_the_wire_is_running() {
        assert_eq!(RuntimeStatus::try_from(0).unwrap(), RuntimeStatus::Running);
        assert_eq!(RuntimeStatus::try_from(6).unwrap(), RuntimeStatus::Pending);
        assert!(RuntimeStatus::try_from(42).is_err());
        assert_eq!(RuntimeStatus::Suspended.to_proto() as i32, 7);
    }

    #[test]
    fn empty_payloads_read_as_absent() {
        let state = InstanceState::from_proto(proto::OrchestrationState {
            instance_id: "i".into(),
            name: "n".into(),
            orchestration_status: 1,
            input: Some(String::new()),
            output: Some("42".into()),
            custom_status: Some(r#"{"step":"done"}"#.into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(state.status, RuntimeStatus::Completed);
        assert_eq!(state.input, None);
        assert_eq!(state.output_as::<u32>().unwrap(), 42);
        let status: serde_json::Value = state.custom_status_as().unwrap();
        assert_eq!(status["step"], "done");
    }
}
