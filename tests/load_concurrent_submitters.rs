//! Many submitters at once against `handler dev` for a bounded time. Most submit code, wait for
//! its evaluation and approve it, back to back; a few submit as fast as they are answered, up to
//! a cap, without waiting. The only refusals allowed are documented backpressure (429 or 503
//! with `Retry-After`), and every accepted submission reaches `awaiting_approval` with its own
//! output; the reviewed ones then reach `approved`. Nothing here asserts a time.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::stack::{DevStack, STAGE_DEADLINE};
use serde_json::{Value, json};

/// Submitters that wait for each evaluation and approve it.
const REVIEWING: usize = 8;
/// Submitters that only submit, at most `BURST_CAP` each.
const BURSTING: usize = 4;
const BURST_CAP: usize = 40;
/// Every submitter.
const SUBMITTERS: usize = REVIEWING + BURSTING;
/// How long they keep submitting.
const WINDOW: Duration = Duration::from_secs(15);

/// What one submitter saw.
#[derive(Default)]
struct Seen {
    /// (id, the number its code prints) of every accepted submission.
    accepted: Vec<(String, usize)>,
    /// Backpressure answers, each with its `Retry-After`.
    backpressure: Vec<(u16, String)>,
}

async fn submitter(api: String, worker: usize, until: Instant, reviews: bool) -> Seen {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut seen = Seen::default();
    let mut n = 0;
    while Instant::now() < until && (reviews || seen.accepted.len() < BURST_CAP) {
        n += 1;
        let number = worker * 100_000 + n;
        let response = http
            .post(format!("{api}/code"))
            .header("content-type", "text/plain")
            .body(format!("print({number})"))
            .send()
            .await
            .expect("the handler answers every submission");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match (status, retry_after) {
            (202, _) => {}
            (429 | 503, Some(after)) => {
                let seconds: u64 = after.parse().expect("Retry-After in seconds");
                seen.backpressure.push((status, after));
                tokio::time::sleep(Duration::from_secs(seconds.min(1))).await;
                continue;
            }
            (status, after) => {
                panic!("submission answered {status} (Retry-After {after:?}): {body}")
            }
        }
        let id = body["id"].as_str().expect("an id").to_owned();
        seen.accepted.push((id.clone(), number));
        if reviews {
            wait_then_approve(&http, &api, &id, number).await;
        }
    }
    seen
}

/// Polls until the submission awaits approval and checks its evaluation.
async fn wait_for_review(http: &reqwest::Client, api: &str, id: &str, number: usize) {
    let deadline = Instant::now() + STAGE_DEADLINE;
    let waiting = loop {
        let response = http.get(format!("{api}/code/{id}")).send().await.unwrap();
        let code = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if code == 200 && body["stage"] == "awaiting_approval" {
            break body;
        }
        assert!(
            code == 200 || (code == 503 && body["status"] == 503),
            "status of {id} answered {code}: {body}"
        );
        assert!(
            Instant::now() < deadline,
            "{id} never reached awaiting_approval: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(waiting["evaluation"]["status"], "succeeded", "{waiting}");
    assert_eq!(
        waiting["evaluation"]["stdout"],
        format!("{number}\n"),
        "{waiting}"
    );
}

/// Waits for the evaluation, then approves.
async fn wait_then_approve(http: &reqwest::Client, api: &str, id: &str, number: usize) {
    wait_for_review(http, api, id, number).await;
    let decided = http
        .post(format!("{api}/code/{id}/approval"))
        .json(&json!({"approved": true, "comment": format!("load {number}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 202, "approval of {id}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submitters_see_only_backpressure_and_every_submission_reaches_review() {
    let dir = tempfile::tempdir().unwrap();
    let stack = DevStack::start(dir.path(), &[("APPROVAL_TIMEOUT", "1h")]);
    let until = Instant::now() + WINDOW;
    let tasks: Vec<_> = (0..SUBMITTERS)
        .map(|worker| {
            let reviews = worker < REVIEWING;
            tokio::spawn(submitter(stack.api.clone(), worker, until, reviews))
        })
        .collect();

    let mut accepted = Vec::new();
    let mut burst = Vec::new();
    let mut reviewed = Vec::new();
    let mut backpressure = Vec::new();
    for (worker, task) in tasks.into_iter().enumerate() {
        let seen = task.await.expect("a submitter panicked");
        if worker < REVIEWING {
            reviewed.extend(seen.accepted.iter().cloned());
        } else {
            burst.extend(seen.accepted.iter().cloned());
        }
        accepted.extend(seen.accepted);
        backpressure.extend(seen.backpressure);
    }
    eprintln!(
        "{} submissions accepted by {SUBMITTERS} submitters in {WINDOW:?}; {} backpressure answers",
        accepted.len(),
        backpressure.len()
    );
    assert!(
        accepted.len() >= SUBMITTERS,
        "every submitter got at least one submission through"
    );
    let ids: HashSet<&String> = accepted.iter().map(|(id, _)| id).collect();
    assert_eq!(
        ids.len(),
        accepted.len(),
        "every accepted submission has its own id"
    );

    // The burst's submissions reach review with their own output (the reviewers' were checked
    // before they approved them), and the reviewed ones end approved with their own decision.
    let http = reqwest::Client::new();
    for (id, number) in &burst {
        wait_for_review(&http, &stack.api, id, *number).await;
    }
    for (id, number) in &reviewed {
        let done = stack.wait_for_stage(id, "approved").await;
        assert_eq!(
            done["decision"]["comment"],
            format!("load {number}"),
            "{done}"
        );
    }
}
