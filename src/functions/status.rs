//! GetStatus: one submission's status, or a page of submissions filtered by stage.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::instances::{InstanceView, Runtime};
use super::problem::Problem;
use super::{AppState, approve_url, base_url, check_id, status_url};
use crate::workflow::ORCHESTRATOR;
use crate::workflow::model::{Decision, Evaluation, Principal, Stage};

/// A submission as GetStatus shows it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusBody {
    pub id: String,
    pub runtime_status: String,
    pub stage: Stage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<Evaluation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<Principal>,
    pub created_time: DateTime<Utc>,
    pub last_updated_time: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_deadline: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The submitted code, for reviewers; only on the single-submission answer, not in listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub status_query_get_uri: String,
    pub approve_uri: String,
}

/// The stage of an instance: from its outcome once completed, from its progress while running.
pub fn stage_of(view: &InstanceView) -> Stage {
    match view.runtime {
        Runtime::Completed => view
            .outcome
            .as_ref()
            .map(|outcome| outcome.stage)
            .unwrap_or(Stage::Failed),
        Runtime::Failed => Stage::Failed,
        Runtime::Terminated => Stage::Terminated,
        Runtime::Pending | Runtime::Running | Runtime::Suspended => view
            .progress
            .as_ref()
            .map(|progress| progress.stage)
            .unwrap_or(Stage::Executing),
    }
}

/// Renders an instance for the API.
pub fn render(view: InstanceView, base: &str) -> StatusBody {
    let stage = stage_of(&view);
    let progress = view.progress;
    let outcome = view.outcome;
    let evaluation = outcome
        .as_ref()
        .map(|outcome| outcome.evaluation.clone())
        .or_else(|| progress.as_ref().and_then(|p| p.evaluation.clone()));
    let decision = outcome
        .as_ref()
        .map(|outcome| outcome.decision.clone())
        .or_else(|| progress.as_ref().and_then(|p| p.decision.clone()));
    let submitted_by = progress
        .as_ref()
        .and_then(|p| p.submitted_by.clone())
        .or_else(|| {
            view.submission
                .as_ref()
                .and_then(|s| s.submitted_by.clone())
        });

    StatusBody {
        status_query_get_uri: status_url(base, &view.id),
        approve_uri: approve_url(base, &view.id),
        id: view.id,
        runtime_status: view.runtime.as_str().to_owned(),
        stage,
        evaluation,
        decision,
        submitted_by,
        created_time: view.created_at,
        last_updated_time: view.last_updated_at,
        approval_deadline: progress.and_then(|p| p.approval_deadline),
        failure: view.failure,
        code: None,
    }
}

/// `GET /api/code/{id}`.
pub async fn get_status(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<StatusBody>, Problem> {
    check_id(&id)?;
    let view = state.instances.get(&id).await?;
    match view {
        Some(view) if view.name == ORCHESTRATOR => {
            let code = view.submission.as_ref().map(|s| s.code.clone());
            let mut body = render(view, &base_url(&headers));
            body.code = code;
            Ok(Json(body))
        }
        _ => Err(Problem::not_found("no submission has this id")),
    }
}

/// The query of a listing.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    stage: Option<String>,
    page_size: Option<String>,
    continuation_token: Option<String>,
    /// The function key the host checks; accepted and ignored here.
    code: Option<String>,
}

/// A page of submissions.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListBody {
    pub items: Vec<StatusBody>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation_token: Option<String>,
}

/// The default and largest page sizes of a listing.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 100;

/// `GET /api/code?stage=awaiting_approval&pageSize=50&continuationToken=…`.
pub async fn list_codes(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ListBody>, Problem> {
    let Query(query) = query.map_err(|_| {
        Problem::bad_request(
            "bad-query",
            "the listing takes stage, pageSize and continuationToken, each at most once",
        )
    })?;
    let _ = query.code;
    let continuation = query
        .continuation_token
        .as_deref()
        .map(decode_token)
        .transpose()?;
    let stage = match query.stage.as_deref() {
        None | Some("") => None,
        Some(name) => Some(Stage::parse(name).ok_or_else(|| {
            let names: Vec<_> = Stage::ALL.iter().map(|s| s.as_str()).collect();
            Problem::bad_request(
                "bad-stage",
                format!("stage must be one of {}", names.join(", ")),
            )
        })?),
    };
    let page_size = match query.page_size.as_deref() {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|size| (1..=MAX_PAGE).contains(size))
            .ok_or_else(|| {
                Problem::bad_request("bad-page-size", format!("pageSize must be 1 to {MAX_PAGE}"))
            })?,
    };

    let statuses = match stage {
        Some(Stage::Executing | Stage::AwaitingApproval) => {
            vec![Runtime::Pending, Runtime::Running, Runtime::Suspended]
        }
        Some(Stage::Approved | Stage::Rejected | Stage::TimedOut) => vec![Runtime::Completed],
        Some(Stage::Failed) => vec![Runtime::Failed, Runtime::Completed],
        Some(Stage::Terminated) => vec![Runtime::Terminated],
        None => Vec::new(),
    };
    let page = state
        .instances
        .list(&statuses, page_size, continuation)
        .await?;

    let base = base_url(&headers);
    let items = page
        .instances
        .into_iter()
        .filter(|view| view.name == ORCHESTRATOR)
        .filter(|view| stage.is_none_or(|stage| stage_of(view) == stage))
        .map(|view| render(view, &base))
        .collect();
    Ok(Json(ListBody {
        items,
        continuation_token: page.continuation.as_deref().map(encode_token),
    }))
}

/// Marks the tokens this API issues, so that a made-up one is refused instead of silently
/// restarting the listing.
const TOKEN_PREFIX: &str = "evalgate-page:";

fn encode_token(backend: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TOKEN_PREFIX}{backend}"))
}

fn decode_token(token: &str) -> Result<String, Problem> {
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(TOKEN_PREFIX).map(str::to_owned))
        .ok_or_else(|| {
            Problem::bad_request(
                "bad-continuation-token",
                "continuationToken must be one that a previous page returned",
            )
        })
}
