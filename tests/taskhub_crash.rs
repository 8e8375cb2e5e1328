//! Crash safety: the `handler taskhub` process is killed with SIGKILL while orchestrations are
//! in flight, restarted on the same data directory, and every orchestration still completes
//! exactly once with the right output.

mod taskhub_common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use proto::history_event::EventType;
use taskhub_common::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const COUNT: usize = 8;

/// Starts `handler taskhub` and reads the address it listens on.
async fn start_binary(listen: &str, data: &Path, log: &Path) -> (Child, SocketAddr) {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_handler"))
        .args(["taskhub", "--listen", listen, "--data-dir"])
        .arg(data)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("start handler taskhub");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("task hub ready in time")
        .unwrap()
        .expect("a LISTENING line");
    let addr = line
        .strip_prefix("LISTENING ")
        .expect("LISTENING <addr>")
        .parse()
        .unwrap();
    (child, addr)
}

fn executions(log: &Path, step: u32) -> usize {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| l.ends_with(&format!(" {step}")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchestrations_survive_a_killed_task_hub() {
    let Some(python) = python::python_with(&["durabletask"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let activity_log = dir.path().join("activities.log");
    let hub_log = dir.path().join("taskhub.log");

    let (mut hub, addr) = start_binary("127.0.0.1:0", &data, &hub_log).await;
    let script = Command::new(python)
        .arg(support("taskhub_crash_worker.py"))
        .args([
            addr.to_string(),
            activity_log.display().to_string(),
            COUNT.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    // Kill once every orchestration has run its first activity and waits on its timer.
    let deadline = Instant::now() + Duration::from_secs(60);
    while executions(&activity_log, 1) < COUNT {
        assert!(Instant::now() < deadline, "first activities did not run");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    hub.kill().await.unwrap();
    let finished_before_kill = executions(&activity_log, 3);
    assert!(
        finished_before_kill < COUNT,
        "the kill came too late to test anything"
    );

    // Stay down past the timers' due time, so they fall due while the hub is not running.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (hub, addr_again) = start_binary(&addr.to_string(), &data, &hub_log).await;
    assert_eq!(addr_again, addr);

    let output = tokio::time::timeout(SCRIPT_LIMIT, script.wait_with_output())
        .await
        .expect("the script finished in time")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "script failed: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let results: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();

    let mut client = raw_client(addr).await;
    for n in 0..COUNT {
        let id = format!("crash-{n}");
        let r = &results[&id];
        assert_eq!(r["status"], "COMPLETED", "{id}: {r}");
        let expected: Vec<usize> = (1..=3).map(|step| n * 10 + step).collect();
        assert_eq!(r["output"], serde_json::json!(expected), "{id}");

        let events = history(&mut client, &id).await;
        let count = |pred: fn(&EventType) -> bool| {
            events
                .iter()
                .filter(|e| e.event_type.as_ref().is_some_and(pred))
                .count()
        };
        assert_eq!(
            count(|e| matches!(e, EventType::ExecutionCompleted(_))),
            1,
            "{id} completed once"
        );
        assert_eq!(
            count(|e| matches!(e, EventType::TaskCompleted(_))),
            3,
            "{id} has one result per step"
        );
        assert_eq!(
            count(|e| matches!(e, EventType::TimerFired(_))),
            1,
            "{id} timer fired once"
        );
    }
    for step in 1..=3 {
        assert!(
            executions(&activity_log, step) >= COUNT,
            "every step {step} ran at least once"
        );
    }

    // A clean stop on SIGTERM.
    let pid = hub.id().unwrap() as i32;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let mut hub = hub;
    let status = tokio::time::timeout(Duration::from_secs(20), hub.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "task hub exit on SIGTERM: {status}");
    assert!(
        !data.join("taskhub.sqlite3-wal").exists(),
        "a clean stop closes the database, which folds the WAL back in"
    );
}
