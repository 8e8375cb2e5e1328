//! The code-evaluation orchestrator: run the code, publish the evaluation, wait for a decision.

use std::time::Duration;

use super::activity::{RunCodeInput, SESSION_ERROR_PREFIX};
use super::model::{
    ApprovalEvent, Decision, Evaluation, EvaluationStatus, Outcome, Progress, Stage, Submission,
};
use super::{HUMAN_APPROVAL_EVENT, RUN_CODE_ACTIVITY};
use crate::durabletask::replay::{Either, race};
use crate::durabletask::{FailureDetails, OrchestrationContext, RetryPolicy};

/// Retries for session failures that may pass: rate limits, server errors, dropped connections.
/// The waits are durable timers, so a restart in between loses nothing.
fn session_retry_policy() -> RetryPolicy {
    let mut policy = RetryPolicy::new(4, Duration::from_secs(2));
    policy.backoff_coefficient = 2.0;
    policy.max_interval = Some(Duration::from_secs(30));
    policy.timeout = Some(Duration::from_secs(10 * 60));
    policy.retry_if = Some(|failure| failure.error_type.starts_with(SESSION_ERROR_PREFIX));
    policy
}

/// Runs one submission from code to decision.
pub async fn evaluate_code(
    ctx: OrchestrationContext,
    submission: Submission,
) -> Result<Outcome, FailureDetails> {
    let mut progress = Progress {
        stage: Stage::Executing,
        submitted_by: submission.submitted_by.clone(),
        evaluation: None,
        approval_deadline: None,
        decision: None,
    };
    ctx.set_custom_status(&progress)?;

    // Run the code. A sandbox that fails for good still goes to review, with the failure shown.
    let input = RunCodeInput {
        code: submission.code,
        timeout_secs: submission.execution_timeout_secs,
    };
    let evaluation: Evaluation = match ctx
        .call_activity_with_retry(RUN_CODE_ACTIVITY, &input, &session_retry_policy())
        .await
    {
        Ok(evaluation) => evaluation,
        Err(failure) => Evaluation {
            status: EvaluationStatus::Error,
            stdout: String::new(),
            stderr: format!("the sandbox could not run the code: {failure}"),
            result: None,
            duration_ms: 0,
        },
    };

    // Publish the evaluation and race the reviewers against the deadline.
    let timeout = Duration::from_secs(submission.approval_timeout_secs);
    let deadline =
        ctx.current_time() + chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX);
    progress.stage = Stage::AwaitingApproval;
    progress.evaluation = Some(evaluation.clone());
    progress.approval_deadline = Some(deadline);
    ctx.set_custom_status(&progress)?;

    let approval = ctx.wait_for_external_event::<ApprovalEvent>(HUMAN_APPROVAL_EVENT);
    let (stage, decision) = match race(approval, ctx.create_timer(deadline)).await {
        Either::Left(Ok(event)) => {
            let stage = if event.approved {
                Stage::Approved
            } else {
                Stage::Rejected
            };
            let decision = Decision {
                approved: event.approved,
                by: event.by,
                comment: event.comment,
                at: event.at,
            };
            (stage, decision)
        }
        Either::Left(Err(bad_payload)) => {
            let decision = Decision {
                approved: false,
                by: None,
                comment: Some(format!(
                    "rejected: unreadable approval event ({bad_payload})"
                )),
                at: ctx.current_time(),
            };
            (Stage::Rejected, decision)
        }
        Either::Right(()) => {
            let decision = Decision {
                approved: false,
                by: None,
                comment: Some(format!(
                    "rejected: no decision within {} seconds",
                    timeout.as_secs()
                )),
                at: ctx.current_time(),
            };
            (Stage::TimedOut, decision)
        }
    };

    progress.stage = stage;
    progress.decision = Some(decision.clone());
    ctx.set_custom_status(&progress)?;

    Ok(Outcome {
        approved: decision.approved,
        stage,
        decision,
        summary: summarize(&evaluation),
        evaluation,
    })
}

/// One line on how the code ran, for the orchestration's output.
fn summarize(evaluation: &Evaluation) -> String {
    let last_line = |text: &str| text.lines().last().unwrap_or("").trim().to_owned();
    match evaluation.status {
        EvaluationStatus::Succeeded => format!(
            "succeeded in {} ms with {} line(s) of output",
            evaluation.duration_ms,
            evaluation.stdout.lines().count()
        ),
        EvaluationStatus::Failed => format!("failed: {}", last_line(&evaluation.stderr)),
        EvaluationStatus::TimedOut => "timed out".to_owned(),
        EvaluationStatus::Error => last_line(&evaluation.stderr),
    }
}
