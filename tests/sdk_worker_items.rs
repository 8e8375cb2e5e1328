//! Work items against a scripted fake backend: the exact Complete* and Abandon* messages the
//! worker sends for results, user errors, panics and completion faults. Where a test asserts that something
//! did *not* happen, it first shuts the worker down: shutdown waits for every in-flight item,
//! so anything the worker would have sent is already in the fake's log.

mod common;

use std::time::Duration;

use common::fake_backend::{FakeBackend, Script, Seen, Step};
use evalgate::durabletask::connection::ConnectionString;
use evalgate::durabletask::proto::{self, orchestrator_action};
use evalgate::durabletask::worker::{Worker, WorkerOptions};
use evalgate::durabletask::{FailureDetails, Registry};
use tonic::Code;

const WAIT: Duration = Duration::from_secs(20);

fn options() -> WorkerOptions {
    WorkerOptions {
        max_concurrent_orchestrations: 3,
        max_concurrent_activities: 4,
        backoff_base: Duration::from_millis(20),
        backoff_cap: Duration::from_millis(100),
        ..WorkerOptions::default()
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .add_activity("double", |_ctx, n: u32| async move {
            Ok::<_, FailureDetails>(n * 2)
        })
        .add_activity("fails_quietly", |_ctx, (): ()| async move {
            // A failure with an empty message, which backends would read as success.
            Err::<(), _>(FailureDetails {
                error_type: "Quiet".into(),
                message: String::new(),
                stack_trace: None,
                non_retriable: false,
                inner: None,
            })
        })
        .add_activity("panics", |_ctx, (): ()| async move {
            if true {
                panic!("activity bug");
            }
            Ok::<(), FailureDetails>(())
        })
        .add_orchestrator("five", |_ctx, (): ()| async move { Ok(5u32) })
        .add_orchestrator("panics", |_ctx, (): ()| async move {
            if true {
                panic!("orchestrator bug");
            }
            Ok(())
        });
    registry
}

fn worker(fake: &FakeBackend, options: WorkerOptions) -> Worker {
    let connection = ConnectionString::unauthenticated(fake.endpoint(), "faults-hub");
    Worker::new(&connection, registry(), options).unwrap()
}

#[tokio::test]
async fn activity_results_and_failures_echo_token_instance_and_task() {
    let script = Script {
        sessions: vec![vec![
            Step::activity("double", "21", 7, "tok-a"),
            Step::activity("not_registered", "null", 8, "tok-b"),
            Step::activity("fails_quietly", "null", 9, "tok-c"),
        ]],
        ..Script::default()
    };
    let mut fake = FakeBackend::start(script).await;
    let handle = worker(&fake, options()).start();
    fake.expect_hello(WAIT).await;
    fake.expect_get_work_items(WAIT).await;

    let mut completions = Vec::new();
    while completions.len() < 3 {
        match fake.next(WAIT).await {
            Seen::CompleteActivity(response) => completions.push(response),
            other => panic!("unexpected {other:?}"),
        }
    }
    completions.sort_by_key(|r| r.task_id);

    let [doubled, missing, quiet] = &completions[..] else {
        unreachable!()
    };
    assert_eq!(doubled.completion_token, "tok-a");
    assert_eq!(doubled.instance_id, "inst-1");
    assert_eq!(doubled.task_id, 7);
    assert_eq!(doubled.result.as_deref(), Some("42"));
    assert!(doubled.failure_details.is_none());

    assert_eq!(missing.completion_token, "tok-b");
    let failure = missing.failure_details.as_ref().unwrap();
    assert_eq!(failure.error_type, "ActivityTaskNotFound");
    assert!(failure.is_non_retriable);
    assert!(
        failure.error_message.contains("not_registered"),
        "{failure:?}"
    );

    assert_eq!(quiet.completion_token, "tok-c");
    let failure = quiet.failure_details.as_ref().unwrap();
    assert_eq!(failure.error_type, "Quiet");
    assert!(!failure.error_message.is_empty());
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn not_found_on_completion_means_redelivered_so_nothing_more_is_sent() {
    let script = Script {
        sessions: vec![vec![Step::activity("double", "1", 1, "tok-1")]],
        completion_codes: vec![Code::NotFound],
        ..Script::default()
    };
    let mut fake = FakeBackend::start(script).await;
    let handle = worker(&fake, options()).start();
    fake.expect_hello(WAIT).await;
    fake.expect_get_work_items(WAIT).await;

    match fake.next(WAIT).await {
        Seen::CompleteActivity(response) => assert_eq!(response.completion_token, "tok-1"),
        other => panic!("unexpected {other:?}"),
    }
    handle.shutdown(Duration::from_secs(5)).await;

    let rest = fake.rest();
    assert!(
        !rest
            .iter()
            .any(|s| matches!(s, Seen::CompleteActivity(_) | Seen::AbandonActivity(_))),
        "{rest:?}"
    );
}

#[tokio::test]
async fn transient_completion_faults_are_retried_with_the_same_token() {
    let script = Script {
        sessions: vec![vec![Step::first_turn("five", "tok-o")]],
        completion_codes: vec![Code::Unavailable, Code::Internal],
        ..Script::default()
    };
    let mut fake = FakeBackend::start(script).await;
    let handle = worker(&fake, options()).start();
    fake.expect_hello(WAIT).await;
    fake.expect_get_work_items(WAIT).await;

    for _ in 0..3 {
        let Seen::CompleteOrchestration(response) = fake.next(WAIT).await else {
            panic!("expected CompleteOrchestratorTask");
        };
        assert_eq!(response.completion_token, "tok-o");
        assert_eq!(response.instance_id, "inst-o");
        let action = response.actions.last().expect("a completion action");
        let Some(orchestrator_action::OrchestratorActionType::CompleteOrchestration(done)) =
            &action.orchestrator_action_type
        else {
            panic!("expected completeOrchestration, got {action:?}");
        };
        assert_eq!(
            done.orchestration_status,
            proto::OrchestrationStatus::Completed as i32
        );
        assert_eq!(done.result.as_deref(), Some("5"));
    }
    handle.shutdown(Duration::from_secs(5)).await;
    let rest = fake.rest();
    assert!(
        !rest
            .iter()
            .any(|s| matches!(s, Seen::AbandonOrchestration(_))),
        "{rest:?}"
    );
}

#[tokio::test]
async fn a_completion_refused_for_good_gives_the_work_item_back() {
    let script = Script {
        sessions: vec![vec![Step::first_turn("five", "tok-x")]],
        completion_codes: vec![Code::InvalidArgument],
        ..Script::default()
    };
    let mut fake = FakeBackend::start(script).await;
    let handle = worker(&fake, options()).start();
    fake.expect_hello(WAIT).await;
    fake.expect_get_work_items(WAIT).await;

    assert!(matches!(
        fake.next(WAIT).await,
        Seen::CompleteOrchestration(_)
    ));
    match fake.next(WAIT).await {
        Seen::AbandonOrchestration(token) => assert_eq!(token, "tok-x"),
        other => panic!("expected an abandon, saw {other:?}"),
    }
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn panics_fail_the_item_not_the_worker() {
    let script = Script {
        sessions: vec![vec![
            Step::activity("panics", "null", 3, "tok-p"),
            Step::first_turn("panics", "tok-q"),
        ]],
        ..Script::default()
    };
    let mut fake = FakeBackend::start(script).await;
    let handle = worker(&fake, options()).start();
    fake.expect_hello(WAIT).await;
    fake.expect_get_work_items(WAIT).await;

    let (mut activity, mut orchestration) = (None, None);
    while activity.is_none() || orchestration.is_none() {
        match fake.next(WAIT).await {
            Seen::CompleteActivity(response) => activity = Some(response),
            Seen::CompleteOrchestration(response) => orchestration = Some(response),
            other => panic!("unexpected {other:?}"),
        }
    }

    let activity = activity.unwrap();
    assert_eq!(activity.completion_token, "tok-p");
    let failure = activity.failure_details.unwrap();
    assert_eq!(failure.error_type, "ActivityPanicked");
    assert!(
        failure.error_message.contains("activity bug"),
        "{failure:?}"
    );

    let orchestration = orchestration.unwrap();
    assert_eq!(orchestration.completion_token, "tok-q");
    let [action] = &orchestration.actions[..] else {
        panic!("expected one action, got {:?}", orchestration.actions);
    };
    let Some(orchestrator_action::OrchestratorActionType::CompleteOrchestration(done)) =
        &action.orchestrator_action_type
    else {
        panic!("expected completeOrchestration, got {action:?}");
    };
    assert_eq!(
        done.orchestration_status,
        proto::OrchestrationStatus::Failed as i32
    );
    let failure = done.failure_details.as_ref().unwrap();
    assert!(
        failure.error_message.contains("orchestrator bug"),
        "{failure:?}"
    );

    // The worker is still there: shutting it down finds it connected and idle.
    let report = handle.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.abandoned, 0);
}
