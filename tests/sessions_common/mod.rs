//! What the local interpreter's scenario tests share: an interpreter with test limits, a client.
#![allow(dead_code)]

use std::time::Duration;

use evalgate::sessions::interpreter::{
    InterpreterOptions, ResourceLimits, RunningInterpreter, serve,
};
use evalgate::sessions::{
    ExecuteRequest, Execution, SessionClient, SessionClientOptions, SessionId,
};

/// Starts an interpreter and a client of it. Fails, saying how to install it, without bwrap.
pub async fn start(options: InterpreterOptions) -> (RunningInterpreter, SessionClient) {
    assert!(
        std::path::Path::new("/usr/bin/bwrap").exists(),
        "bubblewrap is missing: install it with `apt-get install bubblewrap` or ./scripts/setup"
    );
    let interpreter = serve(options).await.expect("the interpreter starts");
    let client = SessionClient::new(SessionClientOptions::new(interpreter.base_url())).unwrap();
    (interpreter, client)
}

/// The defaults, with a 512 MiB address space so the memory hog is quick.
pub fn options() -> InterpreterOptions {
    InterpreterOptions {
        limits: ResourceLimits {
            memory_bytes: 512 << 20,
            ..ResourceLimits::default()
        },
        ..InterpreterOptions::default()
    }
}

/// Runs `code` with a timeout in seconds and returns the execution.
pub async fn run_in(
    client: &SessionClient,
    session: Option<&SessionId>,
    code: &str,
    timeout: u64,
) -> Execution {
    client
        .execute(&ExecuteRequest {
            code: code.to_string(),
            timeout: Duration::from_secs(timeout),
            session_id: session.cloned(),
        })
        .await
        .expect("the interpreter answers")
}
