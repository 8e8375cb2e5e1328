//! The binary run the way the Functions host runs it: `handler` with FUNCTIONS_CUSTOMHANDLER_PORT
//! and the settings in its environment, probed with `GET /`, sent requests with their `/api`
//! paths and forwarded headers, and stopped with SIGTERM. The durable backend and the session
//! pool are the standalone `handler taskhub` and `handler interpreter` processes.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::tools::{HANDLER, Proc, free_port, handler_command, start_tool};

fn handler_env(command: &mut Command, port: u16, hub: &str, pool: &str) {
    command
        .env_remove("WEBSITE_INSTANCE_ID")
        .env_remove("WEBSITE_SITE_NAME")
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env(
            "DURABLE_TASK_SCHEDULER_CONNECTION_STRING",
            format!("Endpoint=http://{hub};TaskHub=default;Authentication=None"),
        )
        .env("SESSION_POOL_URL", pool)
        .env("APPROVAL_TIMEOUT", "PT1H");
}

async fn poll_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn runs_as_the_functions_host_runs_it() {
    let data = tempfile::tempdir().unwrap();
    let hub_port = free_port();
    let hub_addr = format!("127.0.0.1:{hub_port}");
    let (_pool, pool_url) = start_tool(
        handler_command(&["interpreter", "--listen", "127.0.0.1:0"]),
        "local interpreter listening on ",
    );

    // The handler starts before the task hub exists: the probe must be answered anyway.
    let port = free_port();
    let mut command = Command::new(HANDLER);
    handler_env(&mut command, port, &hub_addr, &pool_url);
    let mut handler = Proc(command.stderr(Stdio::null()).spawn().unwrap());
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    poll_until("the readiness probe", async || {
        http.get(format!("{base}/"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;

    let (_hub, _) = start_tool(
        handler_command(&[
            "taskhub",
            "--listen",
            &hub_addr,
            "--data-dir",
            data.path().to_str().unwrap(),
        ]),
        "LISTENING ",
    );

    // A forwarded request: the /api path, the host's headers, the caller's principal.
    let submitted = http
        .post(format!("{base}/api/code?code=function-key"))
        .header("content-type", "application/json")
        .header("x-forwarded-host", "evalapp.azurewebsites.net")
        .header("x-forwarded-proto", "https")
        .header("x-ms-client-principal-name", "submitter@example.com")
        .header("x-ms-client-principal-id", "submitter-oid")
        .body(r#"{"code": "print('from the host')"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 202);
    let location = submitted.headers()["location"].to_str().unwrap().to_owned();
    let body: serde_json::Value = submitted.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        location,
        format!("https://evalapp.azurewebsites.net/api/code/{id}")
    );

    let status_url = format!("{base}/api/code/{id}");
    let mut last = serde_json::Value::Null;
    poll_until("awaiting_approval", async || {
        last = get_json(&http, &status_url).await;
        last["stage"] == "awaiting_approval"
    })
    .await;
    assert_eq!(last["evaluation"]["stdout"], "from the host\n");
    assert_eq!(last["submittedBy"]["name"], "submitter@example.com");

    let decided = http
        .post(format!("{status_url}/approval"))
        .header("content-type", "application/json")
        .header("x-ms-client-principal-name", "reviewer@example.com")
        .header("x-ms-client-principal-id", "reviewer-oid")
        .body(r#"{"approved": true, "comment": "ship it"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 202);
    poll_until("approved", async || {
        last = get_json(&http, &status_url).await;
        last["stage"] == "approved"
    })
    .await;
    assert_eq!(last["decision"]["by"], "reviewer@example.com");

    // SIGTERM drains and exits cleanly.
    let pid = handler.0.id() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = handler.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "handler did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
}

async fn get_json(http: &reqwest::Client, url: &str) -> serde_json::Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

fn run_in_azure(args: &[&str], connection: &str, pool: &str) -> Output {
    Command::new(HANDLER)
        .args(args)
        .env("WEBSITE_INSTANCE_ID", "test-instance")
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", free_port().to_string())
        .env("DURABLE_TASK_SCHEDULER_CONNECTION_STRING", connection)
        .env("SESSION_POOL_URL", pool)
        .output()
        .unwrap()
}

#[test]
fn in_azure_local_parts_are_refused() {
    let local_hub = "Endpoint=http://127.0.0.1:4001;TaskHub=default;Authentication=None";
    let real_hub =
        "Endpoint=https://s.westus.durabletask.io;TaskHub=h;Authentication=ManagedIdentity";
    let real_pool = "https://pool.westus.azurecontainerapps.io/subscriptions/x";

    let out = run_in_azure(&[], local_hub, real_pool);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DURABLE_TASK_SCHEDULER_CONNECTION_STRING"),
        "{stderr}"
    );

    let out = run_in_azure(&[], real_hub, "http://127.0.0.1:8089");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("SESSION_POOL_URL"));

    for tool in [&["dev"][..], &["taskhub"], &["interpreter"]] {
        let out = run_in_azure(tool, real_hub, real_pool);
        assert!(!out.status.success(), "{tool:?} ran in Azure");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("refuses to run in Azure"),
            "{tool:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn bad_settings_stop_the_process_with_a_clear_message() {
    let out = Command::new(HANDLER)
        .env_remove("WEBSITE_INSTANCE_ID")
        .env_remove("WEBSITE_SITE_NAME")
        .env(
            "DURABLE_TASK_SCHEDULER_CONNECTION_STRING",
            "Endpoint=http://127.0.0.1:1;TaskHub=x",
        )
        .env("SESSION_POOL_URL", "http://127.0.0.1:2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("DURABLE_TASK_SCHEDULER_CONNECTION_STRING"),
        "{stderr}"
    );
    assert!(stderr.to_lowercase().contains("authentication"), "{stderr}");
}

#[test]
fn handler_dev_checks_settings_before_starting_anything() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(HANDLER)
        .args([
            "dev",
            "--port",
            "0",
            "--taskhub-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data.path())
        .env_remove("WEBSITE_INSTANCE_ID")
        .env_remove("WEBSITE_SITE_NAME")
        .env("APPROVAL_TIMEOUT", "5x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("APPROVAL_TIMEOUT is invalid"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "nothing started: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        std::fs::read_dir(data.path()).unwrap().next().is_none(),
        "no data was written"
    );
}
