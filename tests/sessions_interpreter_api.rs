//! The local interpreter's HTTP surface as the real pool's clients see it: Azure error bodies,
//! the tolerances framework clients need, session lookup and deletion, and the cooldown.

use std::time::{Duration, Instant};

use evalgate::sessions::interpreter::{InterpreterOptions, RunningInterpreter, serve};
use evalgate::sessions::{
    ExecuteRequest, SessionClient, SessionClientOptions, SessionError, SessionId,
};
use serde_json::{Value, json};

async fn start(cooldown: Duration) -> RunningInterpreter {
    serve(InterpreterOptions {
        cooldown,
        ..InterpreterOptions::default()
    })
    .await
    .expect("the interpreter starts (bubblewrap: `apt-get install bubblewrap`)")
}

async fn post(
    interpreter: &RunningInterpreter,
    path_and_query: &str,
    body: Value,
) -> (u16, Option<String>, Value) {
    let url = format!("http://{}{path_and_query}", interpreter.local_addr());
    let response = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let code = response
        .headers()
        .get("x-ms-error-code")
        .map(|v| v.to_str().unwrap().to_string());
    (status, code, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn bad_requests_get_azure_error_bodies() {
    let interpreter = start(Duration::from_secs(300)).await;
    let cases = [
        (
            "/executions?identifier=abcd",
            json!({"code": "1"}),
            "MissingApiVersionParameter",
        ),
        (
            "/executions?api-version=1999-01-01&identifier=abcd",
            json!({"code": "1"}),
            "UnsupportedApiVersion",
        ),
        (
            "/executions?api-version=2025-02-02-preview",
            json!({"code": "1"}),
            "SessionIdentifierMissing",
        ),
        (
            "/executions?api-version=2025-02-02-preview&identifier=a%20b",
            json!({"code": "1"}),
            "SessionRequestValidationFailed",
        ),
        (
            "/executions?api-version=2025-02-02-preview&identifier=abcd",
            json!({"timeoutInSeconds": 5}),
            "SessionRequestValidationFailed",
        ),
        (
            "/executions?api-version=2025-02-02-preview&identifier=abcd",
            json!({"code": "1", "executionType": "Asynchronous"}),
            "SessionRequestValidationFailed",
        ),
        (
            "/code/execute?api-version=2024-02-02-preview&identifier=abcd",
            json!({"code": "1"}),
            "SessionPropertiesMissing",
        ),
    ];
    for (path, body, expected) in cases {
        let (status, header, body) = post(&interpreter, path, body).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(header.as_deref(), Some(expected), "{path}");
        assert_eq!(body["error"]["code"], expected, "{path}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let (status, header, _) = post(&interpreter, "/nowhere", json!({})).await;
    assert_eq!((status, header.as_deref()), (404, Some("NotFound")));

    let client = SessionClient::new(SessionClientOptions::new(interpreter.base_url())).unwrap();
    let empty = client
        .execute(&ExecuteRequest {
            code: String::new(),
            timeout: Duration::from_secs(5),
            session_id: None,
        })
        .await;
    assert!(empty.is_ok(), "empty code is valid: {empty:?}");
    interpreter.shutdown().await;
}

#[tokio::test]
async fn tolerates_what_framework_clients_send() {
    let interpreter = start(Duration::from_secs(300)).await;
    let body = json!({"properties": {"codeInputType": "INLINE", "executionType": "SYNCHRONOUS", "pythonCode": "2 + 2"}});
    let (status, _, reply) = post(
        &interpreter,
        "//code/execute/?api-version=2024-02-02-preview&identifier=a%7Cb%23c",
        body,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["properties"]["status"], "Success");
    assert_eq!(reply["properties"]["result"], 4);

    let later = json!({"properties": {"code": "print('v')"}});
    let (_, _, reply) = post(
        &interpreter,
        "/code/execute?api-version=2024-08-02-preview&identifier=abcd",
        later,
    )
    .await;
    assert_eq!(reply["properties"]["executionResult"], "");
    assert_eq!(reply["properties"]["stdout"], "v\n");
    interpreter.shutdown().await;
}

#[tokio::test]
async fn sessions_can_be_looked_up_deleted_and_cool_down() {
    let interpreter = start(Duration::from_millis(300)).await;
    let client = SessionClient::new(SessionClientOptions::new(interpreter.base_url())).unwrap();
    let http = reqwest::Client::new();
    let session_url = |id: &SessionId| {
        format!(
            "{}session?api-version=2025-10-02-preview&identifier={}",
            interpreter.base_url(),
            id.as_str()
        )
    };
    let run = |id: SessionId| {
        let client = client.clone();
        async move {
            client
                .execute(&ExecuteRequest {
                    code: "v = 1".into(),
                    timeout: Duration::from_secs(5),
                    session_id: Some(id),
                })
                .await
        }
    };

    let deleted = SessionId::generate();
    run(deleted.clone()).await.unwrap();
    let found = http.get(session_url(&deleted)).send().await.unwrap();
    assert_eq!(found.status(), 200);
    let info: Value = found.json().await.unwrap();
    assert_eq!(info["identifier"], deleted.as_str());
    let time =
        |key: &str| chrono::DateTime::parse_from_rfc3339(info[key].as_str().unwrap()).unwrap();
    assert!(time("expireAt") > time("createdAt"), "{info}");
    assert_eq!(
        http.delete(session_url(&deleted))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let gone = http.get(session_url(&deleted)).send().await.unwrap();
    assert_eq!(gone.status(), 400);
    assert_eq!(
        gone.headers()["x-ms-error-code"],
        "SessionWithIdentifierNotFound"
    );

    let idle = SessionId::generate();
    run(idle.clone()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut status = 200;
    while status == 200 && Instant::now() < deadline {
        status = http
            .get(session_url(&idle))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        // The poll interval; the deadline above bounds the wait.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 400, "the idle session cooled down");
    let error: Result<_, SessionError> = run(idle).await;
    assert!(
        error.is_ok(),
        "a cooled-down identifier gets a fresh session"
    );
    interpreter.shutdown().await;
}

#[tokio::test]
async fn a_full_pool_throttles_with_retry_after() {
    let work_root = tempfile::tempdir().unwrap();
    let interpreter = serve(InterpreterOptions {
        max_sessions: 1,
        work_root: Some(work_root.path().to_path_buf()),
        ..InterpreterOptions::default()
    })
    .await
    .expect("the interpreter starts");
    let client = SessionClient::new(SessionClientOptions::new(interpreter.base_url())).unwrap();

    let busy = tokio::spawn({
        let client = client.clone();
        async move {
            let code = "import os, time\nopen('/mnt/data/started', 'w').close()\ntime.sleep(3)";
            client
                .execute(&ExecuteRequest {
                    code: code.into(),
                    timeout: Duration::from_secs(10),
                    session_id: None,
                })
                .await
        }
    });
    let started = || {
        std::fs::read_dir(work_root.path())
            .unwrap()
            .flatten()
            .any(|dir| dir.path().join("started").exists())
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !started() && Instant::now() < deadline {
        // The poll interval; the deadline above bounds the wait.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(started(), "the first execution began");

    let throttled = client
        .execute(&ExecuteRequest {
            code: "1".into(),
            timeout: Duration::from_secs(5),
            session_id: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(throttled, SessionError::Throttled { .. }),
        "{throttled:?}"
    );
    assert_eq!(throttled.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(throttled.code(), Some("SessionPoolBusy"));
    assert!(busy.await.unwrap().is_ok());
    interpreter.shutdown().await;
}

#[tokio::test]
async fn the_client_ends_sessions_and_a_gone_one_counts_as_ended() {
    let interpreter = start(Duration::from_secs(300)).await;
    let client = SessionClient::new(SessionClientOptions::new(interpreter.base_url())).unwrap();
    let session = SessionId::generate();
    client
        .execute(&ExecuteRequest {
            code: "kept = 1".into(),
            timeout: Duration::from_secs(5),
            session_id: Some(session.clone()),
        })
        .await
        .unwrap();
    let lookup = format!(
        "{}session?api-version=2025-02-02-preview&identifier={}",
        interpreter.base_url(),
        session.as_str()
    );
    let http = reqwest::Client::new();
    assert_eq!(http.get(&lookup).send().await.unwrap().status(), 200);

    client.delete_session(&session).await.unwrap();
    assert_eq!(
        http.get(&lookup).send().await.unwrap().status(),
        400,
        "the session is gone at once, not after its cooldown"
    );
    client
        .delete_session(&session)
        .await
        .expect("deleting a session that is gone is not an error");
    interpreter.shutdown().await;
}
