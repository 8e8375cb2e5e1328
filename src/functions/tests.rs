//! The router tested as a service against an in-memory fake backend: status codes, problem
//! documents, and that a refused request starts nothing.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::Utc;
use tower::ServiceExt;

use super::instances::*;
use super::*;
use crate::workflow::model::{
    ApprovalEvent, Evaluation, EvaluationStatus, Principal, Progress, Stage, Submission,
};

#[derive(Default)]
struct Fake {
    instances: Mutex<HashMap<String, InstanceView>>,
    starts: Mutex<Vec<String>>,
    events: Mutex<Vec<(String, ApprovalEvent)>>,
}

#[async_trait::async_trait]
impl Instances for Fake {
    async fn start(&self, id: &str, submission: &Submission) -> Result<Started, BackendError> {
        let mut instances = self.instances.lock().unwrap();
        if instances.contains_key(id) {
            return Ok(Started::AlreadyExists);
        }
        self.starts.lock().unwrap().push(id.to_owned());
        instances.insert(
            id.to_owned(),
            InstanceView {
                id: id.to_owned(),
                name: crate::workflow::ORCHESTRATOR.to_owned(),
                runtime: Runtime::Pending,
                created_at: Utc::now(),
                last_updated_at: Utc::now(),
                submission: Some(submission.clone()),
                progress: None,
                outcome: None,
                failure: None,
            },
        );
        Ok(Started::Created)
    }

    async fn get(&self, id: &str) -> Result<Option<InstanceView>, BackendError> {
        Ok(self.instances.lock().unwrap().get(id).cloned())
    }

    async fn raise_approval(&self, id: &str, event: &ApprovalEvent) -> Result<(), BackendError> {
        self.events
            .lock()
            .unwrap()
            .push((id.to_owned(), event.clone()));
        Ok(())
    }

    async fn list(&self, _: &[Runtime], _: u32, _: Option<String>) -> Result<Page, BackendError> {
        let instances = self.instances.lock().unwrap().values().cloned().collect();
        Ok(Page {
            instances,
            continuation: None,
        })
    }
}

impl Fake {
    fn put_stage(&self, id: &str, stage: Stage, submitted_by: Option<Principal>) {
        let mut instances = self.instances.lock().unwrap();
        let view = instances.get_mut(id).unwrap();
        view.runtime = Runtime::Running;
        view.progress = Some(Progress {
            stage,
            submitted_by,
            evaluation: Some(Evaluation {
                status: EvaluationStatus::Succeeded,
                stdout: "4\n".into(),
                stderr: String::new(),
                result: None,
                duration_ms: 3,
            }),
            approval_deadline: None,
            decision: None,
        });
    }
}

fn app() -> (Router, Arc<Fake>) {
    app_trusting(true)
}

fn app_trusting(trust_principal_headers: bool) -> (Router, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let state = AppState {
        instances: fake.clone(),
        settings: ApiSettings {
            approval_timeout: Duration::from_secs(60),
            execution_timeout: Duration::from_secs(10),
            trust_principal_headers,
        },
    };
    (router(state), fake)
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, serde_json::Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, headers, body)
}

fn post(uri: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(uri)
        .header("content-type", content_type)
        .header("host", "example.test")
        .body(body.into())
        .unwrap()
}

#[tokio::test]
async fn submit_answers_202_with_links() {
    let (app, fake) = app();
    let (status, headers, body) = send(
        &app,
        post("/api/code", "application/json", r#"{"code":"print(1)"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = body["id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    let status_uri = format!("http://example.test/api/code/{id}");
    assert_eq!(body["statusQueryGetUri"], status_uri);
    assert_eq!(body["approveUri"], format!("{status_uri}/approval"));
    assert_eq!(headers["location"], status_uri.as_str());
    assert!(headers.contains_key("retry-after"));
    assert_eq!(fake.starts.lock().unwrap().len(), 1);

    let (status, _, _) = send(&app, post("/api/code", "text/plain", "x = 1")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let submission = fake
        .instances
        .lock()
        .unwrap()
        .values()
        .find(|v| v.submission.as_ref().is_some_and(|s| s.code == "x = 1"))
        .cloned();
    assert!(submission.is_some(), "text/plain body is the code itself");
}

#[tokio::test]
async fn bad_submissions_get_problems_and_start_nothing() {
    let (app, fake) = app();
    let big = format!(r#"{{"code":"{}"}}"#, "x".repeat(MAX_CODE_BYTES + 1));
    let cases: Vec<(Request<Body>, StatusCode)> = vec![
        (
            post("/api/code", "application/json", r#"{"code":""}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            post("/api/code", "application/json", r#"{"code":"   \n"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            post("/api/code", "text/plain", ""),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            post("/api/code", "application/json", "{not json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            post("/api/code", "application/json", r#"{"code": 5}"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            post("/api/code", "application/json", r#"{"cod":"x"}"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            post("/api/code", "application/json", r#"["print(1)"]"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            post("/api/code", "application/xml", "<code/>"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Request::post("/api/code")
                .body(Body::from("print(1)"))
                .unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            post("/api/code", "text/plain", vec![0xff, 0xfe, 0x00]),
            StatusCode::BAD_REQUEST,
        ),
        (
            post("/api/code", "application/json", big),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            post("/api/code", "text/plain", "x".repeat(MAX_CODE_BYTES * 3)),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Request::post("/api/code")
                .header("content-type", "text/plain")
                .header("idempotency-key", "")
                .body(Body::from("print(1)"))
                .unwrap(),
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (index, (request, expected)) in cases.into_iter().enumerate() {
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), expected, "case {index}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "case {index}"
        );
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(problem["status"], expected.as_u16(), "case {index}");
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "case {index}"
        );
    }
    assert!(
        fake.starts.lock().unwrap().is_empty(),
        "a refused submission started something"
    );
}

#[tokio::test]
async fn idempotency_key_returns_the_same_submission() {
    let (app, fake) = app();
    let keyed = |code: &'static str| {
        Request::post("/api/code")
            .header("content-type", "text/plain")
            .header("idempotency-key", "order-42")
            .body(Body::from(code))
            .unwrap()
    };
    let (first_status, _, first) = send(&app, keyed("print(1)")).await;
    let (again_status, headers, again) = send(&app, keyed("print(1)")).await;
    assert_eq!(first_status, StatusCode::ACCEPTED);
    assert_eq!(again_status, StatusCode::ACCEPTED);
    assert_eq!(first["id"], again["id"]);
    assert_eq!(headers["idempotent-replayed"], "true");
    assert_eq!(fake.starts.lock().unwrap().len(), 1);

    let (reused, _, problem) = send(&app, keyed("print(2)")).await;
    assert_eq!(reused, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem["type"], "/problems/idempotency-key-reused");

    // The same key from other callers is theirs alone: named only, or with an id.
    let from = |header: &str, who: &str| {
        Request::post("/api/code")
            .header("content-type", "text/plain")
            .header("idempotency-key", "order-42")
            .header(header, who)
            .body(Body::from("print(3)"))
            .unwrap()
    };
    let (alice_status, _, alice) = send(&app, from("x-ms-client-principal-name", "alice")).await;
    let (carol_status, _, carol) = send(&app, from("x-ms-client-principal-id", "carol-oid")).await;
    assert_eq!(
        (alice_status, carol_status),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
    );
    assert_ne!(alice["id"], first["id"]);
    assert_ne!(carol["id"], alice["id"]);
    assert_eq!(fake.starts.lock().unwrap().len(), 3);

    let twice = Request::post("/api/code")
        .header("content-type", "text/plain")
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .body(Body::from("1"))
        .unwrap();
    let (status, _, _) = send(&app, twice).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn status_404_for_unknown_and_400_for_malformed_ids() {
    let (app, _) = app();
    let get = |uri: &str| Request::get(uri).body(Body::empty()).unwrap();
    let (status, _, _) = send(&app, get("/api/code/0123456789abcdef0123456789abcdef")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for bad in [
        "nothex",
        "0123456789ABCDEF0123456789ABCDEF",
        "..%2F..%2Fetc",
    ] {
        let (status, _, _) = send(&app, get(&format!("/api/code/{bad}"))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, _, _) = send(&app, get("/api/code?stage=nonsense")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = send(&app, get("/api/code?pageSize=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, body) = send(&app, get("/api/code?continuationToken=garbage")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["type"], "/problems/bad-continuation-token");
    let (status, _, body) = send(&app, get("/api/code?foo=1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("pageSize"));
    let (status, _, _) = send(&app, get("/api/elsewhere")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, body) = send(
        &app,
        Request::delete("/api/code").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["status"], 405);
}

#[tokio::test]
async fn approval_follows_the_stage() {
    let (app, fake) = app();
    let (_, _, body) = send(
        &app,
        Request::post("/api/code")
            .header("content-type", "text/plain")
            .header("x-ms-client-principal-name", "alice@example.com")
            .header("x-ms-client-principal-id", "alice-id")
            .body(Body::from("1 + 1"))
            .unwrap(),
    )
    .await;
    let id = body["id"].as_str().unwrap().to_owned();
    let approval = |who: &str, json: &str| {
        Request::post(format!("/api/code/{id}/approval"))
            .header("content-type", "application/json")
            .header("x-ms-client-principal-id", who)
            .body(Body::from(json.to_owned()))
            .unwrap()
    };
    let yes = r#"{"approved": true, "comment": "fine"}"#;

    let (status, _, _) = send(&app, approval("bob-id", yes)).await;
    assert_eq!(status, StatusCode::CONFLICT, "still executing");

    let alice = Principal {
        id: Some("alice-id".into()),
        name: Some("alice@example.com".into()),
    };
    fake.put_stage(&id, Stage::AwaitingApproval, Some(alice));
    let (status, _, _) = send(&app, approval("alice-id", yes)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no self-approval");
    let (status, _, _) = send(&app, approval("bob-id", r#"{"approved": "yes"}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = send(&app, approval("bob-id", yes)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let events = fake.events.lock().unwrap().clone();
    assert_eq!(events.len(), 1);
    assert!(events[0].1.approved);
    assert_eq!(events[0].1.by.as_deref(), Some("bob-id"));

    fake.put_stage(&id, Stage::Approved, None);
    let (status, _, _) = send(&app, approval("carol-id", yes)).await;
    assert_eq!(status, StatusCode::GONE, "decided already");
    assert_eq!(fake.events.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn untrusted_principal_headers_name_nobody() {
    let (app, fake) = app_trusting(false);
    let forged = |request: axum::http::request::Builder| {
        request
            .header("x-ms-client-principal-name", "mallory@example.com")
            .header("x-ms-client-principal-id", "mallory-oid")
    };
    let submit = forged(Request::post("/api/code"))
        .header("content-type", "text/plain")
        .body(Body::from("1"))
        .unwrap();
    let (_, _, body) = send(&app, submit).await;
    let id = body["id"].as_str().unwrap().to_owned();
    let stored = fake.instances.lock().unwrap()[&id].clone();
    assert_eq!(stored.submission.unwrap().submitted_by, None);

    fake.put_stage(&id, Stage::AwaitingApproval, None);
    let approve = forged(Request::post(format!("/api/code/{id}/approval")))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"approved": true}"#))
        .unwrap();
    let (status, _, _) = send(&app, approve).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(fake.events.lock().unwrap()[0].1.by, None);
}

#[tokio::test]
async fn readiness_probe_answers_at_once() {
    let (app, _) = app();
    let response = app
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Every route and method declared in the function folders is served, and nothing else under
/// the route prefix is.
#[tokio::test]
async fn declared_routes_are_served_and_nothing_else() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let host: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("host.json")).unwrap()).unwrap();
    let prefix = host["extensions"]["http"]["routePrefix"]
        .as_str()
        .unwrap_or("api");
    assert_eq!(
        host["customHandler"]["enableForwardingHttpRequest"], true,
        "the router expects forwarded requests"
    );

    let (app, fake) = app();
    let id = "0123456789abcdef0123456789abcdef";
    fake.start(id, &sample_submission()).await.unwrap();
    fake.put_stage(id, Stage::AwaitingApproval, None);

    let mut declared = Vec::new();
    for function in ["SubmitCode", "ApproveCode", "GetStatus"] {
        let path = root.join(function).join("function.json");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let trigger = json["bindings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "httpTrigger")
            .unwrap_or_else(|| panic!("{} has no httpTrigger", path.display()))
            .clone();
        let route = trigger["route"].as_str().unwrap().to_owned();
        for method in trigger["methods"].as_array().unwrap() {
            declared.push((method.as_str().unwrap().to_uppercase(), route.clone()));
        }
    }
    assert_eq!(declared.len(), 3, "{declared:?}");

    for (method, route) in &declared {
        // Fill in route parameters; optional ones are tried both with and without a value.
        let mut paths = vec![route.replace("{id?}", id).replace("{id}", id)];
        if route.contains("{id?}") {
            paths.push(route.replace("/{id?}", ""));
        }
        for path in paths {
            let uri = format!("/{prefix}/{path}");
            let request = Request::builder()
                .method(method.as_str())
                .uri(&uri)
                .header("content-type", "application/json")
                .body(Body::from(r#"{"code":"1","approved":true}"#))
                .unwrap();
            let response = app.clone().oneshot(request).await.unwrap();
            assert!(
                response.status() != StatusCode::NOT_FOUND
                    && response.status() != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {uri} is declared but answered {}",
                response.status()
            );
        }
    }

    // Methods and paths nobody declared.
    let undeclared = [
        ("DELETE", format!("/{prefix}/code/{id}")),
        ("PUT", format!("/{prefix}/code")),
        ("GET", format!("/{prefix}/code/{id}/approval")),
        ("GET", format!("/{prefix}/status")),
        ("POST", format!("/{prefix}/code/{id}/approval/extra")),
        ("GET", format!("/{prefix}")),
    ];
    for (method, uri) in undeclared {
        let request = Request::builder()
            .method(method)
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert!(
            response.status() == StatusCode::NOT_FOUND
                || response.status() == StatusCode::METHOD_NOT_ALLOWED,
            "{method} {uri} is not declared but answered {}",
            response.status()
        );
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
}

fn sample_submission() -> Submission {
    Submission {
        code: "1".into(),
        submitted_by: None,
        approval_timeout_secs: 60,
        execution_timeout_secs: 10,
        fingerprint: None,
    }
}
