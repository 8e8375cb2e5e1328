//! SubmitCode: accepts Python code and starts its evaluation.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::instances::Started;
use super::problem::Problem;
use super::{AppState, MAX_CODE_BYTES, approve_url, base_url, status_url};
use crate::workflow::model::{Principal, Submission};

/// Namespace of submission ids derived from idempotency keys.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x2f4c_9d1e_7a53_4b08_b6e2_51c0_d93a_7f14);
/// The longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmitJson {
    code: String,
}

/// The 202 answer's body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    /// The submission id.
    pub id: String,
    /// Where to read its status.
    pub status_query_get_uri: String,
    /// Where reviewers post their decision.
    pub approve_uri: String,
}

/// `POST /api/code` with `{"code": "..."}` as JSON, or the code itself as text/plain.
pub async fn submit_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let body = body.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(_) => too_large(),
        other => Problem::bad_request("unreadable-body", other.body_text()),
    })?;
    let code = read_code(&headers, &body)?;
    let key = idempotency_key(&headers)?;
    let submitted_by = state.settings.caller(&headers);

    // With a key, the id is derived from it and the caller, so a retry finds the same instance
    // and two callers never share one; the fingerprint tells a true retry from a reused key.
    // Anonymous callers (function keys only) share one scope: they are one caller to us.
    let scope = match &submitted_by {
        Some(Principal { id: Some(id), .. }) => format!("id:{}", id.to_lowercase()),
        Some(Principal {
            name: Some(name), ..
        }) => format!("name:{}", name.to_lowercase()),
        _ => "anonymous".to_owned(),
    };
    let (id, fingerprint) = match &key {
        Some(key) => {
            let id = Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, format!("{scope}\n{key}").as_bytes());
            let print = Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, code.as_bytes());
            (id.simple().to_string(), Some(print.simple().to_string()))
        }
        None => (Uuid::new_v4().simple().to_string(), None),
    };

    let submission = Submission {
        code,
        submitted_by,
        approval_timeout_secs: state.settings.approval_timeout.as_secs(),
        execution_timeout_secs: state.settings.execution_timeout.as_secs(),
        fingerprint: fingerprint.clone(),
    };
    let started = state.instances.start(&id, &submission).await?;

    let replayed = started == Started::AlreadyExists;
    if replayed {
        let existing = state.instances.get(&id).await?;
        let same = existing
            .and_then(|view| view.submission)
            .is_some_and(|earlier| earlier.fingerprint == fingerprint && fingerprint.is_some());
        if !same {
            return Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "this Idempotency-Key was already used for different code",
            ));
        }
    }
    tracing::info!(instance.id = %id, replayed, "submission accepted");

    let base = base_url(&headers);
    let status_uri = status_url(&base, &id);
    let accepted = Accepted {
        approve_uri: approve_url(&base, &id),
        status_query_get_uri: status_uri.clone(),
        id,
    };
    let mut response = (StatusCode::ACCEPTED, Json(accepted)).into_response();
    let response_headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&status_uri) {
        response_headers.insert(header::LOCATION, location);
    }
    response_headers.insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    if replayed {
        response_headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

fn too_large() -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "code-too-large",
        format!("the code is over the limit of {MAX_CODE_BYTES} bytes"),
    )
}

/// The code from a JSON or a plain-text body, checked for size and emptiness.
fn read_code(headers: &HeaderMap, body: &[u8]) -> Result<String, Problem> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();

    let code = match essence.as_str() {
        "application/json" => {
            let parsed: SubmitJson = super::json_object(body, "{\"code\": \"...\"}")?;
            parsed.code
        }
        "text/plain" => String::from_utf8(body.to_vec())
            .map_err(|_| Problem::bad_request("bad-encoding", "the code must be UTF-8 text"))?,
        _ => {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "send the code as application/json {\"code\": \"...\"} or as text/plain",
            ));
        }
    };

    if code.len() > MAX_CODE_BYTES {
        return Err(too_large());
    }
    if code.trim().is_empty() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty-code",
            "the code is empty",
        ));
    }
    Ok(code)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Problem::bad_request(
            "bad-idempotency-key",
            "send one Idempotency-Key header, not several",
        ));
    }
    let key = value.to_str().map(str::trim).unwrap_or("");
    let printable = key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !printable {
        return Err(Problem::bad_request(
            "bad-idempotency-key",
            format!(
                "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
            ),
        ));
    }
    Ok(Some(key.to_owned()))
}
