//! The fault tests' driver: a stream of submissions and approvals over HTTP, with a process
//! killed with SIGKILL at seeded random moments and restarted, and the checks that every
//! submission ended approved exactly once.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

/// How long one operation or one submission may take to go through.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// The process a test kills.
pub trait Victim {
    /// The API base the stream talks to now (it may change on restart).
    fn api(&self) -> String;
    /// SIGKILL, and wait until it is gone.
    fn kill(&mut self);
    /// Start it again on the same data directory.
    fn restart(&mut self);
    /// True when the API stays up while the victim is down (the victim is the task hub), so
    /// requests then must be answered 503 with `Retry-After`.
    fn api_survives(&self) -> bool;
}

/// The seed from `EVALGATE_FAULT_SEED`, or a fresh one; printed so a failure can be replayed.
pub fn seeded_rng() -> StdRng {
    let seed = std::env::var("EVALGATE_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(7, |d| d.as_nanos() as u64)
        });
    eprintln!("fault seed {seed} (replay with EVALGATE_FAULT_SEED={seed})");
    StdRng::seed_from_u64(seed)
}

/// One operation of the stream.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    Submit(usize),
    Approve(usize),
}

/// `count` submissions, each followed by the approval of the one `lag` before it, then the
/// remaining approvals: submissions and decisions are in flight together.
pub fn stream(count: usize, lag: usize) -> Vec<Op> {
    let mut ops = Vec::new();
    for n in 0..count {
        ops.push(Op::Submit(n));
        if n >= lag {
            ops.push(Op::Approve(n - lag));
        }
    }
    ops.extend((count.saturating_sub(lag)..count).map(Op::Approve));
    ops
}

/// `kills` distinct operations of `ops`, each with a delay after its request of under `within`
/// (for half of them, under a tenth of it: requests are answered within milliseconds, so those
/// kills land mid-request, the others mostly while the code runs or a turn commits).
pub fn kill_plan(
    rng: &mut StdRng,
    ops: usize,
    kills: usize,
    within: Duration,
) -> BTreeMap<usize, Duration> {
    let mut plan = BTreeMap::new();
    while plan.len() < kills.min(ops) {
        let at = rng.random_range(0..ops);
        let scale = if rng.random_bool(0.5) { 10 } else { 1 };
        let delay = rng.random_range(0..within.as_micros() as u64 / scale);
        plan.insert(at, Duration::from_micros(delay));
    }
    eprintln!("kills at operations {plan:?} of {ops}");
    plan
}

/// The code of submission `n`; its output names it.
pub fn code(n: usize) -> String {
    format!("print('submission {n}')")
}

/// An answer: status, `Retry-After`, body.
type Answer = Result<(u16, Option<String>, Value), reqwest::Error>;

/// Drives the stream against a victim.
pub struct Chaos<V: Victim> {
    pub victim: V,
    pub http: reqwest::Client,
    /// The id each submission got; every later answer must name the same.
    pub ids: BTreeMap<usize, String>,
}

impl<V: Victim> Chaos<V> {
    pub fn new(victim: V) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        Chaos {
            victim,
            http,
            ids: BTreeMap::new(),
        }
    }

    fn request(&self, op: Op) -> reqwest::RequestBuilder {
        let api = self.victim.api();
        match op {
            Op::Submit(n) => self
                .http
                .post(format!("{api}/code"))
                .header("content-type", "text/plain")
                .header("idempotency-key", format!("fault-stream-{n}"))
                .body(code(n)),
            Op::Approve(n) => self
                .http
                .post(format!("{api}/code/{}/approval", self.ids[&n]))
                .json(&json!({"approved": true, "comment": format!("decision {n}")})),
        }
    }

    /// Runs `op` until it went through. With `kill`, the victim is killed that long after the
    /// request went out (or just after the answer, if that came first) and restarted, and the
    /// request is retried.
    pub async fn run(&mut self, op: Op, mut kill: Option<Duration>) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            assert!(Instant::now() < deadline, "{op:?} never went through");
            if let Op::Approve(n) = op {
                // A decision is taken only once the code has run.
                let stages = ["awaiting_approval", "approved"];
                if self.wait_for_stage_in(&self.ids[&n], &stages).await == "approved" {
                    return;
                }
            }

            let request = self.request(op).send();
            tokio::pin!(request);
            let Some(delay) = kill.take() else {
                match read(request.await).await {
                    Ok((202, _, body)) => {
                        self.record(op, &body);
                        return;
                    }
                    // The decision was taken by an attempt whose answer was lost.
                    Ok((410, _, _)) if matches!(op, Op::Approve(_)) => return,
                    Ok((503, Some(_), _)) => {}
                    Ok((status, _, body)) => panic!("{op:?} answered {status}: {body}"),
                    Err(err) => panic!("{op:?} failed with no kill pending: {err}"),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };

            let early = tokio::select! {
                answer = &mut request => Some(answer),
                () = tokio::time::sleep(delay) => None,
            };
            self.victim.kill();
            let before = early.is_some();
            let answer = read(match early {
                Some(answer) => answer,
                None => request.await,
            })
            .await;
            eprintln!(
                "kill -9 during {op:?}, {delay:?} after its request (answered before the kill: \
                 {before}; answer: {:?})",
                answer
                    .as_ref()
                    .map(|(status, _, _)| *status)
                    .map_err(|_| "none")
            );
            if let Ok((202, _, body)) = &answer {
                self.record(op, body);
            }
            if self.victim.api_survives() {
                // While the backend is down the API answers with documented backpressure.
                let down = read(self.request(op).send().await).await;
                match down {
                    Ok((503, Some(retry_after), _)) => {
                        assert!(
                            retry_after.parse::<u64>().is_ok(),
                            "Retry-After {retry_after}"
                        )
                    }
                    other => panic!("{op:?} with the backend down answered {other:?}"),
                }
            }
            self.victim.restart();
        }
    }

    fn record(&mut self, op: Op, body: &Value) {
        let Op::Submit(n) = op else { return };
        let id = body["id"].as_str().expect("an id in the 202").to_owned();
        let known = self.ids.entry(n).or_insert_with(|| id.clone());
        assert_eq!(*known, id, "submission {n} got a second id on retry");
    }

    /// The status document of `id`, when the API answers 200.
    async fn status(&self, id: &str) -> Option<Value> {
        let url = format!("{}/code/{id}", self.victim.api());
        let response = self.http.get(url).send().await.ok()?;
        if response.status() != 200 {
            return None;
        }
        response.json().await.ok()
    }

    /// Polls until the submission is in one of `stages`; returns the stage.
    pub async fn wait_for_stage_in(&self, id: &str, stages: &[&str]) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let status = self.status(id).await;
            let stage = status.as_ref().and_then(|s| s["stage"].as_str());
            if let Some(stage) = stage.filter(|stage| stages.contains(stage)) {
                return stage.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "{id} never reached {stages:?}: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every id in `stage`, page by page.
    pub async fn listed(&self, stage: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("{}/code?stage={stage}&pageSize=100", self.victim.api());
            if let Some(token) = &token {
                url.push_str(&format!("&continuationToken={token}"));
            }
            let page: Value = self
                .http
                .get(url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            for item in page["items"].as_array().expect("items") {
                ids.push(item["id"].as_str().unwrap().to_owned());
            }
            match page["continuationToken"].as_str() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return ids,
            }
        }
    }

    /// Every submission of the stream ended approved with its own output and decision, the
    /// listing of `approved` holds each exactly once, and nothing else exists.
    pub async fn check_exactly_once(&self, count: usize) {
        let ids: Vec<String> = (0..count).map(|n| self.ids[&n].clone()).collect();
        let distinct: HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), count, "every submission has its own id");
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(self.wait_for_stage_in(id, &["approved"]).await, "approved");
            let done = self.status(id).await.expect("status");
            assert_eq!(done["runtimeStatus"], "Completed", "{done}");
            assert_eq!(
                done["evaluation"]["stdout"],
                format!("submission {n}\n"),
                "{done}"
            );
            assert_eq!(
                done["decision"]["comment"],
                format!("decision {n}"),
                "{done}"
            );
        }

        let mut approved = self.listed("approved").await;
        approved.sort();
        let mut expected = ids;
        expected.sort();
        assert_eq!(
            approved, expected,
            "each submission is approved exactly once"
        );
        for stage in ["executing", "awaiting_approval", "rejected", "failed"] {
            assert_eq!(
                self.listed(stage).await,
                Vec::<String>::new(),
                "nothing {stage}"
            );
        }
    }
}

async fn read(answer: Result<reqwest::Response, reqwest::Error>) -> Answer {
    let response = answer?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    ))
}
