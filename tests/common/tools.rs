//! Running `handler` subcommands as child processes: a kill-on-drop guard, the base command, and
//! waiting for the readiness line a tool prints on stdout.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The `handler` binary under test.
pub const HANDLER: &str = env!("CARGO_BIN_EXE_handler");

/// A child process that is killed when the test ends, however it ends.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `handler <args>` outside Azure, its stderr shown with the test's output.
pub fn handler_command(args: &[&str]) -> Command {
    let mut command = Command::new(HANDLER);
    command
        .args(args)
        .env_remove("WEBSITE_INSTANCE_ID")
        .env_remove("WEBSITE_SITE_NAME")
        .stderr(Stdio::inherit());
    command
}

/// Starts `command` and returns it once a stdout line starts with `prefix`, with the rest of that
/// line. Stdout keeps being drained afterwards, so the child never blocks on a full pipe.
pub fn start_tool(mut command: Command, prefix: &str) -> (Proc, String) {
    let mut child = Proc(
        command
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the tool"),
    );
    let line = ready_line(&mut child.0, prefix);
    (child, line)
}

/// The rest of the first stdout line of `child` that starts with `prefix`.
pub fn ready_line(child: &mut Child, prefix: &str) -> String {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no line starting with `{prefix}` in time"));
        if let Some(rest) = line.strip_prefix(prefix) {
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return rest.trim().to_owned();
        }
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
