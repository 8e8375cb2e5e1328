//! Per-execution overhead of the local interpreter, against a bare `python3 -c pass` start.
//!
//! Run with `cargo run --release --example interpreter_bench [RUNS]`. It measures, through the
//! production client over loopback HTTP: an execution in a fresh session (sandbox and kernel
//! start included), and an execution in a warm session; and, for scale, spawning
//! `/usr/bin/python3 -c pass` directly.

use std::time::{Duration, Instant};

use evalgate::sessions::interpreter::{InterpreterOptions, serve};
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
        "{name:<44} mean {mean:7.2} ms   median {median:7.2} ms   p95 {p95:7.2} ms   (n={})",
        samples.len()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100);
    let interpreter = serve(InterpreterOptions::default()).await?;
    let client = SessionClient::new(SessionClientOptions::new(interpreter.base_url()))?;
    let run = |session: Option<SessionId>| {
        let client = client.clone();
        async move {
            let started = Instant::now();
            let execution = client
                .execute(&ExecuteRequest {
                    code: "pass".into(),
                    timeout: Duration::from_secs(30),
                    session_id: session,
                })
                .await?;
            anyhow::ensure!(
                execution.status == ExecutionStatus::Succeeded,
                "execution failed"
            );
            Ok::<_, anyhow::Error>(started.elapsed())
        }
    };

    let mut bare = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let status = std::process::Command::new("/usr/bin/python3")
            .args(["-c", "pass"])
            .status()?;
        anyhow::ensure!(status.success());
        bare.push(started.elapsed());
    }

    let mut fresh = Vec::with_capacity(runs);
    for _ in 0..runs {
        fresh.push(run(None).await?);
    }

    let warm_session = SessionId::generate();
    run(Some(warm_session.clone())).await?;
    let mut warm = Vec::with_capacity(runs);
    for _ in 0..runs {
        warm.push(run(Some(warm_session.clone())).await?);
    }

    summary("bare `/usr/bin/python3 -c pass` spawn", bare);
    summary("fresh session (sandbox + kernel start)", fresh);
    summary("warm session (one execution)", warm);
    interpreter.shutdown().await;
    Ok(())
}
