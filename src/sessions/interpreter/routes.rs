//! The HTTP surface of the local interpreter: the pool's data-plane routes, both contracts.
//!
//! - `POST /code/execute?api-version=2024-02-02-preview|2024-08-02-preview&identifier=…`,
//!   body `{"properties": {...}}`, reply `{"properties": {status: Success|Failure, ...}}`;
//! - `POST /executions?api-version=2024-10-02-preview|2025-02-02-preview|2025-10-02-preview&identifier=…`,
//!   top-level body, reply `{id, identifier, status: Succeeded|Failed, result: {...}}`;
//! - `GET|DELETE /session?identifier=…` (2025 versions), and `GET /status` (ours: isolation).
//!
//! Errors are Azure's `{"error": {"code", "message"}}` with `x-ms-error-code`. Tolerant like
//! the clients need: doubled or trailing slashes, enum values in any case, `pythonCode` for
//! `code`. Any bearer token, or none, is accepted. Only synchronous execution is served.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::outcome::{Outcome, OutcomeStatus};
use super::pool::{Pool, PoolError};
use super::sandbox::IsolationReport;
use crate::sessions::SessionId;

const LEGACY_VERSIONS: &[&str] = &["2024-02-02-preview", "2024-08-02-preview"];
const EXECUTIONS_VERSIONS: &[&str] = &[
    "2024-10-02-preview",
    "2025-02-02-preview",
    "2025-10-02-preview",
];
const SESSION_VERSIONS: &[&str] = &["2025-02-02-preview", "2025-10-02-preview"];
/// The most an execution may run, as in Azure.
const MAX_TIMEOUT: Duration = Duration::from_secs(220);
/// The most output characters a request may ask for per stream.
const MAX_OUTPUT_CHARS: usize = 1 << 20;
/// The largest request body accepted.
pub(crate) const MAX_BODY_BYTES: usize = 4 << 20;

/// What the handlers share.
pub(crate) struct AppState {
    pub pool: Arc<Pool>,
    pub isolation: IsolationReport,
    pub default_timeout: Duration,
    pub max_output_chars: usize,
}

/// An Azure-shaped error reply.
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn bad(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response =
            (self.status, [("x-ms-error-code", self.code)], Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

/// The router, before path normalisation.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/code/execute", post(legacy_execute))
        .route("/executions", post(executions))
        .route("/session", get(get_session).delete(delete_session))
        .route("/status", get(status))
        .fallback(|| async {
            ApiError {
                status: StatusCode::NOT_FOUND,
                code: "NotFound",
                message: "no such route".into(),
            }
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Collapses doubled slashes and drops a trailing one, so `//code/execute/` routes too.
pub(crate) fn normalize_path(mut request: Request) -> Request {
    let uri = request.uri();
    let path = uri.path();
    if path.contains("//") || (path.len() > 1 && path.ends_with('/')) {
        let mut clean: String =
            path.split('/')
                .filter(|s| !s.is_empty())
                .fold(String::new(), |mut p, s| {
                    p.push('/');
                    p.push_str(s);
                    p
                });
        if clean.is_empty() {
            clean.push('/');
        }
        if let Some(query) = uri.query() {
            clean = format!("{clean}?{query}");
        }
        if let Ok(fixed) = clean.parse() {
            *request.uri_mut() = fixed;
        }
    }
    request
}

type Params = Query<HashMap<String, String>>;

fn api_version<'a>(params: &'a Params, accepted: &[&str]) -> Result<&'a str, ApiError> {
    let version = params.get("api-version").ok_or_else(|| {
        ApiError::bad(
            "MissingApiVersionParameter",
            "the api-version query parameter is required",
        )
    })?;
    accepted
        .contains(&version.as_str())
        .then_some(version.as_str())
        .ok_or_else(|| {
            ApiError::bad(
                "UnsupportedApiVersion",
                format!("api-version {version} is not supported here; use one of {accepted:?}"),
            )
        })
}

fn identifier(params: &Params) -> Result<SessionId, ApiError> {
    let raw = params.get("identifier").ok_or_else(|| {
        ApiError::bad(
            "SessionIdentifierMissing",
            "the identifier query parameter is required",
        )
    })?;
    SessionId::parse(raw)
        .map_err(|e| ApiError::bad("SessionRequestValidationFailed", e.to_string()))
}

fn parse_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad(
            "SessionRequestValidationFailed",
            format!("the body is not JSON: {e}"),
        )
    })
}

/// The fields of an execution request, from either contract's object.
fn execution_fields(
    state: &AppState,
    fields: &Value,
) -> Result<(String, Duration, usize), ApiError> {
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase)
    };
    if text("executionType").is_some_and(|t| t != "synchronous") {
        return Err(ApiError::bad(
            "SessionRequestValidationFailed",
            "only synchronous execution is supported locally",
        ));
    }
    if text("codeInputType").is_some_and(|t| t != "inline") {
        return Err(ApiError::bad(
            "SessionRequestValidationFailed",
            "only inline code is supported locally",
        ));
    }
    let code = fields
        .get("code")
        .or_else(|| fields.get("pythonCode"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::bad(
                "SessionRequestValidationFailed",
                "the code field is required",
            )
        })?;
    let timeout = match fields.get("timeoutInSeconds").and_then(Value::as_u64) {
        Some(seconds) => Duration::from_secs(seconds.clamp(1, MAX_TIMEOUT.as_secs())),
        None => state.default_timeout.min(MAX_TIMEOUT),
    };
    let max_output = fields
        .get("outputStreamsMaxLength")
        .and_then(Value::as_u64)
        .map_or(state.max_output_chars, |n| {
            (n as usize).min(MAX_OUTPUT_CHARS)
        });
    Ok((code.to_string(), timeout, max_output))
}

async fn run(
    state: &AppState,
    id: &SessionId,
    code: &str,
    timeout: Duration,
    max_output: usize,
) -> Result<Outcome, ApiError> {
    state
        .pool
        .execute(id.as_str(), code, timeout, max_output)
        .await
        .map_err(|error| match error {
            PoolError::Full(_) => ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "SessionPoolBusy",
                message: error.to_string(),
            },
            PoolError::StartFailed(_) => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "SessionStartFailed",
                message: error.to_string(),
            },
        })
}

async fn legacy_execute(
    State(state): State<Arc<AppState>>,
    params: Params,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let version = api_version(&params, LEGACY_VERSIONS)?;
    let id = identifier(&params)?;
    let body = parse_body(&body)?;
    let properties = body
        .get("properties")
        .filter(|p| p.is_object())
        .ok_or_else(|| {
            ApiError::bad(
                "SessionPropertiesMissing",
                "the body must be {\"properties\": {...}}",
            )
        })?;
    let (code, timeout, max_output) = execution_fields(&state, properties)?;

    let outcome = run(&state, &id, &code, timeout, max_output).await?;
    let status = if outcome.status == OutcomeStatus::Succeeded {
        "Success"
    } else {
        "Failure"
    };
    let result = if outcome.result.is_null() {
        json!("")
    } else {
        outcome.result
    };
    let mut properties = json!({
        "$id": "2",
        "status": status,
        "stdout": outcome.stdout,
        "stderr": outcome.stderr,
        "executionTimeInMilliseconds": outcome.duration_ms,
    });
    let result_key = if version == "2024-02-02-preview" {
        "result"
    } else {
        "executionResult"
    };
    properties[result_key] = result;
    if let Some((code, message)) = outcome.error {
        properties["error"] = json!({ "code": code, "message": message });
    }
    Ok(Json(json!({ "$id": "1", "properties": properties })).into_response())
}

async fn executions(
    State(state): State<Arc<AppState>>,
    params: Params,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    api_version(&params, EXECUTIONS_VERSIONS)?;
    let id = identifier(&params)?;
    let body = parse_body(&body)?;
    if body.get("properties").is_some() && body.get("code").is_none() {
        return Err(ApiError::bad(
            "SessionRequestValidationFailed",
            "this api-version takes top-level fields, not {\"properties\": ...}",
        ));
    }
    let (code, timeout, max_output) = execution_fields(&state, &body)?;

    let outcome = run(&state, &id, &code, timeout, max_output).await?;
    let execution_id = uuid::Uuid::new_v4().to_string();
    let mut reply = json!({
        "id": execution_id,
        "identifier": id.as_str(),
        "executionType": "Synchronous",
        "status": if outcome.status == OutcomeStatus::Succeeded { "Succeeded" } else { "Failed" },
        "result": {
            "stdout": outcome.stdout,
            "stderr": outcome.stderr,
            "executionResult": outcome.result,
            "executionTimeInMilliseconds": outcome.duration_ms,
        },
    });
    if let Some((code, message)) = outcome.error {
        reply["error"] = json!({ "code": code, "message": message });
    }
    Ok(([("operation-id", execution_id)], Json(reply)).into_response())
}

async fn get_session(
    State(state): State<Arc<AppState>>,
    params: Params,
) -> Result<Response, ApiError> {
    api_version(&params, SESSION_VERSIONS)?;
    let id = identifier(&params)?;
    let info = state.pool.info(id.as_str()).ok_or_else(|| not_found(&id))?;
    let time =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Ok(Json(json!({
        "identifier": id.as_str(),
        "createdAt": time(info.created_at),
        "lastAccessedAt": time(info.last_accessed_at),
        "expireAt": time(info.expire_at),
    }))
    .into_response())
}

async fn delete_session(
    State(state): State<Arc<AppState>>,
    params: Params,
) -> Result<Response, ApiError> {
    api_version(&params, SESSION_VERSIONS)?;
    let id = identifier(&params)?;
    if !state.pool.delete(id.as_str()).await {
        return Err(not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn not_found(id: &SessionId) -> ApiError {
    ApiError::bad(
        "SessionWithIdentifierNotFound",
        format!("no session with identifier {}", id.as_str()),
    )
}

async fn status(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({
        "isolation": state.isolation,
        "spareSessionReady": state.pool.spare_ready(),
        "defaultTimeoutInSeconds": state.default_timeout.as_secs(),
        "outputStreamsMaxLength": state.max_output_chars,
    }))
}
