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
