//! The service's workflow driven over HTTP: submit, poll until awaiting approval, approve, poll
//! until approved. One flow at a time for latency, many at once for throughput.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// How long one flow may take before the benchmark gives up on it.
const FLOW_LIMIT: Duration = Duration::from_secs(120);

/// A client of the handler's HTTP API.
#[derive(Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

/// What one flow measured.
#[derive(Debug, Clone, Copy)]
pub struct FlowTimes {
    /// From sending the submission to seeing `awaiting_approval`, client side.
    pub to_awaiting_ms: f64,
    /// The same as the task hub recorded it: last update minus creation of the instance.
    pub server_awaiting_ms: f64,
    /// From sending the submission to seeing `approved`.
    pub total_ms: f64,
    /// When the flow ended.
    pub finished: Instant,
}

impl Api {
    /// A client of the API at `base` (such as `http://127.0.0.1:7071/api`).
    pub fn new(base: &str) -> Api {
        Api {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
        }
    }

    async fn submit(&self, code: &str) -> anyhow::Result<String> {
        let response = self
            .http
            .post(format!("{}/code", self.base))
            .header("content-type", "text/plain")
            .body(code.to_owned())
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status != 202 {
            bail!("submission answered {status}: {body}");
        }
        Ok(body["id"].as_str().context("no id")?.to_owned())
    }

    async fn approve(&self, id: &str) -> anyhow::Result<()> {
        let response = self
            .http
            .post(format!("{}/code/{id}/approval", self.base))
            .json(&serde_json::json!({"approved": true, "comment": "bench"}))
            .send()
            .await?;
        if response.status() != 202 {
            bail!("approval of {id} answered {}", response.status());
        }
        Ok(())
    }

    /// Polls every `poll` until the submission is in `stage`; returns its status document.
    async fn wait_stage(&self, id: &str, stage: &str, poll: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + FLOW_LIMIT;
        loop {
            let response = self
                .http
                .get(format!("{}/code/{id}", self.base))
                .send()
                .await?;
            if response.status() == 200 {
                let body: Value = response.json().await?;
                if body["stage"] == stage {
                    return Ok(body);
                }
            }
            if Instant::now() > deadline {
                bail!("{id} did not reach {stage} within {FLOW_LIMIT:?}");
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// One whole flow: submit `code`, wait for review, approve, wait for the decision.
    pub async fn flow(&self, code: &str, poll: Duration) -> anyhow::Result<FlowTimes> {
        let started = Instant::now();
        let id = self.submit(code).await?;
        let waiting = self.wait_stage(&id, "awaiting_approval", poll).await?;
        let to_awaiting = started.elapsed();
        if waiting["evaluation"]["status"] != "succeeded" {
            bail!("{id} evaluated as {}", waiting["evaluation"]);
        }
        self.approve(&id).await?;
        self.wait_stage(&id, "approved", poll).await?;
        Ok(FlowTimes {
            to_awaiting_ms: ms(to_awaiting),
            server_awaiting_ms: server_ms(&waiting),
            total_ms: ms(started.elapsed()),
            finished: Instant::now(),
        })
    }
}

/// Runs `count` flows one after another.
pub async fn sequential(api: &Api, count: usize, poll: Duration) -> anyhow::Result<Vec<FlowTimes>> {
    let mut times = Vec::with_capacity(count);
    for n in 0..count {
        times.push(api.flow(&format!("print({n} * 2)"), poll).await?);
    }
    Ok(times)
}

/// What a throughput run measured.
pub struct Throughput {
    /// Flows finished within the window.
    pub completed: Vec<FlowTimes>,
    /// Errors (a flow that failed ends its worker).
    pub errors: Vec<String>,
}

/// `flows` closed loops, each running flows back to back until `window` has passed. Flows that
/// finish after the window are not counted.
pub async fn closed_loops(api: &Api, flows: usize, window: Duration, poll: Duration) -> Throughput {
    let began = Instant::now();
    let deadline = began + window;
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for worker in 0..flows {
        let api = api.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            let mut n = 0;
            while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                n += 1;
                match api.flow(&format!("{worker} + {n}"), poll).await {
                    Ok(times) if times.finished <= deadline => done.push(times),
                    Ok(_) => {}
                    Err(err) => return (done, Some(err.to_string())),
                }
            }
            (done, None)
        }));
    }
    let mut completed = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        match task.await {
            Ok((done, error)) => {
                completed.extend(done);
                errors.extend(error);
            }
            Err(err) => errors.push(err.to_string()),
        }
    }
    Throughput { completed, errors }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn server_ms(status: &Value) -> f64 {
    let time = |field: &str| {
        status[field]
            .as_str()
            .and_then(|t| t.parse::<DateTime<Utc>>().ok())
    };
    match (time("createdTime"), time("lastUpdatedTime")) {
        (Some(created), Some(updated)) => {
            (updated - created).num_microseconds().unwrap_or(0) as f64 / 1000.0
        }
        _ => f64::NAN,
    }
}
