//! The session-pool client: one `POST` per execution, its answer typed and classified.

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde_json::Value;
use tracing::{debug, warn};

use super::contract::ApiContract;
use super::error::SessionError;
use super::execution::{ExecuteRequest, Execution, SessionId};
use crate::durabletask::auth::TokenSource;

/// The scope of the session pools' data plane.
pub(crate) const SCOPE: &str = "https://dynamicsessions.io/.default";

/// The longest an execution may run in a pool.
const MAX_EXECUTION: Duration = Duration::from_secs(220);

/// How to reach a pool. Build with [`SessionClientOptions::new`] and adjust fields.
#[derive(Clone)]
pub struct SessionClientOptions {
    /// The pool management endpoint (`https://<region>.dynamicsessions.io/subscriptions/…/
    /// sessionPools/<pool>`), or the local interpreter's base URL.
    pub endpoint: Url,
    /// The contract to speak; see [`ApiContract`] for the default.
    pub contract: ApiContract,
    /// Where bearer tokens for `https://dynamicsessions.io/.default` come from; `None` sends
    /// no `Authorization` header (the local interpreter needs none).
    pub credential: Option<Arc<dyn TokenCredential>>,
    /// The whole request's timeout; above the pool's 220 s execution limit by default so a
    /// long execution is not cut off by the client.
    pub request_timeout: Duration,
    /// Characters kept of stdout and of stderr (Azure's default stream cap is 4096).
    pub max_output_chars: usize,
    /// The largest response body read, in bytes; a larger one is malformed.
    pub max_response_bytes: usize,
}

impl SessionClientOptions {
    /// Defaults for `endpoint`: the 2025 contract, no credential, a 240 s request timeout,
    /// 4096 output characters and 4 MiB bodies.
    pub fn new(endpoint: Url) -> Self {
        Self {
            endpoint,
            contract: ApiContract::default(),
            credential: None,
            request_timeout: Duration::from_secs(240),
            max_output_chars: 4096,
            max_response_bytes: 4 << 20,
        }
    }
}

/// A client of one session pool. Cheap to clone; share one per pool.
#[derive(Clone)]
pub struct SessionClient {
    http: reqwest::Client,
    endpoint: Url,
    contract: ApiContract,
    tokens: Option<TokenSource>,
    request_timeout: Duration,
    max_output_chars: usize,
    max_response_bytes: usize,
}

impl SessionClient {
    /// A client for `options.endpoint`.
    pub fn new(options: SessionClientOptions) -> Result<Self, SessionError> {
        let mut endpoint = options.endpoint;
        if !endpoint.path().ends_with('/') {
            endpoint.set_path(&format!("{}/", endpoint.path()));
        }
        if endpoint.cannot_be_a_base() || !matches!(endpoint.scheme(), "http" | "https") {
            return Err(SessionError::InvalidRequest(format!(
                "endpoint {endpoint} is not an http(s) URL"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(options.request_timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| SessionError::InvalidRequest(e.to_string()))?;
        Ok(Self {
            http,
            endpoint,
            contract: options.contract,
            tokens: options.credential.map(|c| TokenSource::new(c, SCOPE)),
            request_timeout: options.request_timeout,
            max_output_chars: options.max_output_chars,
            max_response_bytes: options.max_response_bytes,
        })
    }

    /// Runs `request.code` in its session (a fresh one unless named) and waits for the end.
    /// Never retries: see [`SessionError::is_retryable`].
    #[tracing::instrument(skip_all, fields(session.id = tracing::field::Empty))]
    pub async fn execute(&self, request: &ExecuteRequest) -> Result<Execution, SessionError> {
        let session = request
            .session_id
            .clone()
            .unwrap_or_else(SessionId::generate);
        tracing::Span::current().record("session.id", session.as_str());
        let (path, api_version) = self.contract.route();
        let mut url = self
            .endpoint
            .join(path)
            .map_err(|e| SessionError::InvalidRequest(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("api-version", api_version)
            .append_pair("identifier", session.as_str());
        let timeout = request.timeout.clamp(Duration::from_secs(1), MAX_EXECUTION);
        let body = self
            .contract
            .body(&request.code, timeout.as_secs_f64().ceil() as u64);

        let call = self.authorize(self.http.post(url).json(&body)).await?;
        let started = Instant::now();
        let response = call.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = self.read_body(response).await?;
        debug!(status = status.as_u16(), "session pool answered");

        if !status.is_success() {
            return Err(classify(status, &headers, &body));
        }
        let json: Value =
            serde_json::from_slice(&body).map_err(|e| SessionError::MalformedResponse {
                status: status.as_u16(),
                reason: format!("not JSON: {e}"),
            })?;
        let parsed = self
            .contract
            .parse(&json, self.max_output_chars)
            .map_err(|reason| SessionError::MalformedResponse {
                status: status.as_u16(),
                reason,
            })?;
        let mut execution = parsed.execution;
        execution.duration_ms = parsed
            .duration_ms
            .unwrap_or_else(|| started.elapsed().as_millis() as u64);
        Ok(execution)
    }

    /// Ends a session at once instead of leaving it to the pool's cooldown, which frees its slot
    /// in the pool and destroys whatever the code left behind. Only the executions contract has
    /// this call (`DELETE /session`, from 2025-02-02-preview); with the legacy contract it does
    /// nothing. A session that is already gone counts as deleted.
    #[tracing::instrument(skip_all, fields(session.id = session.as_str()))]
    pub async fn delete_session(&self, session: &SessionId) -> Result<(), SessionError> {
        if self.contract == ApiContract::Legacy2024 {
            return Ok(());
        }
        let (_, api_version) = self.contract.route();
        let mut url = self
            .endpoint
            .join("session")
            .map_err(|e| SessionError::InvalidRequest(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("api-version", api_version)
            .append_pair("identifier", session.as_str());

        let call = self.authorize(self.http.delete(url)).await?;
        let response = call.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = self.read_body(response).await?;
        debug!(status = status.as_u16(), "session delete answered");
        match classify(status, &headers, &body) {
            _ if status.is_success() => Ok(()),
            SessionError::Rejected { code, .. }
                if status == StatusCode::NOT_FOUND || code == "SessionWithIdentifierNotFound" =>
            {
                Ok(())
            }
            err => Err(err),
        }
    }

    /// Adds the bearer token, marked sensitive so it is never printed, when there is a credential.
    async fn authorize(
        &self,
        call: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, SessionError> {
        let Some(tokens) = &self.tokens else {
            return Ok(call);
        };
        let bearer = tokens
            .bearer()
            .await
            .map_err(|e| SessionError::Credential(e.to_string()))?;
        let mut value = reqwest::header::HeaderValue::try_from(bearer)
            .map_err(|_| SessionError::Credential("the token is not a valid header".into()))?;
        value.set_sensitive(true);
        Ok(call.header(AUTHORIZATION, value))
    }

    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, SessionError> {
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(SessionError::MalformedResponse {
                    status,
                    reason: format!("the body is over {} bytes", self.max_response_bytes),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport(&self, error: reqwest::Error) -> SessionError {
        if error.is_timeout() {
            warn!("session pool request timed out");
            SessionError::Timeout(self.request_timeout)
        } else {
            warn!(error = %error, "session pool connection failed");
            let mut text = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                text = format!("{text}: {cause}");
                source = cause.source();
            }
            SessionError::Connection(text)
        }
    }
}

/// An error status into its error, with Azure's code and message from the body.
fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> SessionError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |key: &str| {
        error
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let code = field("code")
        .or_else(|| {
            headers
                .get("x-ms-error-code")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("Unknown")
                .replace(' ', "")
        });
    let message = field("message").unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        text.chars().take(200).collect()
    });
    let status_code = status.as_u16();
    if status == StatusCode::TOO_MANY_REQUESTS {
        SessionError::Throttled {
            retry_after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after),
            code,
            message,
        }
    } else if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        SessionError::Server {
            status: status_code,
            code,
            message,
        }
    } else {
        SessionError::Rejected {
            status: status_code,
            code,
            message,
        }
    }
}

/// `Retry-After` as delay-seconds or an HTTP date.
fn parse_retry_after(value: &str) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    let wait = date.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_retry_after_both_ways() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn takes_the_code_from_the_body_or_the_header() {
        let body = br#"{"error":{"code":"SessionWithIdentifierNotFound","message":"gone"}}"#;
        let error = classify(StatusCode::BAD_REQUEST, &HeaderMap::new(), body);
        assert_eq!(error.code(), Some("SessionWithIdentifierNotFound"));
        assert!(!error.is_retryable());

        let mut headers = HeaderMap::new();
        headers.insert("x-ms-error-code", "InternalError".parse().unwrap());
        let error = classify(StatusCode::BAD_GATEWAY, &headers, b"<html>");
        assert_eq!(error.code(), Some("InternalError"));
        assert!(error.is_retryable());
    }
}
