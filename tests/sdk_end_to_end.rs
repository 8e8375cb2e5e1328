//! Our client and our worker against two real backends, one suite: Microsoft's in-memory backend
//! (`durabletask` 1.12.0 on 127.0.0.1) and our embedded task hub. Activities, failures, timers,
//! external events, races, custom status, terminate, suspend/resume, purge and query.

mod common;

use std::time::Duration;

use common::backend::{Backend, wait_for_instance};
use evalgate::durabletask::client::{
    Client, ClientError, InstanceQuery, PurgeFilter, RuntimeStatus, ScheduleOptions,
};
use evalgate::durabletask::connection::ConnectionString;
use evalgate::durabletask::replay::{Either, race, when_any};
use evalgate::durabletask::worker::{Worker, WorkerHandle, WorkerOptions};
use evalgate::durabletask::{FailureDetails, Registry};
use evalgate::taskhub::{RunningTaskHub, TaskHubOptions, serve as serve_task_hub};
use serde::{Deserialize, Serialize};

const WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Decision {
    approved: bool,
    by: String,
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .add_activity("hello", |_ctx, name: String| async move {
            Ok::<_, FailureDetails>(format!("Hello, {name}!"))
        })
        .add_activity("refuse", |_ctx, reason: String| async move {
            Err::<(), _>(FailureDetails::new("Refused", reason))
        })
        .add_orchestrator("greet", |ctx, name: String| async move {
            let first: String = ctx.call_activity("hello", &name).await?;
            let second: String = ctx.call_activity("hello", &first).await?;
            Ok(second)
        })
        .add_orchestrator("refusing", |ctx, reason: String| async move {
            ctx.call_activity::<_, ()>("refuse", &reason).await?;
            Ok("unreachable".to_owned())
        })
        .add_orchestrator("missing_activity", |ctx, (): ()| async move {
            ctx.call_activity::<_, ()>("nobody_registered_this", &())
                .await?;
            Ok(())
        })
        .add_orchestrator("approval", |ctx, timeout_ms: u64| async move {
            ctx.set_custom_status(&serde_json::json!({ "stage": "waiting" }))
                .map_err(|e| FailureDetails::new("Status", e.to_string()))?;
            let event = ctx.wait_for_external_event::<Decision>("Approval");
            let timer = ctx.create_timer_after(Duration::from_millis(timeout_ms));
            let outcome = match race(event, timer).await {
                Either::Left(decision) => {
                    let decision = decision?;
                    format!("approved={} by {}", decision.approved, decision.by)
                }
                Either::Right(()) => "timed out".to_owned(),
            };
            ctx.set_custom_status(&serde_json::json!({ "stage": "decided" }))
                .map_err(|e| FailureDetails::new("Status", e.to_string()))?;
            Ok(outcome)
        })
        .add_orchestrator("first_of_two", |ctx, (): ()| async move {
            let events = vec![
                ctx.wait_for_external_event::<String>("left"),
                ctx.wait_for_external_event::<String>("right"),
            ];
            let (index, value) = when_any(events).await;
            Ok(format!("{index}:{}", value?))
        })
        .add_orchestrator("waits_forever", |ctx, (): ()| async move {
            let value: String = ctx.wait_for_external_event("go").await?;
            Ok(value)
        })
        .add_orchestrator("large_output", |_ctx, size: usize| async move {
            Ok("x".repeat(size))
        });
    registry
}

fn test_options() -> WorkerOptions {
    WorkerOptions {
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(500),
        ..WorkerOptions::default()
    }
}

/// Which backend a scenario runs against.
#[derive(Clone, Copy)]
enum Kind {
    InMemory,
    TaskHub,
}

/// A running backend of either kind; stopped when dropped.
enum Running {
    InMemory(#[allow(dead_code)] Backend),
    TaskHub(#[allow(dead_code)] RunningTaskHub),
}

/// A backend, a client of it and a started worker; `None` when Python tests are opted out.
async fn start(kind: Kind, options: WorkerOptions) -> Option<(Running, Client, WorkerHandle)> {
    let (running, connection) = match kind {
        Kind::InMemory => {
            let backend = Backend::start()?;
            let connection = backend.connection();
            (Running::InMemory(backend), connection)
        }
        Kind::TaskHub => {
            let hub = serve_task_hub(TaskHubOptions::in_memory()).await.unwrap();
            let connection = ConnectionString::unauthenticated(
                format!("http://{}", hub.local_addr()),
                "default",
            );
            (Running::TaskHub(hub), connection)
        }
    };
    let client = Client::new(&connection).unwrap();
    let worker = Worker::new(&connection, registry(), options).unwrap();
    Some((running, client, worker.start()))
}

/// Runs each scenario once per backend, as `in_memory::<name>` and `embedded_task_hub::<name>`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod in_memory {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Kind::InMemory).await
            })*
        }
        mod embedded_task_hub {
            $(#[tokio::test]
            async fn $name() {
                super::$name(super::Kind::TaskHub).await
            })*
        }
    };
}

on_both_backends!(
    activities_chain_to_an_output,
    a_failing_activity_fails_the_orchestration_with_its_details,
    unknown_activities_and_orchestrators_fail_without_retry,
    an_external_event_wins_the_race_and_custom_status_is_published,
    a_timer_wins_the_race_when_no_event_comes,
    when_any_returns_the_first_event,
    terminate_ends_the_instance_with_the_given_output,
    a_suspended_instance_resumes_and_takes_the_held_event,
    purge_deletes_terminal_instances,
    query_pages_through_matching_instances,
    client_errors_say_what_went_wrong,
    an_answer_over_the_size_limit_fails_the_orchestration,
);

async fn schedule<I: Serialize + ?Sized>(client: &Client, name: &str, input: &I) -> String {
    client
        .schedule_new_orchestration(name, input, ScheduleOptions::default())
        .await
        .unwrap()
}

async fn activities_chain_to_an_output(kind: Kind) {
    let Some((_backend, client, worker)) = start(kind, test_options()).await else {
        return;
    };

    let id = schedule(&client, "greet", "Rust").await;
    let state = client.wait_for_completion(&id, WAIT).await.unwrap();

    assert_eq!(state.status, RuntimeStatus::Completed, "{state:?}");
    assert_eq!(state.name, "greet");
    assert_eq!(state.input_as::<String>().unwrap(), "Rust");
    assert_eq!(state.output_as::<String>().unwrap(), "Hello, Hello, Rust!!");
    assert!(state.completed_at.is_some() || state.last_updated_at >= state.created_at);
    let report = worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.abandoned, 0);
}

async fn a_failing_activity_fails_the_orchestration_with_its_details(kind: Kind) {
    let Some((_backend, client, _worker)) = start(kind, test_options()).await else {
        return;
    };

    let id = schedule(&client, "refusing", "not today").await;
    let state = client.wait_for_completion(&id, WAIT).await.unwrap();

    assert_eq!(state.status, RuntimeStatus::Failed);
    let failure = state.failure.expect("failure details");
    let chain = format!("{failure} / {:?}", failure.inner);
    assert!(chain.contains("not today"), "{chain}");
}

async fn unknown_activities_and_orchestrators_fail_without_retry(kind: Kind) {
    let Some((_backend, client, _worker)) = start(kind, test_options()).await else {
        return;
    };

    let id = schedule(&client, "missing_activity", &()).await;
    let state = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(state.status, RuntimeStatus::Failed);
    let failure = format!("{:?}", state.failure);
    assert!(failure.contains("ActivityTaskNotFound"), "{failure}");
    assert!(failure.contains("nobody_registered_this"), "{failure}");

    let id = schedule(&client, "no_such_orchestrator", &()).await;
    let state = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(state.status, RuntimeStatus::Failed);
    let failure = state.failure.unwrap();
    assert!(failure.non_retriable, "{failure:?}");
    assert!(
        failure.message.contains("no_such_orchestrator"),
        "{failure:?}"
    );
}

async fn an_external_event_wins_the_race_and_custom_status_is_published(kind: Kind) {
    let Some((_backend, client, _worker)) = start(kind, test_options()).await else {
        return;
    };

    let id = schedule(&client, "approval", &60_000u64).await;
    let waiting = wait_for_instance(&client, &id, WAIT, |s| s.custom_status.is_some())
        .await
        .unwrap();
    let status: serde_json::Value = waiting.custom_status_as().unwrap();
    assert_eq!(status["stage"], "waiting");

    // Names are case-insensitive: raised as APPROVAL, awaited as Approval.
    let decision = Decision {
        approved: true,
        by: "ada".into(),
    };
    client
        .raise_event(&id, "APPROVAL", &decision)
        .await
        .unwrap();
    let state = client.wait_for_completion(&id, WAIT).await.unwrap();

    assert_eq!(state.status, RuntimeStatus::Completed);
    assert_eq!(state.output_as::<String>().unwrap(), "approved=true by ada");
    let status: serde_json::Value = state.custom_status_as().unwrap();
    assert_eq!(status["stage"], "decided");
}

async fn a_timer_wins_the_race_when_no_event_comes(kind: Kind) {
    let Some((_backend, client, _worker)) = start(kind, test_options()).await else {
        return;
    };

    let id = schedule(&client, "approval", &200u64).await;
    let state = client.wait_for_completion(&id, WAIT).await.unwrap();

    assert_eq!(state.status, RuntimeStatus::Completed);
    assert_eq!(state.output_as::<String>().unwrap(), "timed out");
}

async fn when_any_returns_the_first_event(kind: Kind) {
    let Some((_backend, client, _worker)) = start(kind, test_options()).await else {
        return;
    };

    let id = schedule(&client, "first_of_two", &()).await;
    client.wait_for_start(&id, WAIT).await.unwrap();
    client
        .raise_event(&id, "right", "second one")
        .await
        .unwrap();
    let state = client.wait_for_completion(&id, WAIT).await.unwrap();

    assert_eq!(state.output_as::<String>().unwrap(), "1:second one");
}

async fn terminate_ends_the_instance_with_the_given_output(kind: Kind) {
    let Some((_backend, client, _worker)) = start(kind, test_options()).await else {
        return;
    };

    let id = schedule(&client, "waits_forever", &()).await;
    client.wait_for_start(&id, WAIT).await.unwrap();
    client.terminate(&id, "stopped by test").await.unwrap();
    let state = client.wait_for_completion(&id, WAIT).await.unwrap();

    assert_eq!(state.status, RuntimeStatus::Terminated);
    assert_eq!(state.output_as::<String>().unwrap(), "stopped by test");
}

async fn a_suspended_instance_resumes_and_takes_the_held_event(kind: Kind) {
    let Some((_backend, client, _worker)) = start(kind, test_options()).await else {
        return;
    };

    let id = schedule(&client, "waits_forever", &()).await;
    client.wait_for_start(&id, WAIT).await.unwrap();
    client.suspend(&id, "hold on").await.unwrap();
    wait_for_instance(&client, &id, WAIT, |s| s.status == RuntimeStatus::Suspended)
        .await
        .unwrap();

    client.raise_event(&id, "go", "after resume").await.unwrap();
    client.resume(&id, "").await.unwrap();
    let state = client.wait_for_completion(&id, WAIT).await.unwrap();

    assert_eq!(state.status, RuntimeStatus::Completed);
    assert_eq!(state.output_as::<String>().unwrap(), "after resume");
}

async fn purge_deletes_terminal_instances(kind: Kind) {
    let Some((_backend, client, _worker)) = start(kind, test_options()).await else {
        return;
    };

    let one = schedule(&client, "greet", "one").await;
    let two = schedule(&client, "greet", "two").await;
    client.wait_for_completion(&one, WAIT).await.unwrap();
    client.wait_for_completion(&two, WAIT).await.unwrap();

    let purged = client.purge(&one).await.unwrap();
    assert_eq!(purged.deleted, 1);
    assert!(client.get_instance(&one, false).await.unwrap().is_none());

    let filter = PurgeFilter {
        statuses: vec![RuntimeStatus::Completed],
        ..PurgeFilter::default()
    };
    let purged = client.purge_where(&filter).await.unwrap();
    assert_eq!(purged.deleted, 1);
    assert!(purged.complete);
    assert!(client.get_instance(&two, false).await.unwrap().is_none());
}

async fn query_pages_through_matching_instances(kind: Kind) {
    let Some((_backend, client, _worker)) = start(kind, test_options()).await else {
        return;
    };

    let mut ids = Vec::new();
    for n in 0..5 {
        let options = ScheduleOptions {
            instance_id: Some(format!("batch-{n}")),
            ..ScheduleOptions::default()
        };
        ids.push(
            client
                .schedule_new_orchestration("greet", &n.to_string(), options)
                .await
                .unwrap(),
        );
    }
    schedule(&client, "greet", "not in the batch").await;
    for id in &ids {
        client.wait_for_completion(id, WAIT).await.unwrap();
    }

    let mut query = InstanceQuery {
        statuses: vec![RuntimeStatus::Completed],
        id_prefix: Some("batch-".into()),
        page_size: 2,
        fetch_payloads: true,
        ..InstanceQuery::default()
    };
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = client.query(&query).await.unwrap();
        pages += 1;
        assert!(page.instances.len() <= 2);
        seen.extend(page.instances.into_iter().map(|s| {
            assert!(s.output.is_some(), "payloads were asked for");
            s.instance_id
        }));
        match page.continuation {
            Some(token) => query.continuation = Some(token),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ids);
    assert_eq!(pages, 3);
}

async fn client_errors_say_what_went_wrong(kind: Kind) {
    let Some((_backend, client, _worker)) = start(kind, test_options()).await else {
        return;
    };

    let options = || ScheduleOptions {
        instance_id: Some("fixed-id".into()),
        ..ScheduleOptions::default()
    };
    client
        .schedule_new_orchestration("waits_forever", &(), options())
        .await
        .unwrap();
    let err = client
        .schedule_new_orchestration("waits_forever", &(), options())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::AlreadyExists(_)), "{err:?}");
    assert!(!err.is_retryable());

    let err = client
        .raise_event("no-such-instance", "go", &())
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::NotFound(_)), "{err:?}");
    assert!(
        client
            .get_instance("no-such-instance", false)
            .await
            .unwrap()
            .is_none()
    );

    client.wait_for_start("fixed-id", WAIT).await.unwrap();
    let err = client
        .wait_for_completion("fixed-id", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::DeadlineExceeded(_)), "{err:?}");
    assert!(err.is_retryable());
}

async fn an_answer_over_the_size_limit_fails_the_orchestration(kind: Kind) {
    let options = WorkerOptions {
        max_completion_bytes: 64 * 1024,
        ..test_options()
    };
    let Some((_backend, client, _worker)) = start(kind, options).await else {
        return;
    };

    let id = schedule(&client, "large_output", &(100 * 1024usize)).await;
    let state = client.wait_for_completion(&id, WAIT).await.unwrap();

    assert_eq!(state.status, RuntimeStatus::Failed);
    let failure = state.failure.unwrap();
    assert_eq!(failure.error_type, "ResponseTooLarge");
    assert!(failure.message.contains("65536"), "{}", failure.message);
}
