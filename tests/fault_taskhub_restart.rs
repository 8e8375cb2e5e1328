//! The task hub killed with SIGKILL under a running worker. `handler taskhub`, `handler
//! interpreter` and `handler` (serve mode, configured from the environment) run as separate
//! processes; the task hub is killed at seeded random moments during a stream of submissions and
//! approvals and restarted on the same port and data directory. While it is down the API answers
//! 503 with `Retry-After`; the worker reconnects on its own, and every submission ends approved
//! exactly once. Set `EVALGATE_FAULT_SEED` to replay a run.

mod common;
mod fault_common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tools::{Proc, free_port, handler_command, start_tool};
use fault_common::{Chaos, Victim, kill_plan, seeded_rng, stream};

/// Submissions in the stream.
const SUBMISSIONS: usize = 32;
/// Kills of the task hub spread over the stream's operations.
const KILLS: usize = 6;

fn command(args: &[&str]) -> Command {
    let mut command = handler_command(args);
    command.env("RUST_LOG", "warn");
    command
}

/// The task hub, on a fixed port so the handler's connection string stays right across restarts.
struct TaskHub {
    addr: String,
    data: PathBuf,
    process: Option<Proc>,
    api: String,
}

impl TaskHub {
    fn start(&mut self) {
        let data = self.data.to_str().unwrap().to_owned();
        let args = ["taskhub", "--listen", &self.addr, "--data-dir", &data];
        let (process, listening) = start_tool(command(&args), "LISTENING ");
        assert_eq!(listening, self.addr);
        self.process = Some(process);
    }
}

impl Victim for TaskHub {
    fn api(&self) -> String {
        self.api.clone()
    }

    fn kill(&mut self) {
        drop(self.process.take());
    }

    fn restart(&mut self) {
        self.kill();
        self.start();
    }

    fn api_survives(&self) -> bool {
        true
    }
}

async fn wait_ready(base: &str) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let answer = http.get(format!("{base}/")).send().await;
        if answer.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the handler never answered GET /"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_reconnects_after_the_task_hub_is_killed_and_nothing_is_lost() {
    let mut rng = seeded_rng();
    let ops = stream(SUBMISSIONS, 3);
    let kills = kill_plan(&mut rng, ops.len(), KILLS, Duration::from_millis(200));

    let data = tempfile::tempdir().unwrap();
    let (_pool, pool_url) = start_tool(
        command(&["interpreter", "--listen", "127.0.0.1:0"]),
        "local interpreter listening on ",
    );
    let port = free_port();
    let mut hub = TaskHub {
        addr: format!("127.0.0.1:{}", free_port()),
        data: data.path().join("taskhub"),
        process: None,
        api: format!("http://127.0.0.1:{port}/api"),
    };
    hub.start();

    let mut handler = command(&[]);
    handler
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env(
            "DURABLE_TASK_SCHEDULER_CONNECTION_STRING",
            format!(
                "Endpoint=http://{};TaskHub=default;Authentication=None",
                hub.addr
            ),
        )
        .env("SESSION_POOL_URL", &pool_url)
        .env("APPROVAL_TIMEOUT", "1h")
        .stdout(Stdio::null());
    let _handler = Proc(handler.spawn().unwrap());
    wait_ready(&format!("http://127.0.0.1:{port}")).await;

    let mut chaos = Chaos::new(hub);
    for (index, op) in ops.iter().enumerate() {
        chaos.run(*op, kills.get(&index).copied()).await;
    }
    chaos.check_exactly_once(SUBMISSIONS).await;
}
