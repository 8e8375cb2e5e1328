//! The main job against a session pool that misbehaves: a local server answers 429, 500, 403
//! or with garbage, per a script (a slow answer past the client's timeout
//! is covered by the session client's own tests). Retryable faults are retried on durable timers until the code
//! runs; terminal ones go to review as a failed evaluation. Either way the submission reaches
//! review.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use common::stack::DevStack;

/// One scripted answer of the fake pool.
#[derive(Clone)]
enum Answer {
    Status(u16, &'static str, Option<&'static str>),
    Garbage,
}

struct FakePool {
    script: Mutex<VecDeque<Answer>>,
    requests: Mutex<u32>,
}

const AZURE_ERROR: &str =
    r#"{"error":{"code":"SessionPoolForbidden","message":"the identity may not use this pool"}}"#;
const SUCCESS: &str = r#"{"status":"Succeeded","result":{"stdout":"ran\n","stderr":"","executionResult":null,"executionTimeInMilliseconds":7}}"#;

async fn start_pool(script: Vec<Answer>) -> (String, Arc<FakePool>) {
    let pool = Arc::new(FakePool {
        script: Mutex::new(script.into()),
        requests: Mutex::new(0),
    });
    let shared = pool.clone();
    let app = axum::Router::new().route(
        "/executions",
        post(move || {
            let pool = shared.clone();
            async move { answer(&pool).await }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, pool)
}

async fn answer(pool: &FakePool) -> Response {
    *pool.requests.lock().unwrap() += 1;
    let next = pool.script.lock().unwrap().pop_front();
    match next {
        None => json(200, SUCCESS),
        Some(Answer::Status(status, body, retry_after)) => {
            let mut response = json(status, body);
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from_static(seconds));
            }
            response
        }
        Some(Answer::Garbage) => (StatusCode::OK, "<html>not json").into_response(),
    }
}

fn json(status: u16, body: &'static str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    (StatusCode::from_u16(status).unwrap(), headers, body).into_response()
}

/// The submission reached review with an `error` evaluation whose stderr says `reason`.
async fn assert_reviewed_as_error(stack: &DevStack, id: &str, reason: &str) {
    let waiting = stack.wait_for_stage(id, "awaiting_approval").await;
    assert_eq!(waiting["evaluation"]["status"], "error", "{waiting}");
    let stderr = waiting["evaluation"]["stderr"].as_str().unwrap();
    assert!(stderr.contains(reason), "{stderr}");
}

fn dev_with_pool(url: &str) -> (DevStack, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let stack = DevStack::start_with_args(dir.path(), &[], &["--session-pool-url", url]);
    (stack, dir)
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retried_until_the_code_runs() {
    let (url, pool) = start_pool(vec![
        Answer::Status(429, AZURE_ERROR, Some("1")),
        Answer::Status(
            500,
            r#"{"error":{"code":"InternalError","message":"boom"}}"#,
            None,
        ),
    ])
    .await;
    let (stack, _dir) = dev_with_pool(&url);
    let id = stack.submit_ok("print('ran')").await;

    let waiting = stack.wait_for_stage(&id, "awaiting_approval").await;
    assert_eq!(waiting["evaluation"]["status"], "succeeded", "{waiting}");
    assert_eq!(waiting["evaluation"]["stdout"], "ran\n");
    assert_eq!(
        *pool.requests.lock().unwrap(),
        3,
        "two faults, then success"
    );
}

#[tokio::test]
async fn a_refusal_goes_to_review_as_a_failed_evaluation() {
    let (url, pool) = start_pool(vec![Answer::Status(403, AZURE_ERROR, None)]).await;
    let (stack, _dir) = dev_with_pool(&url);
    let id = stack.submit_ok("print('never runs')").await;

    let waiting = stack.wait_for_stage(&id, "awaiting_approval").await;
    assert_eq!(waiting["evaluation"]["status"], "error");
    let stderr = waiting["evaluation"]["stderr"].as_str().unwrap();
    assert!(stderr.contains("SessionPoolForbidden"), "{stderr}");
    assert_eq!(*pool.requests.lock().unwrap(), 1, "a 403 is not retried");

    let (code, _) = stack.decide(&id, false, "sandbox refused", &[]).await;
    assert_eq!(code, 202);
    stack.wait_for_stage(&id, "rejected").await;
}

#[tokio::test]
async fn garbage_answers_are_not_retried_and_still_reach_review() {
    let (url, pool) = start_pool(vec![Answer::Garbage]).await;
    let (stack, _dir) = dev_with_pool(&url);
    let id = stack.submit_ok("print(1)").await;
    assert_reviewed_as_error(&stack, &id, "malformed").await;
    assert_eq!(*pool.requests.lock().unwrap(), 1);
}

#[tokio::test]
async fn an_unreachable_pool_exhausts_the_policy_and_still_reaches_review() {
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);

    let (stack, _dir) = dev_with_pool(&url);
    let id = stack.submit_ok("print(1)").await;
    assert_reviewed_as_error(&stack, &id, "cannot reach").await;
}
