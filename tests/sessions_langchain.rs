//! A real third-party client of the pool API, LangChain's `SessionsPythonREPLTool`
//! (PyPI `langchain-azure-dynamic-sessions`, pinned in requirements-test.txt), pointed at the
//! local interpreter with a fake token.

mod common;

use evalgate::sessions::interpreter::{InterpreterOptions, serve};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn langchain_runs_code_keeps_state_and_deletes_sessions() {
    let Some(python) = common::python::python_with(&["langchain_azure_dynamic_sessions"]) else {
        return;
    };
    let interpreter = serve(InterpreterOptions::default())
        .await
        .expect("the interpreter starts");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/sessions_langchain.py"
    );

    let output = tokio::process::Command::new(&python)
        .arg(script)
        .arg(interpreter.base_url().as_str())
        .output()
        .await
        .expect("run the LangChain driver");
    assert!(
        output.status.success(),
        "driver failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).expect("the driver prints JSON");

    assert_eq!(seen["compute"]["result"], 42);
    assert_eq!(seen["compute"]["stdout"], "from langchain\n");
    assert_eq!(seen["state"]["result"], 43);
    assert_eq!(seen["failure"]["status"], "Failure");
    assert!(
        seen["failure"]["stderr"]
            .as_str()
            .unwrap()
            .contains("ZeroDivisionError")
    );
    assert!(
        seen["other_session"]["stderr"]
            .as_str()
            .unwrap()
            .contains("NameError")
    );
    assert_eq!(seen["existed_before_delete"], true);
    assert_eq!(seen["exists_after_delete"], false);
    assert_eq!(seen["after_delete"]["result"], false);
    interpreter.shutdown().await;
}
