//! Runs `handler dev` as a child process on a data directory of the test's, and talks to its API.
//! [`DevStack::serve`] runs the same API the way the Functions host does instead: `handler` in
//! serve mode against a given durable backend, with `handler interpreter` as its session pool.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a test waits for a submission to reach a stage before failing.
pub const STAGE_DEADLINE: Duration = Duration::from_secs(90);

/// A running `handler dev`.
pub struct DevStack {
    child: Child,
    /// Helper processes of serve mode (the interpreter), killed with the stack.
    helpers: Vec<Child>,
    /// The API base, such as `http://127.0.0.1:40123/api`.
    pub api: String,
    /// The task hub's gRPC address.
    pub taskhub: String,
    data_dir: PathBuf,
    env: Vec<(String, String)>,
    args: Vec<String>,
    http: reqwest::Client,
}

impl DevStack {
    /// Starts `handler dev` on free ports with `env` added to its environment.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> DevStack {
        Self::start_with_args(data_dir, env, &[])
    }

    /// Starts `handler dev` with extra command-line arguments.
    pub fn start_with_args(data_dir: &Path, env: &[(&str, &str)], args: &[&str]) -> DevStack {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (child, api, taskhub) = spawn(data_dir, &env, &args);
        DevStack {
            child,
            helpers: Vec::new(),
            api,
            taskhub,
            data_dir: data_dir.to_owned(),
            env,
            args,
            http: reqwest::Client::new(),
        }
    }

    /// Runs `handler` in serve mode against the backend of `connection_string`, with a local
    /// interpreter started for it, on a free port.
    pub fn serve(connection_string: &str) -> DevStack {
        let mut interpreter = Command::new(env!("CARGO_BIN_EXE_handler"))
            .args(["interpreter", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start handler interpreter");
        let pool = super::tools::ready_line(&mut interpreter, "local interpreter listening on ");

        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_handler"))
            .env_remove("WEBSITE_INSTANCE_ID")
            .env_remove("WEBSITE_SITE_NAME")
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env(
                "DURABLE_TASK_SCHEDULER_CONNECTION_STRING",
                connection_string,
            )
            .env("SESSION_POOL_URL", &pool)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start handler");
        DevStack {
            child,
            helpers: vec![interpreter],
            api: format!("http://127.0.0.1:{port}/api"),
            taskhub: String::new(),
            data_dir: PathBuf::new(),
            env: Vec::new(),
            args: Vec::new(),
            http: reqwest::Client::new(),
        }
    }

    /// Waits until the API answers, for a stack whose readiness was not printed.
    pub async fn wait_until_ready(&self) {
        let probe = self.api.trim_end_matches("/api").to_owned() + "/";
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self
            .http
            .get(&probe)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            assert!(
                Instant::now() < deadline,
                "the handler never answered {probe}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the process with SIGKILL, as a crash would, and waits for it to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the process again on the same data directory (on new ports).
    pub fn restart(&mut self) {
        self.kill();
        let (child, api, taskhub) = spawn(&self.data_dir, &self.env, &self.args);
        self.child = child;
        self.api = api;
        self.taskhub = taskhub;
    }

    /// Submits code as text/plain; returns the status code and body.
    pub async fn submit(&self, code: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/code", self.api))
            .header("content-type", "text/plain")
            .body(code.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read(request.send().await.expect("submit")).await
    }

    /// Submits code and returns the new id, asserting a 202.
    pub async fn submit_ok(&self, code: &str) -> String {
        let (status, body) = self.submit(code, &[]).await;
        assert_eq!(status, 202, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Reads one submission's status.
    pub async fn status(&self, id: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/code/{id}", self.api))
            .send()
            .await;
        read(response.expect("status")).await
    }

    /// Lists submissions in a stage.
    pub async fn list(&self, stage: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/code?stage={stage}", self.api))
            .send()
            .await;
        read(response.expect("list")).await
    }

    /// One page of a listing of every stage.
    pub async fn list_page(&self, page_size: u32, token: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .get(format!("{}/code", self.api))
            .query(&[("pageSize", page_size.to_string())]);
        if let Some(token) = token {
            request = request.query(&[("continuationToken", token)]);
        }
        read(request.send().await.expect("list page")).await
    }

    /// Sends a decision.
    pub async fn decide(
        &self,
        id: &str,
        approved: bool,
        comment: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/code/{id}/approval", self.api))
            .json(&serde_json::json!({ "approved": approved, "comment": comment }));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read(request.send().await.expect("decide")).await
    }

    /// Polls until the submission reaches `stage`; panics with the last status otherwise.
    pub async fn wait_for_stage(&self, id: &str, stage: &str) -> Value {
        let deadline = Instant::now() + STAGE_DEADLINE;
        loop {
            let (code, body) = self.status(id).await;
            if code == 200 && body["stage"] == stage {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "submission {id} did not reach {stage}; last answer {code} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for DevStack {
    fn drop(&mut self) {
        self.kill();
        for helper in &mut self.helpers {
            let _ = helper.kill();
            let _ = helper.wait();
        }
    }
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// Starts the process and reads the addresses it prints once it is ready.
fn spawn(data_dir: &Path, env: &[(String, String)], args: &[String]) -> (Child, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_handler"));
    command
        .args([
            "dev",
            "--port",
            "0",
            "--taskhub-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .args(args)
        .env_remove("WEBSITE_INSTANCE_ID")
        .env_remove("WEBSITE_SITE_NAME")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("start handler dev");

    // Read stdout on a thread so a silent child cannot hang the test.
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut api, mut taskhub) = (None, None);
    while api.is_none() || taskhub.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines_rx
            .recv_timeout(left)
            .expect("handler dev did not print its addresses in time");
        if let Some(rest) = line.strip_prefix("api: ") {
            api = Some(rest.trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("taskhub: ") {
            taskhub = rest.split_whitespace().next().map(str::to_owned);
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || while lines_rx.recv().is_ok() {});
    (child, api.unwrap(), taskhub.unwrap())
}
