//! Per-execution overhead of the local interpreter, against a bare `python3 -c pass` start.
//!
//! Run with `cargo run --release --example interpreter_bench [RUNS]`. Through the production
//! client over loopback HTTP it measures `pass` run in: a new session with no spare (sandbox
//! and kernel start included), a new session served from the ready spare, and a warm session.
//! For scale it also spawns `/usr/bin/python3 -c pass` directly.

use std::time::{Duration, Instant};

use evalgate::sessions::interpreter::{InterpreterOptions, RunningInterpreter, serve};
use evalgate::sessions::{
    ExecuteRequest, ExecutionStatus, SessionClient, SessionClientOptions, SessionId,
};

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64;
    let median = ms(samples[samples.len() / 2]);
    let p95 = ms(samples[(samples.len() * 95 / 100).min(samples.len() - 1)]);
    println!(
        "{name:<40} mean {mean:7.2} ms   median {median:7.2} ms   p95 {p95:7.2} ms   (n={})",
        samples.len()
    );
}

async fn timed(client: &SessionClient, session: Option<SessionId>) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let request = ExecuteRequest {
        code: "pass".into(),
        timeout: Duration::from_secs(30),
        session_id: session,
    };
    let execution = client.execute(&request).await?;
    anyhow::ensure!(
        execution.status == ExecutionStatus::Succeeded,
        "execution failed"
    );
    Ok(started.elapsed())
}

async fn start(spare_session: bool) -> anyhow::Result<(RunningInterpreter, SessionClient)> {
    let interpreter = serve(InterpreterOptions {
        spare_session,
        ..InterpreterOptions::default()
    })
    .await?;
    let client = SessionClient::new(SessionClientOptions::new(interpreter.base_url()))?;
    Ok((interpreter, client))
}

/// Waits, outside the measurement, until the interpreter reports its spare session ready.
async fn spare_ready(interpreter: &RunningInterpreter) -> anyhow::Result<()> {
    let status = interpreter.base_url().join("status")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let body: serde_json::Value = reqwest::get(status.clone()).await?.json().await?;
        if body["spareSessionReady"] == true {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    anyhow::bail!("the spare session was not ready within 10 s")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100);

    let mut bare = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let status = std::process::Command::new("/usr/bin/python3")
            .args(["-c", "pass"])
            .status()?;
        anyhow::ensure!(status.success());
        bare.push(started.elapsed());
    }

    let (cold_interpreter, cold_client) = start(false).await?;
    let mut cold = Vec::with_capacity(runs);
    for _ in 0..runs {
        cold.push(timed(&cold_client, None).await?);
    }
    cold_interpreter.shutdown().await;

    let (interpreter, client) = start(true).await?;
    let mut from_spare = Vec::with_capacity(runs);
    for _ in 0..runs {
        spare_ready(&interpreter).await?;
        from_spare.push(timed(&client, None).await?);
    }

    let warm_session = SessionId::generate();
    timed(&client, Some(warm_session.clone())).await?;
    let mut warm = Vec::with_capacity(runs);
    for _ in 0..runs {
        warm.push(timed(&client, Some(warm_session.clone())).await?);
    }
    interpreter.shutdown().await;

    summary("bare `/usr/bin/python3 -c pass` spawn", bare);
    summary("new session, no spare (cold start)", cold);
    summary("new session from the ready spare", from_spare);
    summary("warm session (one execution)", warm);
    Ok(())
}
