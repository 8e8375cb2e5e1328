//! Many submitters at once against `handler dev` for a bounded time. Each submits code, waits
//! for its evaluation and approves it, back to back. The only refusals allowed are documented
//! backpressure (429 or 503 with `Retry-After`), and every accepted submission reaches
//! `awaiting_approval` with its own output and then `approved`. Nothing here asserts a time.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::stack::{DevStack, STAGE_DEADLINE};
use serde_json::{Value, json};

/// Concurrent submitters.
const SUBMITTERS: usize = 12;
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

async fn submitter(api: String, worker: usize, until: Instant) -> Seen {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut seen = Seen::default();
    let mut n = 0;
    while Instant::now() < until {
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

        wait_then_approve(&http, &api, &id, number).await;
    }
    seen
}

/// Polls until the submission awaits approval, checks its evaluation and approves it.
async fn wait_then_approve(http: &reqwest::Client, api: &str, id: &str, number: usize) {
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
        .map(|worker| tokio::spawn(submitter(stack.api.clone(), worker, until)))
        .collect();

    let mut accepted = Vec::new();
    let mut backpressure = Vec::new();
    for task in tasks {
        let seen = task.await.expect("a submitter panicked");
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

    // Every accepted submission ends approved with its own decision.
    for (id, number) in &accepted {
        let done = stack.wait_for_stage(id, "approved").await;
        assert_eq!(
            done["decision"]["comment"],
            format!("load {number}"),
            "{done}"
        );
    }
}
