//! ApproveCode: a reviewer's decision on an evaluated submission.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::instances::BackendError;
use super::problem::Problem;
use super::status::stage_of;
use super::{AppState, MAX_COMMENT_CHARS, base_url, check_id, status_url};
use crate::workflow::ORCHESTRATOR;
use crate::workflow::model::{ApprovalEvent, Stage};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalJson {
    approved: bool,
    #[serde(default)]
    comment: Option<String>,
}

/// The 202 answer's body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionTaken {
    /// The submission id.
    pub id: String,
    /// Where to read the outcome.
    pub status_query_get_uri: String,
}

/// `POST /api/code/{id}/approval` with `{"approved": true|false, "comment": "..."}`.
pub async fn approve_code(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    check_id(&id)?;
    let body =
        body.map_err(|rejection| Problem::bad_request("unreadable-body", rejection.body_text()))?;
    let decision = read_decision(&headers, &body)?;
    let approver = state.settings.caller(&headers);

    let view = state
        .instances
        .get(&id)
        .await?
        .filter(|view| view.name == ORCHESTRATOR)
        .ok_or_else(|| Problem::not_found("no submission has this id"))?;
    match stage_of(&view) {
        Stage::AwaitingApproval => {}
        Stage::Executing => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "still-executing",
                "the code is still running; there is nothing to review yet",
            ));
        }
        decided => {
            return Err(Problem::new(
                StatusCode::GONE,
                "already-decided",
                format!(
                    "the submission is {} and can no longer be decided",
                    decided.as_str()
                ),
            ));
        }
    }

    let submitter = view
        .progress
        .as_ref()
        .and_then(|progress| progress.submitted_by.clone());
    if let (Some(submitter), Some(approver)) = (&submitter, &approver)
        && submitter.same_as(approver)
    {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "self-approval",
            "nobody may decide on their own submission",
        ));
    }

    let event = ApprovalEvent {
        approved: decision.approved,
        by: approver.and_then(|p| p.label()),
        comment: decision.comment,
        at: chrono::Utc::now(),
    };
    match state.instances.raise_approval(&id, &event).await {
        Ok(()) => {}
        Err(BackendError::NotFound) => {
            return Err(Problem::new(
                StatusCode::GONE,
                "already-decided",
                "the submission finished before the decision arrived",
            ));
        }
        Err(err) => return Err(err.into()),
    }
    tracing::info!(instance.id = %id, approved = event.approved, "decision sent");

    let body = DecisionTaken {
        status_query_get_uri: status_url(&base_url(&headers), &id),
        id,
    };
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

fn read_decision(headers: &HeaderMap, body: &[u8]) -> Result<ApprovalJson, Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the decision as application/json {\"approved\": true|false, \"comment\": \"...\"}",
        ));
    }
    let decision: ApprovalJson =
        super::json_object(body, "{\"approved\": true|false, \"comment\": \"...\"}")?;
    if let Some(comment) = &decision.comment
        && comment.chars().count() > MAX_COMMENT_CHARS
    {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "comment-too-long",
            format!("the comment is over {MAX_COMMENT_CHARS} characters"),
        ));
    }
    Ok(decision)
}
