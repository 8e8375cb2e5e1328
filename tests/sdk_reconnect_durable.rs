//! The worker against a durable backend that dies: `handler taskhub` is killed with SIGKILL while
//! an orchestration waits in it, and started again on the same port and data directory. The
//! worker reconnects by itself, and the waiting orchestration carries on to completion: nothing
//! the backend had acknowledged is lost.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use evalgate::durabletask::client::{Client, RuntimeStatus, ScheduleOptions};
use evalgate::durabletask::connection::ConnectionString;
use evalgate::durabletask::worker::{ConnectionState, Worker, WorkerOptions};
use evalgate::durabletask::{FailureDetails, Registry};

const WAIT: Duration = Duration::from_secs(30);

struct Hub(Child);

impl Hub {
    /// Starts `handler taskhub` on `address`, retrying while a just-killed one frees the port.
    fn start(address: &str, data_dir: &Path) -> Hub {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut child = Command::new(env!("CARGO_BIN_EXE_handler"))
                .args(["taskhub", "--listen", address, "--data-dir"])
                .arg(data_dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start handler taskhub");
            let mut line = String::new();
            let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
            if line.starts_with("LISTENING ") {
                return Hub(child);
            }
            let _ = child.wait();
            assert!(Instant::now() < deadline, "handler taskhub did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.kill();
    }
}

fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .add_activity("shout", |_ctx, text: String| async move {
            Ok::<_, FailureDetails>(text.to_uppercase())
        })
        .add_orchestrator("shout_after_go", |ctx, text: String| async move {
            let first: String = ctx.call_activity("shout", &text).await?;
            let go: String = ctx.wait_for_external_event("go").await?;
            let second: String = ctx.call_activity("shout", &go).await?;
            Ok(format!("{first} {second}"))
        });
    registry
}

#[tokio::test]
async fn work_survives_a_backend_crash_and_the_worker_reconnects() {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let mut hub = Hub::start(&address, data.path());

    let connection = ConnectionString::unauthenticated(format!("http://{address}"), "default");
    let client = Client::new(&connection).unwrap();
    let options = WorkerOptions {
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_millis(300),
        ..WorkerOptions::default()
    };
    let worker = Worker::new(&connection, registry(), options)
        .unwrap()
        .start();
    let mut state = worker.state();

    let id = client
        .schedule_new_orchestration("shout_after_go", "before", ScheduleOptions::default())
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let history_has_first = client
            .get_instance(&id, false)
            .await
            .unwrap()
            .is_some_and(|s| s.status == RuntimeStatus::Running);
        if history_has_first {
            break;
        }
        assert!(Instant::now() < deadline, "the instance never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    hub.kill();
    tokio::time::timeout(
        WAIT,
        state.wait_for(|s| *s == ConnectionState::Reconnecting),
    )
    .await
    .expect("the worker noticed the crash")
    .unwrap();

    let _hub = Hub::start(&address, data.path());
    tokio::time::timeout(WAIT, state.wait_for(|s| *s == ConnectionState::Connected))
        .await
        .expect("the worker reconnected by itself")
        .unwrap();

    client.raise_event(&id, "go", "after").await.unwrap();
    let done = client.wait_for_completion(&id, WAIT).await.unwrap();
    assert_eq!(done.status, RuntimeStatus::Completed, "{done:?}");
    assert_eq!(done.output_as::<String>().unwrap(), "BEFORE AFTER");
    worker.shutdown(Duration::from_secs(5)).await;
}
