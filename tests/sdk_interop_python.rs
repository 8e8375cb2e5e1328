//! Interop with Microsoft's Python SDK (durabletask 1.12.0) over the real in-memory backend:
//! the official client drives an instance our worker runs, and our client drives an instance
//! the official worker runs. Both directions cross the wire formats of payloads, custom status,
//! events (with their case-insensitive names) and failure-free completion.

mod common;

use std::time::Duration;

use common::backend::{Backend, Script, run_script, support_script, wait_for_instance};
use evalgate::durabletask::client::{Client, RuntimeStatus, ScheduleOptions};
use evalgate::durabletask::worker::{Worker, WorkerOptions};
use evalgate::durabletask::{FailureDetails, Registry};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn status_error(err: impl std::fmt::Display) -> FailureDetails {
    FailureDetails::new("CustomStatus", err.to_string())
}

fn rust_registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .add_activity("rust_shout", |_ctx, name: String| async move {
            Ok::<_, FailureDetails>(name.to_uppercase())
        })
        .add_orchestrator("rust_review", |ctx, name: String| async move {
            let shouted: String = ctx.call_activity("rust_shout", &name).await?;
            ctx.set_custom_status(&json!({ "stage": "awaiting", "shouted": shouted }))
                .map_err(status_error)?;
            let verdict: Value = ctx.wait_for_external_event("Verdict").await?;
            ctx.set_custom_status(&json!({ "stage": "done" }))
                .map_err(status_error)?;
            Ok(json!({ "shouted": shouted, "verdict": verdict }))
        });
    registry
}

#[tokio::test]
async fn the_python_client_reads_and_signals_an_instance_our_worker_runs() {
    let Some(backend) = Backend::start() else {
        return;
    };
    let worker = Worker::new(
        &backend.connection(),
        rust_registry(),
        WorkerOptions::default(),
    )
    .unwrap()
    .start();

    let stdout = run_script(
        backend.python(),
        &support_script("py_client.py"),
        &[
            &backend.address(),
            "rust_review",
            r#""ada""#,
            "VERDICT",
            r#"{"approved": true, "note": "ok"}"#,
        ],
        WAIT,
    )
    .await
    .unwrap();
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();

    assert_eq!(report["status"], "COMPLETED", "{report}");
    assert_eq!(
        report["first_custom_status"],
        json!({ "stage": "awaiting", "shouted": "ADA" })
    );
    assert_eq!(report["custom_status"], json!({ "stage": "done" }));
    assert_eq!(
        report["output"],
        json!({ "shouted": "ADA", "verdict": { "approved": true, "note": "ok" } })
    );

    // Our own client agrees with what the Python client saw.
    let client = Client::new(&backend.connection()).unwrap();
    let id = report["instance_id"].as_str().unwrap();
    let state = client.get_instance(id, true).await.unwrap().unwrap();
    assert_eq!(state.status, RuntimeStatus::Completed);
    assert_eq!(state.name, "rust_review");
    assert_eq!(state.output_as::<Value>().unwrap(), report["output"]);

    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn our_client_drives_an_instance_the_python_worker_runs() {
    let Some(backend) = Backend::start() else {
        return;
    };
    let script = support_script("py_worker.py");
    let (mut python_worker, _) =
        Script::spawn(backend.python(), &script, &[&backend.address()], "READY").unwrap();
    let client = Client::new(&backend.connection()).unwrap();

    let id = client
        .schedule_new_orchestration("python_pipeline", "Rust", ScheduleOptions::default())
        .await
        .unwrap();
    let waiting = wait_for_instance(&client, &id, WAIT, |s| s.custom_status.is_some())
        .await
        .unwrap();
    assert_eq!(waiting.status, RuntimeStatus::Running);
    let status: Value = waiting.custom_status_as().unwrap();
    assert_eq!(status["stage"], "waiting");
    assert_eq!(status["greeting"], "Hello from Python, Rust!");

    client
        .raise_event(&id, "decision", &json!({ "approved": false }))
        .await
        .unwrap();
    let state = client.wait_for_completion(&id, WAIT).await.unwrap();

    assert_eq!(state.status, RuntimeStatus::Completed, "{state:?}");
    assert_eq!(state.input_as::<String>().unwrap(), "Rust");
    assert_eq!(
        state.output_as::<Value>().unwrap(),
        json!({ "greeting": "Hello from Python, Rust!", "decision": { "approved": false } })
    );
    python_worker.terminate(Duration::from_secs(10));
}
