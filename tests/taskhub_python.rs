//! The embedded task hub driven by the official Durable Task Python SDK as worker and client.
//! Each test runs one scenario of tests/support/taskhub_scenarios.py against a fresh hub.

mod taskhub_common;

use serde_json::json;
use taskhub_common::scenario;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_sequence_with_custom_status() {
    let Some(r) = scenario("sequence").await else {
        return;
    };
    assert_eq!(r["status"], "COMPLETED", "{r}");
    assert_eq!(r["output"], json!(["Hello a!", "Hello b!", "Hello c!"]));
    assert_eq!(r["custom_status"], json!({"done": 3}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_fan_in() {
    let Some(r) = scenario("fan_out").await else {
        return;
    };
    assert_eq!(r["status"], "COMPLETED", "{r}");
    assert_eq!(r["output"], json!((0..20).map(|i| i * i).sum::<i32>()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_timer_fires_and_not_early() {
    let Some(r) = scenario("timer").await else {
        return;
    };
    assert_eq!(r["status"], "COMPLETED", "{r}");
    assert!(
        r["output"].as_f64().unwrap() >= 1.0,
        "orchestration clock moved {r}"
    );
    assert!(
        r["elapsed"].as_f64().unwrap() >= 1.0,
        "timer fired early: {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_events_before_and_after_the_wait() {
    let Some(r) = scenario("events").await else {
        return;
    };
    assert_eq!(
        r["early"]["output"],
        json!(["Hello first!", "early"]),
        "{r}"
    );
    assert_eq!(r["late"]["output"], json!(["Hello first!", "late"]), "{r}");
    assert_eq!(r["unknown"], "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_any_with_a_timeout() {
    let Some(r) = scenario("when_any").await else {
        return;
    };
    assert_eq!(r["timed_out"]["output"], "timeout", "{r}");
    assert_eq!(r["approved"]["output"], "approved", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sub_orchestrations_complete_and_fail_into_the_parent() {
    let Some(r) = scenario("sub_orchestrations").await else {
        return;
    };
    assert_eq!(r["status"], "COMPLETED", "{r}");
    assert_eq!(r["output"]["total"], 1 + 4 + 9);
    let failure = r["output"]["failure"].as_str().unwrap();
    assert!(failure.contains("negative input -1"), "{failure}");
    assert_eq!(
        r["children"],
        json!(["COMPLETED", "COMPLETED", "COMPLETED", "FAILED"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_as_new_restarts_with_the_new_input() {
    let Some(r) = scenario("continue_as_new").await else {
        return;
    };
    assert_eq!(r["status"], "COMPLETED", "{r}");
    assert_eq!(r["output"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_running_and_not_yet_started() {
    let Some(r) = scenario("terminate").await else {
        return;
    };
    assert_eq!(r["running"]["status"], "TERMINATED", "{r}");
    assert_eq!(r["running"]["output"], "stopped");
    assert_eq!(r["scheduled"]["status"], "TERMINATED");
    assert_eq!(r["scheduled"]["output"], "never started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_holds_events_until_resume() {
    let Some(r) = scenario("suspend_resume").await else {
        return;
    };
    assert_eq!(r["suspended"], "SUSPENDED", "{r}");
    assert_eq!(r["while_suspended"], "still waiting");
    assert_eq!(r["final"]["status"], "COMPLETED");
    assert_eq!(r["final"]["output"], "resumed value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_by_id_and_filter_only_terminal() {
    let Some(r) = scenario("purge").await else {
        return;
    };
    assert_eq!(r["by_id"], 1, "{r}");
    assert_eq!(r["gone"], true);
    assert_eq!(r["not_terminal"], 0);
    assert_eq!(r["by_filter"], 3);
    assert_eq!(r["remaining_is_running"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_retries_and_failures() {
    let Some(r) = scenario("retries").await else {
        return;
    };
    assert_eq!(r["retried"]["status"], "COMPLETED", "{r}");
    assert_eq!(r["retried"]["output"], 3);
    assert_eq!(r["failed"]["status"], "FAILED");
    let failure = r["failed"]["failure"].as_str().unwrap();
    assert!(failure.contains("this activity always fails"), "{failure}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_paging_and_id_reuse() {
    let Some(r) = scenario("queries").await else {
        return;
    };
    let ids: Vec<String> = (0..5).map(|i| format!("query-{i}")).collect();
    assert_eq!(r["by_prefix"], json!(ids), "{r}");
    assert_eq!(r["running"], json!(["other-1"]));
    assert_eq!(r["none_in_future"], 0);
    assert_eq!(r["listed"], json!(ids));
    assert_eq!(r["duplicate"], "ALREADY_EXISTS");
    assert_eq!(r["reused"]["output"], json!(["Hello again!"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_start_waits_for_its_time() {
    let Some(r) = scenario("scheduled_start").await else {
        return;
    };
    assert_eq!(r["pending_before"], "PENDING", "{r}");
    assert_eq!(r["status"], "COMPLETED");
    assert_eq!(r["started_after_schedule"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_event_between_instances_and_recursive_terminate_and_purge() {
    let Some(r) = scenario("send_event_and_recursive").await else {
        return;
    };
    assert_eq!(r["sent"]["output"], "sent", "{r}");
    assert_eq!(r["received"]["output"], "from sender");
    assert_eq!(r["parent"]["status"], "TERMINATED");
    assert_eq!(r["child"]["status"], "TERMINATED");
    assert_eq!(r["child"]["output"], "all of them");
    assert_eq!(r["purged"], 2);
    assert_eq!(r["child_gone"], true);
}
