//! Helpers shared by the task hub tests: starting a hub, running the Python scenario script,
//! and a raw gRPC client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use evalgate::durabletask::proto::task_hub_sidecar_service_client::TaskHubSidecarServiceClient;
use evalgate::taskhub::{self, RunningTaskHub, TaskHubOptions};
use tonic::transport::Channel;

#[path = "../common/python.rs"]
pub mod python;

/// How long any one Python scenario may run before the test gives up on it.
pub const SCRIPT_LIMIT: Duration = Duration::from_secs(180);

/// Starts an in-memory task hub on a free loopback port.
pub async fn start_hub() -> RunningTaskHub {
    taskhub::serve(TaskHubOptions::in_memory())
        .await
        .expect("start task hub")
}

/// A raw gRPC client of the task hub at `addr`.
pub async fn raw_client(addr: SocketAddr) -> TaskHubSidecarServiceClient<Channel> {
    TaskHubSidecarServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connect to task hub")
}

/// The path of a support script.
pub fn support(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// Runs a Python support script with `args` and returns the JSON object on its last stdout
/// line, or None when Python tests are opted out. Panics with its stderr when it fails.
pub async fn run_script(script: &str, args: &[String]) -> Option<serde_json::Value> {
    let python = python::python_with(&["durabletask"])?;
    let child = tokio::process::Command::new(python)
        .arg(support(script))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start python");
    let output = tokio::time::timeout(SCRIPT_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} {args:?} did not finish within {SCRIPT_LIMIT:?}"))
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} {args:?} failed: {}\n{stderr}",
        output.status
    );
    let last = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output from {script}\n{stderr}"));
    Some(
        serde_json::from_str(last)
            .unwrap_or_else(|err| panic!("bad JSON {last:?}: {err}\n{stderr}")),
    )
}

/// Runs one scenario of `taskhub_scenarios.py` against a fresh in-memory hub.
pub async fn scenario(name: &str) -> Option<serde_json::Value> {
    let hub = start_hub().await;
    let result = run_script(
        "taskhub_scenarios.py",
        &[hub.local_addr().to_string(), name.to_owned()],
    )
    .await;
    hub.shutdown().await.expect("clean shutdown");
    result
}

/// A raw worker connection: a client and its open GetWorkItems stream.
pub struct RawWorker {
    pub client: TaskHubSidecarServiceClient<Channel>,
    pub stream: tonic::Streaming<proto::WorkItem>,
}

pub use evalgate::durabletask::proto;

/// How long a test waits for a work item that should come.
pub const ITEM_WAIT: Duration = Duration::from_secs(20);

impl RawWorker {
    /// Connects and opens a work-item stream with these credits.
    pub async fn connect(addr: SocketAddr, max_orchestrations: i32, max_activities: i32) -> Self {
        Self::connect_with(addr, max_orchestrations, max_activities, None).await
    }

    /// Connects and opens a work-item stream with these credits and work-item filters.
    pub async fn connect_with(
        addr: SocketAddr,
        max_orchestrations: i32,
        max_activities: i32,
        filters: Option<proto::WorkItemFilters>,
    ) -> Self {
        let mut client = raw_client(addr).await;
        let stream = client
            .get_work_items(proto::GetWorkItemsRequest {
                max_concurrent_orchestration_work_items: max_orchestrations,
                max_concurrent_activity_work_items: max_activities,
                work_item_filters: filters,
                ..Default::default()
            })
            .await
            .expect("open work-item stream")
            .into_inner();
        Self { client, stream }
    }

    /// The next work item that is not a health ping.
    pub async fn next_item(&mut self) -> proto::WorkItem {
        loop {
            let item = tokio::time::timeout(ITEM_WAIT, self.stream.message())
                .await
                .expect("a work item within the wait")
                .expect("stream error")
                .expect("stream ended");
            if !matches!(item.request, Some(proto::work_item::Request::HealthPing(_))) {
                return item;
            }
        }
    }
}

/// Starts an instance of `name` with a JSON input.
pub async fn start_instance(
    client: &mut TaskHubSidecarServiceClient<Channel>,
    id: &str,
    name: &str,
) {
    client
        .start_instance(proto::CreateInstanceRequest {
            instance_id: id.into(),
            name: name.into(),
            input: Some("1".into()),
            ..Default::default()
        })
        .await
        .expect("start instance");
}

/// The orchestrator request inside a work item.
pub fn orchestration(item: &proto::WorkItem) -> &proto::OrchestratorRequest {
    match &item.request {
        Some(proto::work_item::Request::OrchestratorRequest(request)) => request,
        other => panic!("expected an orchestrator work item, got {other:?}"),
    }
}

/// The activity request inside a work item.
pub fn activity(item: &proto::WorkItem) -> &proto::ActivityRequest {
    match &item.request {
        Some(proto::work_item::Request::ActivityRequest(request)) => request,
        other => panic!("expected an activity work item, got {other:?}"),
    }
}

/// An orchestrator response with these actions.
pub fn respond(
    item: &proto::WorkItem,
    actions: Vec<proto::OrchestratorAction>,
) -> proto::OrchestratorResponse {
    proto::OrchestratorResponse {
        instance_id: orchestration(item).instance_id.clone(),
        actions,
        completion_token: item.completion_token.clone(),
        ..Default::default()
    }
}

/// A scheduleTask action.
pub fn schedule(id: i32, name: &str) -> proto::OrchestratorAction {
    proto::OrchestratorAction {
        id,
        orchestrator_action_type: Some(
            proto::orchestrator_action::OrchestratorActionType::ScheduleTask(
                proto::ScheduleTaskAction {
                    name: name.into(),
                    input: Some("1".into()),
                    ..Default::default()
                },
            ),
        ),
    }
}

/// A completeOrchestration action with status COMPLETED and this result.
pub fn complete(id: i32, result: &str) -> proto::OrchestratorAction {
    proto::OrchestratorAction {
        id,
        orchestrator_action_type: Some(
            proto::orchestrator_action::OrchestratorActionType::CompleteOrchestration(
                proto::CompleteOrchestrationAction {
                    orchestration_status: proto::OrchestrationStatus::Completed as i32,
                    result: Some(result.into()),
                    ..Default::default()
                },
            ),
        ),
    }
}

/// The state of an instance.
pub async fn state(
    client: &mut TaskHubSidecarServiceClient<Channel>,
    id: &str,
) -> proto::OrchestrationState {
    client
        .get_instance(proto::GetInstanceRequest {
            instance_id: id.into(),
            get_inputs_and_outputs: true,
        })
        .await
        .expect("get instance")
        .into_inner()
        .orchestration_state
        .expect("instance exists")
}

/// The committed history of an instance.
pub async fn history(
    client: &mut TaskHubSidecarServiceClient<Channel>,
    id: &str,
) -> Vec<proto::HistoryEvent> {
    let mut stream = client
        .stream_instance_history(proto::StreamInstanceHistoryRequest {
            instance_id: id.into(),
            ..Default::default()
        })
        .await
        .expect("stream history")
        .into_inner();
    let mut events = Vec::new();
    while let Some(chunk) = stream.message().await.expect("history chunk") {
        events.extend(chunk.events);
    }
    events
}
