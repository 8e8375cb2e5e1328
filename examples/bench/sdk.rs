//! The approval workload on the SDKs alone, with a trivial activity: our Rust worker and client
//! (`evalgate::durabletask`) and the official Python SDK (`tests/support/bench_python_sdk.py`),
//! one after the other against the same `handler taskhub`.
//!
//! Both run the same orchestration shape as the service (an activity, a custom status, then the
//! approval event raced against a one-hour timer) and the same client loop (schedule, poll the
//! custom status, raise the event, wait for completion), so the ratio compares the SDKs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use evalgate::durabletask::client::{Client, RuntimeStatus, ScheduleOptions};
use evalgate::durabletask::connection::ConnectionString;
use evalgate::durabletask::replay::{Either, race};
use evalgate::durabletask::worker::{Worker, WorkerOptions};
use evalgate::durabletask::{FailureDetails, OrchestrationContext, Registry};
use serde_json::{Value, json};

const ORCHESTRATOR: &str = "BenchGate";
const ACTIVITY: &str = "BenchNoop";
const EVENT: &str = "HumanApproval";
const FLOW_LIMIT: Duration = Duration::from_secs(60);

/// What one SDK's run measured.
pub struct SdkRun {
    /// Flows finished within the window.
    pub completed: usize,
    /// Schedule to `awaiting_approval` seen by the client, per flow.
    pub to_awaiting_ms: Vec<f64>,
    /// Schedule to completion, per flow.
    pub total_ms: Vec<f64>,
    /// CPU seconds the SDK's process used during the run (the task hub's are measured apart).
    pub cpu_s: f64,
    /// Failed flows.
    pub errors: Vec<String>,
}

async fn gate(ctx: OrchestrationContext, value: String) -> Result<Value, FailureDetails> {
    let result: String = ctx.call_activity(ACTIVITY, &value).await?;
    ctx.set_custom_status(&json!({"stage": "awaiting_approval", "result": result}))?;

    let deadline = ctx.current_time() + chrono::Duration::hours(1);
    let approval = ctx.wait_for_external_event::<Value>(EVENT);
    match race(approval, ctx.create_timer(deadline)).await {
        Either::Left(decision) => {
            let decision = decision?;
            ctx.set_custom_status(&json!({"stage": "approved", "result": result}))?;
            Ok(json!({"approved": decision["approved"], "result": result}))
        }
        Either::Right(()) => Ok(json!({"approved": false, "result": result})),
    }
}

/// Runs the workload with our worker and client in this process, against the hub at `addr`.
pub async fn rust(
    addr: &str,
    flows: usize,
    window: Duration,
    poll: Duration,
) -> anyhow::Result<SdkRun> {
    let connection = ConnectionString::unauthenticated(format!("http://{addr}"), "default");
    let mut registry = Registry::new();
    registry.add_orchestrator(ORCHESTRATOR, gate);
    registry.add_activity(ACTIVITY, |_ctx, value: String| async move {
        Ok::<_, FailureDetails>(value)
    });
    let worker = Worker::new(&connection, registry, WorkerOptions::default())?.start();
    let client = Arc::new(Client::new(&connection)?);

    let cpu_before = own_cpu_seconds();
    let deadline = Instant::now() + window;
    let mut tasks = Vec::new();
    for number in 0..flows {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            let mut sequence = 0;
            while Instant::now() < deadline {
                sequence += 1;
                match flow(&client, &format!("{number}-{sequence}"), poll).await {
                    Ok((awaiting, total, finished)) if finished <= deadline => {
                        done.push((awaiting, total));
                    }
                    Ok(_) => {}
                    Err(err) => return (done, Some(err.to_string())),
                }
            }
            (done, None)
        }));
    }
    let mut run = SdkRun {
        completed: 0,
        to_awaiting_ms: Vec::new(),
        total_ms: Vec::new(),
        cpu_s: 0.0,
        errors: Vec::new(),
    };
    for task in tasks {
        let (done, error) = task.await?;
        run.completed += done.len();
        for (awaiting, total) in done {
            run.to_awaiting_ms.push(awaiting);
            run.total_ms.push(total);
        }
        run.errors.extend(error);
    }
    run.cpu_s = own_cpu_seconds() - cpu_before;
    worker.shutdown(Duration::from_secs(5)).await;
    Ok(run)
}

async fn flow(client: &Client, value: &str, poll: Duration) -> anyhow::Result<(f64, f64, Instant)> {
    let started = Instant::now();
    let id = client
        .schedule_new_orchestration(ORCHESTRATOR, value, ScheduleOptions::default())
        .await?;
    loop {
        let state = client.get_instance(&id, true).await?;
        let stage = state
            .and_then(|s| s.custom_status_as::<Value>().ok())
            .map(|status| status["stage"].clone());
        if stage.is_some_and(|s| s == "awaiting_approval") {
            break;
        }
        if started.elapsed() > FLOW_LIMIT {
            bail!("{id} never reached awaiting_approval");
        }
        tokio::time::sleep(poll).await;
    }
    let awaiting = started.elapsed();

    client
        .raise_event(&id, EVENT, &json!({"approved": true}))
        .await?;
    let state = client.wait_for_completion(&id, FLOW_LIMIT).await?;
    let finished = Instant::now();
    let output: Value = state.output_as()?;
    if state.status != RuntimeStatus::Completed
        || output != json!({"approved": true, "result": value})
    {
        bail!("{id} ended {:?} with {output}", state.status);
    }
    Ok((ms(awaiting), ms(finished - started), finished))
}

/// Runs the same workload with the official Python SDK, in its own process.
pub async fn python(
    addr: &str,
    flows: usize,
    window: Duration,
    poll: Duration,
) -> anyhow::Result<SdkRun> {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/bench_python_sdk.py");
    let output = tokio::process::Command::new(python_path())
        .arg(script)
        .args([
            addr.to_owned(),
            flows.to_string(),
            window.as_secs_f64().to_string(),
            poll.as_millis().to_string(),
        ])
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .context("cannot run the Python SDK workload (is durabletask in .venv?)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout
        .lines()
        .last()
        .context("no output from the Python workload")?;
    let report: Value =
        serde_json::from_str(last).with_context(|| format!("bad output {last:?}"))?;
    let numbers = |key: &str| -> Vec<f64> {
        report[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default()
    };
    Ok(SdkRun {
        completed: report["completed"].as_u64().unwrap_or(0) as usize,
        to_awaiting_ms: numbers("to_awaiting_ms"),
        total_ms: numbers("total_ms"),
        cpu_s: report["cpu_s"].as_f64().unwrap_or(f64::NAN),
        errors: report["errors"]
            .as_array()
            .map(|a| a.iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
    })
}

/// The Python with the SDK: `EVALGATE_TEST_PYTHON`, or the checkout's `.venv`.
pub fn python_path() -> PathBuf {
    std::env::var_os("EVALGATE_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

/// CPU seconds this process has used (user + system).
pub fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
