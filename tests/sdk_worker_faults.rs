//! The worker against a scripted fake backend: the faults the in-memory backend cannot
//! produce, and the exact messages the worker sends back. Where a test asserts that something
//! did *not* happen, it first shuts the worker down: shutdown waits for every in-flight item,
//! so anything the worker would have sent is already in the fake's log.

mod common;

use std::time::Duration;

use common::fake_backend::{FakeBackend, Script, Seen, Step};
use evalgate::durabletask::channel::USER_AGENT;
use evalgate::durabletask::connection::ConnectionString;
use evalgate::durabletask::proto::{self, history_event, orchestrator_action, work_item};
use evalgate::durabletask::worker::{Worker, WorkerOptions};
use evalgate::durabletask::{FailureDetails, Registry};
use tonic::{Code, Status};

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
        .add_orchestrator("five", |_ctx, (): ()| async move { Ok(5u32) });
    registry
}

fn worker(fake: &FakeBackend, options: WorkerOptions) -> Worker {
    let connection = ConnectionString::unauthenticated(fake.endpoint(), "faults-hub");
    Worker::new(&connection, registry(), options).unwrap()
}

fn activity(name: &str, input: &str, task_id: i32, token: &str) -> Step {
    Step::Item(Box::new(proto::WorkItem {
        completion_token: token.into(),
        request: Some(work_item::Request::ActivityRequest(
            proto::ActivityRequest {
                name: name.into(),
                input: Some(input.into()),
                orchestration_instance: Some(proto::OrchestrationInstance {
                    instance_id: "inst-1".into(),
                    execution_id: None,
                }),
                task_id,
                ..Default::default()
            },
        )),
    }))
}

fn first_orchestration_turn(orchestrator: &str, token: &str) -> Step {
    let event = |event_type| proto::HistoryEvent {
        event_id: -1,
        timestamp: Some(prost_types::Timestamp::default()),
        event_type: Some(event_type),
    };
    Step::Item(Box::new(proto::WorkItem {
        completion_token: token.into(),
        request: Some(work_item::Request::OrchestratorRequest(
            proto::OrchestratorRequest {
                instance_id: "inst-o".into(),
                new_events: vec![
                    event(history_event::EventType::OrchestratorStarted(
                        proto::OrchestratorStartedEvent {},
                    )),
                    event(history_event::EventType::ExecutionStarted(
                        proto::ExecutionStartedEvent {
                            name: orchestrator.into(),
                            input: Some(String::new()),
                            ..Default::default()
                        },
                    )),
                ],
                ..Default::default()
            },
        )),
    }))
}

async fn expect_hello(fake: &mut FakeBackend) -> Option<std::net::SocketAddr> {
    match fake.next(WAIT).await {
        Seen::Hello { remote, .. } => remote,
        other => panic!("expected Hello, saw {other:?}"),
    }
}

async fn expect_get_work_items(fake: &mut FakeBackend) -> proto::GetWorkItemsRequest {
    match fake.next(WAIT).await {
        Seen::GetWorkItems { request, .. } => request,
        other => panic!("expected GetWorkItems, saw {other:?}"),
    }
}

/// What the fake saw after the worker stopped.
fn rest(fake: &mut FakeBackend) -> Vec<Seen> {
    std::iter::from_fn(|| fake.seen.try_recv().ok()).collect()
}

#[tokio::test]
async fn every_call_carries_the_hub_the_agent_and_the_worker_id() {
    let mut fake = FakeBackend::start(Script::default()).await;
    let worker = worker(&fake, options());
    let worker_id = worker.worker_id().to_owned();
    let handle = worker.start();

    for _ in 0..2 {
        let headers = match fake.next(WAIT).await {
            Seen::Hello { headers, .. } => headers,
            Seen::GetWorkItems { headers, request } => {
                assert_eq!(request.max_concurrent_orchestration_work_items, 3);
                assert_eq!(request.max_concurrent_activity_work_items, 4);
                headers
            }
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(headers.get("taskhub").unwrap(), "faults-hub");
        assert_eq!(headers.get("x-user-agent").unwrap(), USER_AGENT);
        assert_eq!(
            headers.get("workerid").unwrap().to_str().unwrap(),
            worker_id
        );
        assert!(headers.get("authorization").is_none());
    }
    assert!(worker_id.matches(':').count() >= 2, "{worker_id}");
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_hanging_hello_times_out_and_the_channel_is_rebuilt_after_repeated_failures() {
    let script = Script {
        hanging_hellos: 3,
        ..Script::default()
    };
    let mut fake = FakeBackend::start(script).await;
    let options = WorkerOptions {
        hello_timeout: Duration::from_millis(200),
        channel_recreate_after: 3,
        ..options()
    };
    let handle = worker(&fake, options).start();

    let mut remotes = Vec::new();
    for _ in 0..4 {
        remotes.push(
            expect_hello(&mut fake)
                .await
                .expect("the fake knows the peer"),
        );
    }
    expect_get_work_items(&mut fake).await;

    assert_eq!(remotes[0], remotes[1], "timeouts alone keep the connection");
    assert_eq!(remotes[0], remotes[2]);
    assert_ne!(
        remotes[0], remotes[3],
        "the fourth Hello came on a new channel"
    );
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_silent_stream_is_given_up_after_the_watchdog() {
    let mut fake = FakeBackend::start(Script::default()).await;
    let options = WorkerOptions {
        silent_disconnect: Duration::from_millis(300),
        ..options()
    };
    let handle = worker(&fake, options).start();

    for _ in 0..2 {
        expect_hello(&mut fake).await;
        expect_get_work_items(&mut fake).await;
    }
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn health_pings_keep_a_quiet_stream_alive() {
    let script = Script {
        sessions: vec![vec![Step::Pings {
            count: 15,
            every: Duration::from_millis(50),
        }]],
        ..Script::default()
    };
    let mut fake = FakeBackend::start(script).await;
    let options = WorkerOptions {
        silent_disconnect: Duration::from_millis(500),
        ..options()
    };
    let handle = worker(&fake, options).start();

    expect_hello(&mut fake).await;
    expect_get_work_items(&mut fake).await;
    // 15 pings span 700 ms, longer than the 500 ms watchdog: the stream must outlive them.
    for n in 1..=15 {
        match fake.next(WAIT).await {
            Seen::PingSent(sent) => assert_eq!(sent, n),
            other => panic!("the worker left during the pings: {other:?}"),
        }
    }
    // Once the pings stop, the watchdog fires and the worker reconnects.
    expect_hello(&mut fake).await;
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn the_worker_reconnects_whatever_way_the_stream_ends() {
    let script = Script {
        sessions: vec![
            vec![Step::Fail(Status::cancelled("stream reset by peer"))],
            vec![Step::Fail(Status::not_found("task hub not found yet"))],
            vec![Step::Fail(Status::unavailable("draining"))],
            vec![Step::Fail(Status::internal("h2 protocol error"))],
        ],
        ..Script::default()
    };
    let mut fake = FakeBackend::start(script).await;
    let handle = worker(&fake, options()).start();

    for _ in 0..5 {
        expect_hello(&mut fake).await;
        expect_get_work_items(&mut fake).await;
    }
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn activity_results_and_failures_echo_token_instance_and_task() {
    let script = Script {
        sessions: vec![vec![
            activity("double", "21", 7, "tok-a"),
            activity("not_registered", "null", 8, "tok-b"),
            activity("fails_quietly", "null", 9, "tok-c"),
        ]],
        ..Script::default()
    };
    let mut fake = FakeBackend::start(script).await;
    let handle = worker(&fake, options()).start();
    expect_hello(&mut fake).await;
    expect_get_work_items(&mut fake).await;

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
        sessions: vec![vec![activity("double", "1", 1, "tok-1")]],
        completion_codes: vec![Code::NotFound],
        ..Script::default()
    };
    let mut fake = FakeBackend::start(script).await;
    let handle = worker(&fake, options()).start();
    expect_hello(&mut fake).await;
    expect_get_work_items(&mut fake).await;

    match fake.next(WAIT).await {
        Seen::CompleteActivity(response) => assert_eq!(response.completion_token, "tok-1"),
        other => panic!("unexpected {other:?}"),
    }
    handle.shutdown(Duration::from_secs(5)).await;

    let rest = rest(&mut fake);
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
        sessions: vec![vec![first_orchestration_turn("five", "tok-o")]],
        completion_codes: vec![Code::Unavailable, Code::Internal],
        ..Script::default()
    };
    let mut fake = FakeBackend::start(script).await;
    let handle = worker(&fake, options()).start();
    expect_hello(&mut fake).await;
    expect_get_work_items(&mut fake).await;

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
    let rest = rest(&mut fake);
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
        sessions: vec![vec![first_orchestration_turn("five", "tok-x")]],
        completion_codes: vec![Code::InvalidArgument],
        ..Script::default()
    };
    let mut fake = FakeBackend::start(script).await;
    let handle = worker(&fake, options()).start();
    expect_hello(&mut fake).await;
    expect_get_work_items(&mut fake).await;

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
