//! Throughput of the embedded task hub with durable (file, WAL, synchronous=FULL) commits,
//! driven by a minimal raw-gRPC worker.
//!
//! `cargo bench --bench taskhub` measures:
//! * orchestrator work items per second: instances whose one turn completes them;
//! * three-step orchestrations per second: three activities in sequence (four orchestrator and
//!   three activity work items each).
//!
//! Without `--bench` (as under `cargo test --all-targets`) it runs a small smoke pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use evalgate::durabletask::proto::{
    self, history_event::EventType, orchestrator_action::OrchestratorActionType as Action,
    task_hub_sidecar_service_client::TaskHubSidecarServiceClient, work_item::Request,
};
use evalgate::taskhub::{self, Storage, TaskHubOptions};
use tokio::sync::Notify;
use tonic::transport::Channel;

type Client = TaskHubSidecarServiceClient<Channel>;

fn action(id: i32, kind: Action) -> proto::OrchestratorAction {
    proto::OrchestratorAction {
        id,
        orchestrator_action_type: Some(kind),
    }
}

/// The orchestrator: schedule `steps` activities one after another, then complete.
fn decide(request: &proto::OrchestratorRequest, steps: usize) -> Vec<proto::OrchestratorAction> {
    let done = request
        .past_events
        .iter()
        .chain(&request.new_events)
        .filter(|e| matches!(e.event_type, Some(EventType::TaskCompleted(_))))
        .count();
    if done < steps {
        let task = proto::ScheduleTaskAction {
            name: "step".into(),
            input: Some(done.to_string()),
            ..Default::default()
        };
        vec![action(done as i32 + 1, Action::ScheduleTask(task))]
    } else {
        let complete = proto::CompleteOrchestrationAction {
            orchestration_status: proto::OrchestrationStatus::Completed as i32,
            result: Some(done.to_string()),
            ..Default::default()
        };
        vec![action(
            done as i32 + 1,
            Action::CompleteOrchestration(complete),
        )]
    }
}

struct Counters {
    completed: AtomicUsize,
    orchestrator_items: AtomicUsize,
    activity_items: AtomicUsize,
    all_done: Notify,
}

/// Processes work items until `target` orchestrations have completed.
async fn run_worker(client: Client, steps: usize, target: usize) -> Arc<Counters> {
    let counters = Arc::new(Counters {
        completed: AtomicUsize::new(0),
        orchestrator_items: AtomicUsize::new(0),
        activity_items: AtomicUsize::new(0),
        all_done: Notify::new(),
    });
    let mut stream = client
        .clone()
        .get_work_items(proto::GetWorkItemsRequest {
            max_concurrent_orchestration_work_items: 500,
            max_concurrent_activity_work_items: 500,
            ..Default::default()
        })
        .await
        .expect("open stream")
        .into_inner();

    let finished = counters.clone();
    let wait = tokio::spawn(async move {
        loop {
            let notified = finished.all_done.notified();
            if finished.completed.load(Ordering::SeqCst) >= target {
                return;
            }
            notified.await;
        }
    });
    let feed = counters.clone();
    let reader = tokio::spawn(async move {
        while let Ok(Some(item)) = stream.message().await {
            let mut client = client.clone();
            let counters = feed.clone();
            tokio::spawn(async move {
                match item.request {
                    Some(Request::OrchestratorRequest(request)) => {
                        let actions = decide(&request, steps);
                        let finishing = matches!(
                            actions[0].orchestrator_action_type,
                            Some(Action::CompleteOrchestration(_))
                        );
                        let response = proto::OrchestratorResponse {
                            instance_id: request.instance_id.clone(),
                            actions,
                            completion_token: item.completion_token,
                            ..Default::default()
                        };
                        client
                            .complete_orchestrator_task(response)
                            .await
                            .expect("complete orchestration");
                        counters.orchestrator_items.fetch_add(1, Ordering::SeqCst);
                        if finishing {
                            counters.completed.fetch_add(1, Ordering::SeqCst);
                            counters.all_done.notify_waiters();
                        }
                    }
                    Some(Request::ActivityRequest(request)) => {
                        let response = proto::ActivityResponse {
                            instance_id: request
                                .orchestration_instance
                                .map(|i| i.instance_id)
                                .unwrap_or_default(),
                            task_id: request.task_id,
                            result: request.input,
                            completion_token: item.completion_token,
                            ..Default::default()
                        };
                        client
                            .complete_activity_task(response)
                            .await
                            .expect("complete activity");
                        counters.activity_items.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
            });
        }
    });
    wait.await.unwrap();
    // Close this worker's stream so that the next measurement has the hub to itself.
    reader.abort();
    counters
}

/// Starts `count` instances with 32 concurrent callers; returns the time taken.
async fn start_instances(client: &Client, prefix: &str, count: usize) -> Duration {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut callers = Vec::new();
    for _ in 0..32 {
        let mut client = client.clone();
        let next = next.clone();
        let prefix = prefix.to_owned();
        callers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= count {
                    return;
                }
                let request = proto::CreateInstanceRequest {
                    instance_id: format!("{prefix}-{i}"),
                    name: "bench".into(),
                    input: Some("0".into()),
                    ..Default::default()
                };
                client.start_instance(request).await.expect("start");
            }
        }));
    }
    for caller in callers {
        caller.await.unwrap();
    }
    started.elapsed()
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (singles, threes, sequential) = if full {
        (20_000, 3_000, 100)
    } else {
        (50, 10, 3)
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let options = TaskHubOptions {
            storage: Storage::File(dir.path().to_path_buf()),
            ..TaskHubOptions::in_memory()
        };
        let hub = taskhub::serve(options).await.unwrap();
        let client = TaskHubSidecarServiceClient::connect(format!("http://{}", hub.local_addr()))
            .await
            .unwrap();

        let took = start_instances(&client, "single", singles).await;
        println!(
            "StartInstance: {singles} in {took:.2?} = {:.0}/s",
            per_second(singles, took)
        );
        let started = Instant::now();
        let counters = run_worker(client.clone(), 0, singles).await;
        let took = started.elapsed();
        let items = counters.orchestrator_items.load(Ordering::SeqCst);
        println!(
            "orchestrator work items (one-turn instances): {items} in {took:.2?} = {:.0}/s",
            per_second(items, took)
        );

        start_instances(&client, "three", threes).await;
        let started = Instant::now();
        let counters = run_worker(client.clone(), 3, threes).await;
        let took = started.elapsed();
        let items = counters.orchestrator_items.load(Ordering::SeqCst);
        let activities = counters.activity_items.load(Ordering::SeqCst);
        println!(
            "three-step orchestrations: {threes} in {took:.2?} = {:.0}/s \
             ({items} orchestrator items = {:.0}/s, {activities} activity items = {:.0}/s)",
            per_second(threes, took),
            per_second(items, took),
            per_second(activities, took),
        );

        // One at a time: latency rather than throughput, bounded by a commit (fsync) per step.
        let worker = tokio::spawn(run_worker(client.clone(), 3, sequential));
        let started = Instant::now();
        let mut waiter = client.clone();
        for i in 0..sequential {
            let id = format!("one-{i}");
            let request = proto::CreateInstanceRequest {
                instance_id: id.clone(),
                name: "bench".into(),
                ..Default::default()
            };
            waiter.start_instance(request).await.expect("start");
            let wait = proto::GetInstanceRequest { instance_id: id, get_inputs_and_outputs: false };
            waiter.wait_for_instance_completion(wait).await.expect("wait");
        }
        let took = started.elapsed();
        worker.await.unwrap();
        println!(
            "three-step orchestrations one at a time: {sequential} in {took:.2?} = {:.1}/s ({:.1} ms each)",
            per_second(sequential, took),
            took.as_secs_f64() * 1000.0 / sequential as f64,
        );
        hub.shutdown().await.unwrap();
    });
}
