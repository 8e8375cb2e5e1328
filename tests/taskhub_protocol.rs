//! The task hub's protocol guarantees, checked with a raw gRPC worker: completion tokens,
//! leases, one work item per instance, credits, health pings, UNIMPLEMENTED RPCs, the loopback
//! guard and clean shutdown.

mod taskhub_common;

use std::time::Duration;

use evalgate::taskhub::{self, TaskHubError, TaskHubOptions};
use proto::history_event::EventType;
use taskhub_common::*;
use tonic::Code;

fn count(events: &[proto::HistoryEvent], pred: impl Fn(&EventType) -> bool) -> usize {
    events
        .iter()
        .filter(|e| e.event_type.as_ref().is_some_and(&pred))
        .count()
}

#[tokio::test]
async fn stale_tokens_get_not_found_and_change_nothing() {
    let hub = start_hub().await;
    let mut w = RawWorker::connect(hub.local_addr(), 10, 10).await;
    start_instance(&mut w.client, "stale", "orch").await;

    let first = w.next_item().await;
    let mut wrong = respond(&first, vec![schedule(1, "act")]);
    wrong.completion_token = "not-a-token".into();
    let err = w
        .client
        .complete_orchestrator_task(wrong)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        history(&mut w.client, "stale").await.is_empty(),
        "a stale completion changed history"
    );

    w.client
        .complete_orchestrator_task(respond(&first, vec![schedule(1, "act")]))
        .await
        .unwrap();
    let replay = w
        .client
        .complete_orchestrator_task(respond(&first, vec![schedule(2, "act")]))
        .await;
    assert_eq!(replay.unwrap_err().code(), Code::NotFound);
    let committed = history(&mut w.client, "stale").await;
    assert_eq!(
        count(&committed, |e| matches!(e, EventType::TaskScheduled(_))),
        1
    );

    let task = w.next_item().await;
    assert_eq!(activity(&task).task_id, 1);
    let done = proto::ActivityResponse {
        instance_id: "stale".into(),
        task_id: 1,
        result: Some("\"ok\"".into()),
        completion_token: task.completion_token.clone(),
        ..Default::default()
    };
    let bad = proto::ActivityResponse {
        completion_token: first.completion_token.clone(),
        ..done.clone()
    };
    assert_eq!(
        w.client
            .complete_activity_task(bad)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    w.client.complete_activity_task(done.clone()).await.unwrap();
    assert_eq!(
        w.client
            .complete_activity_task(done)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    let second = w.next_item().await;
    let delivered = &orchestration(&second).new_events;
    assert_eq!(
        count(delivered, |e| matches!(e, EventType::TaskCompleted(_))),
        1,
        "{delivered:?}"
    );
    assert_ne!(
        second.completion_token, first.completion_token,
        "tokens are unique per delivery"
    );

    let abandon = proto::AbandonOrchestrationTaskRequest {
        completion_token: first.completion_token.clone(),
    };
    assert_eq!(
        w.client
            .abandon_task_orchestrator_work_item(abandon)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_lost_worker_stream_releases_its_item_to_another_worker() {
    let hub = start_hub().await;
    let mut a = RawWorker::connect(hub.local_addr(), 10, 10).await;
    start_instance(&mut a.client, "lost", "orch").await;
    let taken = a.next_item().await;
    let mut late_client = raw_client(hub.local_addr()).await;
    drop(a);

    let mut b = RawWorker::connect(hub.local_addr(), 10, 10).await;
    let again = b.next_item().await;
    assert_eq!(orchestration(&again).instance_id, "lost");
    assert_ne!(again.completion_token, taken.completion_token);
    b.client
        .complete_orchestrator_task(respond(&again, vec![complete(1, "\"done\"")]))
        .await
        .unwrap();

    let late = late_client
        .complete_orchestrator_task(respond(&taken, vec![complete(1, "\"late\"")]))
        .await;
    assert_eq!(late.unwrap_err().code(), Code::NotFound);
    let done = state(&mut b.client, "lost").await;
    assert_eq!(
        done.orchestration_status,
        proto::OrchestrationStatus::Completed as i32
    );
    assert_eq!(done.output.as_deref(), Some("\"done\""));
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_expired_lease_is_delivered_again() {
    let options = TaskHubOptions {
        lease_timeout: Duration::from_millis(300),
        ..TaskHubOptions::in_memory()
    };
    let hub = taskhub::serve(options).await.unwrap();
    let mut a = RawWorker::connect(hub.local_addr(), 10, 10).await;
    start_instance(&mut a.client, "slow", "orch").await;
    let taken = a.next_item().await;

    // The same stream stays open and gets the item again once the lease runs out.
    let again = a.next_item().await;
    assert_eq!(orchestration(&again).instance_id, "slow");
    assert_ne!(again.completion_token, taken.completion_token);
    let stale = a
        .client
        .complete_orchestrator_task(respond(&taken, vec![complete(1, "1")]))
        .await;
    assert_eq!(stale.unwrap_err().code(), Code::NotFound);
    a.client
        .complete_orchestrator_task(respond(&again, vec![complete(1, "2")]))
        .await
        .unwrap();
    assert_eq!(
        state(&mut a.client, "slow").await.output.as_deref(),
        Some("2")
    );
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn events_raised_while_in_flight_go_into_the_next_item() {
    let hub = start_hub().await;
    let mut w = RawWorker::connect(hub.local_addr(), 10, 10).await;
    start_instance(&mut w.client, "busy", "orch").await;
    let first = w.next_item().await;
    let started = &orchestration(&first).new_events;
    assert!(matches!(
        started[0].event_type,
        Some(EventType::OrchestratorStarted(_))
    ));
    assert!(matches!(
        started[1].event_type,
        Some(EventType::ExecutionStarted(_))
    ));

    let raise = proto::RaiseEventRequest {
        instance_id: "busy".into(),
        name: "go".into(),
        input: Some("7".into()),
    };
    w.client.raise_event(raise).await.unwrap();
    let pending = state(&mut w.client, "busy").await;
    assert_eq!(
        pending.orchestration_status,
        proto::OrchestrationStatus::Pending as i32
    );
    w.client
        .complete_orchestrator_task(respond(&first, vec![]))
        .await
        .unwrap();
    let running = state(&mut w.client, "busy").await;
    assert_eq!(
        running.orchestration_status,
        proto::OrchestrationStatus::Running as i32
    );

    let second = w.next_item().await;
    let request = orchestration(&second);
    assert_eq!(
        request.past_events.len(),
        3,
        "started, executionStarted, completed"
    );
    assert!(matches!(
        &request.new_events[1].event_type,
        Some(EventType::EventRaised(e)) if e.name == "go" && e.input.as_deref() == Some("7")
    ));
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn credits_bound_the_items_a_stream_holds() {
    let hub = start_hub().await;
    let mut w = RawWorker::connect(hub.local_addr(), 1, 1).await;
    start_instance(&mut w.client, "one", "orch").await;
    start_instance(&mut w.client, "two", "orch").await;
    let first = w.next_item().await;

    // With one credit, the second instance waits for the first item to be completed.
    let early = tokio::time::timeout(Duration::from_millis(300), w.stream.message()).await;
    assert!(
        early.is_err(),
        "a second item arrived without credit: {early:?}"
    );
    w.client
        .complete_orchestrator_task(respond(&first, vec![complete(1, "1")]))
        .await
        .unwrap();
    let second = w.next_item().await;
    assert_ne!(
        orchestration(&second).instance_id,
        orchestration(&first).instance_id
    );
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn work_item_filters_route_items_to_the_worker_that_has_them() {
    let hub = start_hub().await;
    let connect = |orchestrator: &str, activities: Vec<&str>| {
        let filters = proto::WorkItemFilters {
            orchestrations: vec![proto::OrchestrationFilter {
                name: orchestrator.into(),
                versions: vec![],
            }],
            activities: activities
                .into_iter()
                .map(|name| proto::ActivityFilter {
                    name: name.into(),
                    versions: vec![],
                })
                .collect(),
            entities: vec![],
        };
        RawWorker::connect_with(hub.local_addr(), 10, 10, Some(filters))
    };
    let mut a = connect("a", vec![]).await;
    start_instance(&mut a.client, "for-b", "b").await;
    start_instance(&mut a.client, "for-a", "a").await;
    let mut b = connect("b", vec!["act"]).await;

    let item = a.next_item().await;
    assert_eq!(orchestration(&item).instance_id, "for-a");
    let item = b.next_item().await;
    assert_eq!(orchestration(&item).instance_id, "for-b");
    b.client
        .complete_orchestrator_task(respond(&item, vec![schedule(1, "act")]))
        .await
        .unwrap();
    let task = b.next_item().await;
    assert_eq!(activity(&task).name, "act");
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn idle_streams_get_health_pings() {
    let options = TaskHubOptions {
        health_ping_interval: Duration::from_millis(100),
        ..TaskHubOptions::in_memory()
    };
    let hub = taskhub::serve(options).await.unwrap();
    let mut w = RawWorker::connect(hub.local_addr(), 1, 1).await;
    let item = tokio::time::timeout(ITEM_WAIT, w.stream.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        matches!(item.request, Some(proto::work_item::Request::HealthPing(_))),
        "{item:?}"
    );
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn unsupported_rpcs_answer_unimplemented() {
    let hub = start_hub().await;
    let mut c = raw_client(hub.local_addr()).await;
    let errors = [
        c.signal_entity(proto::SignalEntityRequest::default())
            .await
            .unwrap_err(),
        c.get_entity(proto::GetEntityRequest::default())
            .await
            .unwrap_err(),
        c.rewind_instance(proto::RewindInstanceRequest::default())
            .await
            .unwrap_err(),
        c.restart_instance(proto::RestartInstanceRequest::default())
            .await
            .unwrap_err(),
        c.complete_entity_task(proto::EntityBatchResult::default())
            .await
            .unwrap_err(),
        c.create_task_hub(proto::CreateTaskHubRequest::default())
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.code(), Code::Unimplemented, "{err:?}");
        assert!(
            err.message().contains("does not support"),
            "{}",
            err.message()
        );
    }
    c.hello(()).await.expect("hello is supported");
    hub.shutdown().await.unwrap();
}

#[tokio::test]
async fn refuses_a_non_loopback_address_unless_allowed() {
    let options = TaskHubOptions {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..TaskHubOptions::in_memory()
    };
    let err = taskhub::serve(options.clone())
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, TaskHubError::NonLoopback(_)), "{err}");
    assert!(err.to_string().contains("--allow-remote"), "{err}");

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_handler"))
        .args(["taskhub", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("non-loopback"),
        "{output:?}"
    );
}

#[tokio::test]
async fn shutdown_ends_streams_and_long_polls() {
    let hub = start_hub().await;
    let addr = hub.local_addr();
    let mut w = RawWorker::connect(addr, 10, 10).await;
    start_instance(&mut w.client, "waiting", "orch").await;
    let mut poller = raw_client(addr).await;
    let poll = tokio::spawn(async move {
        poller
            .wait_for_instance_completion(proto::GetInstanceRequest {
                instance_id: "waiting".into(),
                ..Default::default()
            })
            .await
    });
    let _item = w.next_item().await;

    tokio::time::timeout(Duration::from_secs(20), hub.shutdown())
        .await
        .expect("shutdown in time")
        .unwrap();
    let polled = poll.await.unwrap();
    assert!(polled.is_err(), "a long poll outlived the hub: {polled:?}");
    let rest = tokio::time::timeout(ITEM_WAIT, async {
        loop {
            match w.stream.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("stream ended");
    assert!(!matches!(rest, Ok(Some(_))));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still listening"
    );
}
