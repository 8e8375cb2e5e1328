//! The worker's connection loop against a scripted fake backend, for the faults the in-memory
//! backend cannot produce: hanging Hello, silent streams, health pings, peer resets; and the
//! metadata every call carries.

mod common;

use std::time::Duration;

use common::fake_backend::{FakeBackend, Script, Seen, Step};
use evalgate::durabletask::channel::USER_AGENT;
use evalgate::durabletask::connection::ConnectionString;
use evalgate::durabletask::worker::{Worker, WorkerOptions};
use evalgate::durabletask::{FailureDetails, Registry};
use tonic::Status;

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
    registry.add_activity("double", |_ctx, n: u32| async move {
        Ok::<_, FailureDetails>(n * 2)
    });
    registry
}

fn worker(fake: &FakeBackend, options: WorkerOptions) -> Worker {
    let connection = ConnectionString::unauthenticated(fake.endpoint(), "faults-hub");
    Worker::new(&connection, registry(), options).unwrap()
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
                assert!(request.work_item_filters.is_none(), "filters are opt-in");
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
        let remote = fake.expect_hello(WAIT).await;
        remotes.push(remote.expect("the fake knows the peer"));
    }
    fake.expect_get_work_items(WAIT).await;

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
        fake.expect_hello(WAIT).await;
        fake.expect_get_work_items(WAIT).await;
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

    fake.expect_hello(WAIT).await;
    fake.expect_get_work_items(WAIT).await;
    // 15 pings span 700 ms, longer than the 500 ms watchdog: the stream must outlive them.
    for n in 1..=15 {
        match fake.next(WAIT).await {
            Seen::PingSent(sent) => assert_eq!(sent, n),
            other => panic!("the worker left during the pings: {other:?}"),
        }
    }
    // Once the pings stop, the watchdog fires and the worker reconnects.
    fake.expect_hello(WAIT).await;
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
            vec![
                Step::Pings {
                    count: 1,
                    every: Duration::from_millis(1),
                },
                Step::End,
            ],
        ],
        ..Script::default()
    };
    let mut fake = FakeBackend::start(script).await;
    let handle = worker(&fake, options()).start();

    for _ in 0..5 {
        fake.expect_hello(WAIT).await;
        fake.expect_get_work_items(WAIT).await;
    }
    assert!(matches!(fake.next(WAIT).await, Seen::PingSent(1)));
    fake.expect_hello(WAIT).await;
    fake.expect_get_work_items(WAIT).await;
    handle.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn work_item_filters_name_what_the_registry_holds() {
    let mut fake = FakeBackend::start(Script::default()).await;
    let mut registry = registry();
    registry.add_orchestrator("route", |_ctx, (): ()| async move { Ok(()) });
    let connection = ConnectionString::unauthenticated(fake.endpoint(), "faults-hub");
    let options = WorkerOptions {
        use_work_item_filters: true,
        ..options()
    };
    let handle = Worker::new(&connection, registry, options).unwrap().start();

    fake.expect_hello(WAIT).await;
    let request = fake.expect_get_work_items(WAIT).await;
    let filters = request.work_item_filters.expect("filters were asked for");
    let names = |names: Vec<String>| names.join(",");
    assert_eq!(
        names(filters.orchestrations.into_iter().map(|f| f.name).collect()),
        "route"
    );
    assert_eq!(
        names(filters.activities.into_iter().map(|f| f.name).collect()),
        "double"
    );
    assert!(filters.entities.is_empty());
    handle.shutdown(Duration::from_secs(5)).await;
}
