//! The data of one submission as it moves through the workflow, in the shapes users see.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a submission is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The code is running in a session.
    Executing,
    /// The evaluation is published and waits for a reviewer.
    AwaitingApproval,
    /// A reviewer approved it.
    Approved,
    /// A reviewer rejected it.
    Rejected,
    /// Nobody decided before the deadline, which counts as a rejection.
    TimedOut,
    /// The orchestration itself failed (not the code: failing code still goes to review).
    Failed,
    /// An operator terminated the orchestration.
    Terminated,
}

impl Stage {
    /// Every stage, with its name in the API.
    pub const ALL: [Stage; 7] = [
        Stage::Executing,
        Stage::AwaitingApproval,
        Stage::Approved,
        Stage::Rejected,
        Stage::TimedOut,
        Stage::Failed,
        Stage::Terminated,
    ];

    /// The stage's name in the API, such as `awaiting_approval`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Executing => "executing",
            Stage::AwaitingApproval => "awaiting_approval",
            Stage::Approved => "approved",
            Stage::Rejected => "rejected",
            Stage::TimedOut => "timed_out",
            Stage::Failed => "failed",
            Stage::Terminated => "terminated",
        }
    }

    /// The stage with this API name.
    pub fn parse(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|stage| stage.as_str() == name)
    }

    /// True once nothing can change any more.
    pub fn is_final(self) -> bool {
        !matches!(self, Stage::Executing | Stage::AwaitingApproval)
    }
}

/// Who made a request, as the Functions host's authentication reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    /// A stable id (the identity provider's object id), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A display name, such as an email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Principal {
    /// True when both principals are known and are the same person.
    pub fn same_as(&self, other: &Principal) -> bool {
        match (&self.id, &other.id) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => match (&self.name, &other.name) {
                (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
                _ => false,
            },
        }
    }

    /// The best label for logs and decisions.
    pub fn label(&self) -> Option<String> {
        self.name.clone().or_else(|| self.id.clone())
    }
}

/// The orchestration's input.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Submission {
    /// The Python code to run.
    pub code: String,
    /// Who submitted it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<Principal>,
    /// How long reviewers have, in seconds, fixed at submission.
    pub approval_timeout_secs: u64,
    /// The execution time limit in seconds.
    pub execution_timeout_secs: u64,
    /// A hash of the code and idempotency key, to tell a true resubmission from a reused key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

/// How running the code went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvaluationStatus {
    /// The code ran to the end.
    Succeeded,
    /// The code raised an error or did not compile.
    Failed,
    /// The code ran out of time.
    TimedOut,
    /// The sandbox could not run it (the session pool failed for good).
    Error,
}

/// What running the code produced; published for reviewers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// How it went.
    pub status: EvaluationStatus,
    /// Standard output, capped.
    pub stdout: String,
    /// Standard error, capped; the traceback when the code failed.
    pub stderr: String,
    /// The value of the last expression, when there was one.
    pub result: Option<serde_json::Value>,
    /// How long it ran.
    pub duration_ms: u64,
}

/// The approval event a reviewer raises.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalEvent {
    /// True to approve, false to reject.
    pub approved: bool,
    /// Who decided, when known.
    #[serde(default)]
    pub by: Option<String>,
    /// The reviewer's comment.
    #[serde(default)]
    pub comment: Option<String>,
    /// When the reviewer decided (by the API server's clock).
    pub at: DateTime<Utc>,
}

/// The decision on a submission.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// True only when a reviewer approved it.
    pub approved: bool,
    /// Who decided; none for a timeout.
    pub by: Option<String>,
    /// The reviewer's comment, or why it was rejected automatically.
    pub comment: Option<String>,
    /// When it was decided, in orchestration time.
    pub at: DateTime<Utc>,
}

/// The custom status: everything a reader of the submission sees while it runs and after.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Where the submission is.
    pub stage: Stage,
    /// Who submitted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<Principal>,
    /// The evaluation, once the code has run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    /// When the submission is rejected if nobody decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_deadline: Option<DateTime<Utc>>,
    /// The decision, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

/// The orchestration's output.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// True only when a reviewer approved it.
    pub approved: bool,
    /// `approved`, `rejected` or `timed_out`.
    pub stage: Stage,
    /// The decision in full.
    pub decision: Decision,
    /// A one-line summary of the evaluation.
    pub summary: String,
    /// The evaluation.
    pub evaluation: Evaluation,
}
