//! The HTTP functions SubmitCode, ApproveCode and GetStatus, served to the Functions host.
//!
//! The host forwards each request with its `/api/...` path and headers (HTTP forwarding), so this
//! is a plain axum router. Every error is a problem+json document; a request that is refused
//! starts nothing.

pub mod approve;
pub mod instances;
pub mod principal;
pub mod problem;
pub mod status;
pub mod submit;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};

use instances::{BackendError, Instances};
use problem::Problem;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// The largest code accepted, in bytes of UTF-8.
pub const MAX_CODE_BYTES: usize = 256 * 1024;
/// The largest approval comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 4000;

/// Settings the HTTP functions apply to new submissions.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// How long reviewers have before a submission is rejected.
    pub approval_timeout: Duration,
    /// The execution time limit for the code.
    pub execution_timeout: Duration,
    /// Whether the Easy Auth principal headers identify the caller (see [`principal`]).
    pub trust_principal_headers: bool,
}

impl ApiSettings {
    /// The caller named by the principal headers, when they are trusted.
    pub fn caller(&self, headers: &HeaderMap) -> Option<crate::workflow::model::Principal> {
        if self.trust_principal_headers {
            principal::from_headers(headers)
        } else {
            None
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The durable backend.
    pub instances: Arc<dyn Instances>,
    /// Settings for new submissions.
    pub settings: ApiSettings,
}

/// The router: the readiness probe at `/` and the three functions under `/api`.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/code", post(submit::submit_code).get(status::list_codes))
        .route("/code/{id}", get(status::get_status))
        .route("/code/{id}/approval", post(approve::approve_code))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        // Headroom over the code limit for JSON escaping; the handlers check the code itself.
        .layer(DefaultBodyLimit::max(MAX_CODE_BYTES * 2 + 1024));

    Router::new()
        .route("/", get(ready))
        .nest("/api", api)
        .fallback(not_found)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::DEBUG)),
        )
        .with_state(state)
}

/// A span per request with the method and the matched route only: the query string carries the
/// function key, and the path carries ids that are fine but add nothing the route does not.
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    tracing::debug_span!("request", http.method = %request.method(), http.route = route)
}

/// The host's readiness probe: answered at once, whether or not the worker has connected yet.
async fn ready() -> StatusCode {
    StatusCode::OK
}

async fn not_found() -> Problem {
    Problem::not_found("no function is served at this path")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "this function does not accept that method",
    )
}

/// Submission ids are 32 lowercase hex digits; anything else is refused before the backend sees it.
pub fn check_id(id: &str) -> Result<(), Problem> {
    let ok = id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Problem::bad_request(
            "malformed-id",
            "a submission id is 32 lowercase hexadecimal digits",
        ))
    }
}

/// Parses a body that must be one JSON object of the shape `expected` describes.
pub fn json_object<T: serde::de::DeserializeOwned>(
    body: &[u8],
    expected: &str,
) -> Result<T, Problem> {
    let bad = |reason: String| {
        Problem::bad_request(
            "bad-json",
            format!("the body must be a JSON object {expected}: {reason}"),
        )
    };
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|err| bad(err.to_string()))?;
    if !value.is_object() {
        return Err(bad("it is not an object".to_owned()));
    }
    serde_json::from_value(value).map_err(|err| bad(err.to_string()))
}

/// The scheme and host the caller used, for the URLs handed back.
pub fn base_url(headers: &HeaderMap) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    let host = header("x-forwarded-host")
        .or_else(|| header("host"))
        .unwrap_or_else(|| "localhost".to_owned());
    let scheme = header("x-forwarded-proto").unwrap_or_else(|| {
        if headers.contains_key("x-arr-ssl") {
            "https".to_owned()
        } else {
            "http".to_owned()
        }
    });
    format!("{scheme}://{host}")
}

/// The status URL of a submission.
pub fn status_url(base: &str, id: &str) -> String {
    format!("{base}/api/code/{id}")
}

/// The approval URL of a submission.
pub fn approve_url(base: &str, id: &str) -> String {
    format!("{base}/api/code/{id}/approval")
}

impl From<BackendError> for Problem {
    fn from(err: BackendError) -> Self {
        match err {
            BackendError::Unavailable(_) => {
                tracing::warn!(error = %err, "durable backend unavailable");
                Problem::unavailable("the durable backend is not reachable right now; retry later")
            }
            BackendError::NotFound => Problem::not_found("no submission has this id"),
            BackendError::Other(_) => {
                tracing::error!(error = %err, "durable backend failed");
                Problem::internal()
            }
        }
    }
}
