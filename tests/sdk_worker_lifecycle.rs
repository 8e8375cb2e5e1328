//! The worker's lifecycle against the real in-memory backend: reconnecting after the backend
//! process dies, and shutting down with work in flight.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::backend::Backend;
use evalgate::durabletask::client::{Client, RuntimeStatus, ScheduleOptions};
use evalgate::durabletask::worker::{ConnectionState, Worker, WorkerOptions};
use evalgate::durabletask::{FailureDetails, Registry};
use tokio::sync::{Notify, mpsc, watch};

const WAIT: Duration = Duration::from_secs(20);

fn fast_reconnect() -> WorkerOptions {
    WorkerOptions {
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(200),
        channel_recreate_after: 3,
        ..WorkerOptions::default()
    }
}

async fn reach(state: &mut watch::Receiver<ConnectionState>, wanted: ConnectionState) {
    tokio::time::timeout(WAIT, state.wait_for(|s| *s == wanted))
        .await
        .unwrap_or_else(|_| panic!("the worker never became {wanted:?}"))
        .expect("the worker is alive");
}

fn echo_registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .add_activity("echo", |_ctx, text: String| async move {
            Ok::<_, FailureDetails>(text)
        })
        .add_orchestrator("echo_once", |ctx, text: String| async move {
            let echoed: String = ctx.call_activity("echo", &text).await?;
            Ok(echoed)
        });
    registry
}

/// The backend process is killed (its state is lost) and a new, empty one starts on the same
/// port. This proves the worker notices, keeps retrying on its own while nothing listens, goes
/// back to Connected against the new process, and runs work scheduled there; and that the
/// client's lazy channel reconnects too. It does not prove that work survives a backend
/// restart: the in-memory backend keeps nothing.
#[tokio::test]
async fn the_worker_reconnects_by_itself_after_the_backend_restarts() {
    let Some(mut backend) = Backend::start() else {
        return;
    };
    let client = Client::new(&backend.connection()).unwrap();
    let worker = Worker::new(&backend.connection(), echo_registry(), fast_reconnect())
        .unwrap()
        .start();
    let mut state = worker.state();

    let before = client
        .schedule_new_orchestration("echo_once", "before", ScheduleOptions::default())
        .await
        .unwrap();
    let done = client.wait_for_completion(&before, WAIT).await.unwrap();
    assert_eq!(done.output_as::<String>().unwrap(), "before");
    reach(&mut state, ConnectionState::Connected).await;

    backend.kill();
    reach(&mut state, ConnectionState::Reconnecting).await;

    let _restarted = backend.restart().unwrap();
    reach(&mut state, ConnectionState::Connected).await;

    let after = client
        .schedule_new_orchestration("echo_once", "after", ScheduleOptions::default())
        .await
        .unwrap();
    let done = client.wait_for_completion(&after, WAIT).await.unwrap();
    assert_eq!(done.status, RuntimeStatus::Completed);
    assert_eq!(done.output_as::<String>().unwrap(), "after");
    assert!(client.get_instance(&before, false).await.unwrap().is_none());

    let report = worker.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.abandoned, 0);
}

/// An activity gated on `release`, which reports on `started` when it begins.
fn gated_registry(started: mpsc::UnboundedSender<()>, release: Arc<Notify>) -> Registry {
    let mut registry = Registry::new();
    registry
        .add_activity("gated", move |_ctx, text: String| {
            let started = started.clone();
            let release = release.clone();
            async move {
                let _ = started.send(());
                release.notified().await;
                Ok::<_, FailureDetails>(text)
            }
        })
        .add_orchestrator("gated_once", |ctx, text: String| async move {
            let echoed: String = ctx.call_activity("gated", &text).await?;
            Ok(echoed)
        });
    registry
}

#[tokio::test]
async fn shutdown_lets_in_flight_work_finish_within_the_grace_period() {
    let Some(backend) = Backend::start() else {
        return;
    };
    let client = Client::new(&backend.connection()).unwrap();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let registry = gated_registry(started_tx, release.clone());
    let worker = Worker::new(&backend.connection(), registry.clone(), fast_reconnect())
        .unwrap()
        .start();
    let mut state = worker.state();

    let id = client
        .schedule_new_orchestration(
            "gated_once",
            "finished during drain",
            ScheduleOptions::default(),
        )
        .await
        .unwrap();
    tokio::time::timeout(WAIT, started.recv())
        .await
        .unwrap()
        .unwrap();

    let shutdown = tokio::spawn(worker.shutdown(WAIT));
    reach(&mut state, ConnectionState::Stopping).await;
    release.notify_one();
    let report = shutdown.await.unwrap();
    assert!(report.in_flight >= 1, "{report:?}");
    assert_eq!(report.abandoned, 0);

    // The activity's result was delivered during the drain; a new worker runs the next turn.
    let next = Worker::new(&backend.connection(), registry, fast_reconnect())
        .unwrap()
        .start();
    let done = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(done.status, RuntimeStatus::Completed);
    assert_eq!(done.output_as::<String>().unwrap(), "finished during drain");
    next.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn shutdown_abandons_work_still_running_at_the_deadline() {
    let Some(backend) = Backend::start() else {
        return;
    };
    let client = Client::new(&backend.connection()).unwrap();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let never_released = Arc::new(Notify::new());
    let worker = Worker::new(
        &backend.connection(),
        gated_registry(started_tx, never_released),
        fast_reconnect(),
    )
    .unwrap()
    .start();
    let mut state = worker.state();

    client
        .schedule_new_orchestration("gated_once", "stuck", ScheduleOptions::default())
        .await
        .unwrap();
    tokio::time::timeout(WAIT, started.recv())
        .await
        .unwrap()
        .unwrap();

    // The orchestration turn that scheduled the activity may still be awaiting its own
    // completion call when shutdown begins, so it can count as in flight too; it finishes.
    let report = worker.shutdown(Duration::from_millis(400)).await;
    assert!(report.in_flight >= 1, "{report:?}");
    assert_eq!(report.abandoned, 1);
    assert_eq!(*state.borrow_and_update(), ConnectionState::Stopped);
}
