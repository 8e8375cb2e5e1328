//! The session client against a faulty pool served on 127.0.0.1 by the test itself: request
//! shapes of both contracts, token caching, and the classification of every kind of failure.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use evalgate::sessions::{
    ApiContract, ExecuteRequest, ExecutionStatus, SessionClient, SessionClientOptions,
    SessionError, SessionId,
};
use serde_json::{Value, json};

/// One request as the fault server saw it: path, query, `Authorization`, body.
type SeenRequest = (String, HashMap<String, String>, Option<String>, Value);

#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<SeenRequest>>,
}

async fn pool(
    State(seen): State<Arc<Seen>>,
    Path((scenario, rest)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    seen.requests
        .lock()
        .unwrap()
        .push((rest.clone(), query, auth, body));
    let azure = |status: StatusCode, code: &str, message: &str| {
        (
            status,
            [("x-ms-error-code", code.to_string())],
            axum::Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response()
    };
    match scenario.as_str() {
        "ok" if rest == "executions" => axum::Json(json!({
            "id": "e1", "identifier": "s", "status": "Succeeded",
            "result": {"stdout": "out", "stderr": "", "executionResult": {"n": 1}, "executionTimeInMilliseconds": 12}
        }))
        .into_response(),
        "ok" => axum::Json(json!({"$id": "1", "properties": {"$id": "2", "status": "Success",
            "stdout": "legacy", "stderr": "", "result": "", "executionTimeInMilliseconds": 5}}))
        .into_response(),
        "throttle" => {
            let mut response = azure(StatusCode::TOO_MANY_REQUESTS, "TooManyRequests", "pool busy");
            response.headers_mut().insert("retry-after", "7".parse().unwrap());
            response
        }
        "fail500" => azure(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "broken"),
        "gateway" => (StatusCode::BAD_GATEWAY, "<html>bad gateway</html>").into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::OK.into_response()
        }
        "garbage" => (StatusCode::OK, "<html>not json").into_response(),
        "noshape" => axum::Json(json!({"unexpected": true})).into_response(),
        "huge" => (StatusCode::OK, "x".repeat(5 << 20)).into_response(),
        "bad400" => azure(StatusCode::BAD_REQUEST, "SessionRequestValidationFailed", "code is required"),
        "unauth401" => azure(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", "audience is wrong"),
        "forbid403" => azure(StatusCode::FORBIDDEN, "AuthorizationFailed", "role missing"),
        "missing404" => azure(StatusCode::NOT_FOUND, "ResourceNotFound", "no such pool"),
        _ => StatusCode::IM_A_TEAPOT.into_response(),
    }
}

async fn fault_server() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = axum::Router::new()
        .route("/{scenario}/{*rest}", post(pool))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, seen)
}

fn client(base: &str, scenario: &str, contract: ApiContract) -> SessionClient {
    SessionClient::new(SessionClientOptions {
        contract,
        request_timeout: Duration::from_millis(800),
        ..SessionClientOptions::new(format!("{base}/{scenario}").parse().unwrap())
    })
    .unwrap()
}

fn request() -> ExecuteRequest {
    ExecuteRequest {
        code: "print('x')".into(),
        timeout: Duration::from_secs(30),
        session_id: None,
    }
}

#[derive(Debug)]
struct FakeCredential {
    calls: AtomicUsize,
    lifetime: azure_core::time::Duration,
}

#[async_trait::async_trait]
impl TokenCredential for FakeCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        assert_eq!(scopes, ["https://dynamicsessions.io/.default"]);
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(AccessToken::new(
            format!("fake-token-{n}"),
            OffsetDateTime::now_utc() + self.lifetime,
        ))
    }
}

#[tokio::test]
async fn sends_each_contract_and_reads_its_answer() {
    let (base, seen) = fault_server().await;
    let current = client(&base, "ok", ApiContract::Executions2025)
        .execute(&request())
        .await
        .unwrap();
    assert_eq!(current.status, ExecutionStatus::Succeeded);
    assert_eq!(current.stdout, "out");
    assert_eq!(current.result, Some(json!({"n": 1})));
    assert_eq!(current.duration_ms, 12);

    let session = SessionId::parse("my|session&id#1").unwrap();
    let legacy = client(&base, "ok", ApiContract::Legacy2024)
        .execute(&ExecuteRequest {
            session_id: Some(session.clone()),
            ..request()
        })
        .await
        .unwrap();
    assert_eq!(legacy.stdout, "legacy");
    assert_eq!(legacy.result, None);

    let requests = seen.requests.lock().unwrap();
    let (path, query, auth, body) = &requests[0];
    assert_eq!(path, "executions");
    assert_eq!(query["api-version"], "2025-02-02-preview");
    assert_eq!(query["identifier"].len(), 32, "a fresh identifier");
    assert_eq!(*auth, None);
    assert_eq!(body["code"], "print('x')");
    assert_eq!(body["timeoutInSeconds"], 30);

    let (path, query, _, body) = &requests[1];
    assert_eq!(path, "code/execute");
    assert_eq!(query["api-version"], "2024-02-02-preview");
    assert_eq!(
        query["identifier"],
        session.as_str(),
        "percent-encoded on the wire, intact here"
    );
    assert_eq!(body["properties"]["code"], "print('x')");
}

#[tokio::test]
async fn caches_the_token_and_refreshes_it_before_expiry() {
    let (base, seen) = fault_server().await;
    let long = Arc::new(FakeCredential {
        calls: AtomicUsize::new(0),
        lifetime: azure_core::time::Duration::hours(1),
    });
    let with_long = SessionClient::new(SessionClientOptions {
        credential: Some(long.clone()),
        ..SessionClientOptions::new(format!("{base}/ok").parse().unwrap())
    })
    .unwrap();
    with_long.execute(&request()).await.unwrap();
    with_long.execute(&request()).await.unwrap();
    assert_eq!(long.calls.load(Ordering::SeqCst), 1);

    let short = Arc::new(FakeCredential {
        calls: AtomicUsize::new(0),
        lifetime: azure_core::time::Duration::minutes(1),
    });
    let with_short = SessionClient::new(SessionClientOptions {
        credential: Some(short.clone()),
        ..SessionClientOptions::new(format!("{base}/ok").parse().unwrap())
    })
    .unwrap();
    with_short.execute(&request()).await.unwrap();
    with_short.execute(&request()).await.unwrap();
    assert_eq!(
        short.calls.load(Ordering::SeqCst),
        2,
        "a token near expiry is renewed"
    );

    let auths: Vec<Option<String>> = seen
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.2.clone())
        .collect();
    assert_eq!(auths[0].as_deref(), Some("Bearer fake-token-1"));
    assert_eq!(auths[3].as_deref(), Some("Bearer fake-token-2"));
}

#[tokio::test]
async fn throttling_and_server_faults_are_retryable() {
    let (base, _) = fault_server().await;
    let throttled = client(&base, "throttle", ApiContract::default())
        .execute(&request())
        .await
        .unwrap_err();
    assert!(
        matches!(throttled, SessionError::Throttled { .. }),
        "{throttled:?}"
    );
    assert!(throttled.is_retryable());
    assert_eq!(throttled.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(throttled.code(), Some("TooManyRequests"));

    for (scenario, code) in [
        ("fail500", "InternalServerError"),
        ("gateway", "BadGateway"),
    ] {
        let failed = client(&base, scenario, ApiContract::default())
            .execute(&request())
            .await
            .unwrap_err();
        assert!(matches!(failed, SessionError::Server { .. }), "{failed:?}");
        assert!(failed.is_retryable());
        assert_eq!(failed.code(), Some(code));
    }

    let slow = client(&base, "slow", ApiContract::default())
        .execute(&request())
        .await
        .unwrap_err();
    assert!(matches!(slow, SessionError::Timeout(_)), "{slow:?}");
    assert!(slow.is_retryable());
}

#[tokio::test]
async fn a_reset_connection_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let closer = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        drop(stream);
    });
    let error = client(&format!("http://{addr}"), "any", ApiContract::default())
        .execute(&request())
        .await
        .unwrap_err();
    closer.join().unwrap();
    assert!(matches!(error, SessionError::Connection(_)), "{error:?}");
    assert!(error.is_retryable());
}

#[tokio::test]
async fn malformed_answers_are_their_own_terminal_error() {
    let (base, _) = fault_server().await;
    for scenario in ["garbage", "noshape", "huge"] {
        let error = client(&base, scenario, ApiContract::default())
            .execute(&request())
            .await
            .unwrap_err();
        assert!(
            matches!(error, SessionError::MalformedResponse { status: 200, .. }),
            "{scenario}: {error:?}"
        );
        assert!(!error.is_retryable());
    }
}

#[tokio::test]
async fn refusals_are_terminal_and_carry_azure_codes() {
    let (base, _) = fault_server().await;
    for (scenario, status, code, message) in [
        (
            "bad400",
            400,
            "SessionRequestValidationFailed",
            "code is required",
        ),
        (
            "unauth401",
            401,
            "InvalidAuthenticationToken",
            "audience is wrong",
        ),
        ("forbid403", 403, "AuthorizationFailed", "role missing"),
        ("missing404", 404, "ResourceNotFound", "no such pool"),
    ] {
        let error = client(&base, scenario, ApiContract::default())
            .execute(&request())
            .await
            .unwrap_err();
        match &error {
            SessionError::Rejected {
                status: s,
                code: c,
                message: m,
            } => {
                assert_eq!((*s, c.as_str(), m.as_str()), (status, code, message));
            }
            other => panic!("{scenario}: {other:?}"),
        }
        assert!(!error.is_retryable());
    }
}
