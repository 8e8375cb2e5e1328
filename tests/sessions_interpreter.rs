//! The local interpreter run through the production client: ordinary code, session state,
//! timeouts, output caps, and the isolation report, with and without bubblewrap.
//!
//! Needs bubblewrap (`apt-get install bubblewrap`, or `./scripts/setup`) and /usr/bin/python3.

mod sessions_common;

use std::net::TcpListener;

use evalgate::sessions::interpreter::{InterpreterOptions, serve};
use evalgate::sessions::{
    ApiContract, ExecutionStatus, SessionClient, SessionClientOptions, SessionId,
};
use sessions_common::{options, run_in, start};

#[tokio::test]
async fn ordinary_code_runs_and_reports() {
    let (interpreter, client) = start(options()).await;

    let sum = run_in(&client, None, "print('hello')\nsum(range(10))", 10).await;
    assert_eq!(sum.status, ExecutionStatus::Succeeded);
    assert_eq!(sum.stdout, "hello\n");
    assert_eq!(sum.result, Some(serde_json::json!(45)));

    let raised = run_in(&client, None, "def f():\n    return 1 / 0\nf()", 10).await;
    assert_eq!(raised.status, ExecutionStatus::Failed);
    assert!(
        raised.stderr.contains("ZeroDivisionError"),
        "{}",
        raised.stderr
    );
    assert!(
        !raised.stderr.contains("kernel.py"),
        "no kernel frames: {}",
        raised.stderr
    );

    let syntax = run_in(&client, None, "def broken(:\n", 10).await;
    assert_eq!(syntax.status, ExecutionStatus::Failed);
    assert!(syntax.stderr.contains("SyntaxError"), "{}", syntax.stderr);

    let object = run_in(&client, None, "object()", 10).await;
    assert!(
        object
            .result
            .unwrap()
            .as_str()
            .unwrap()
            .starts_with("<object object at")
    );
    interpreter.shutdown().await;
}

#[tokio::test]
async fn state_is_kept_per_session_and_not_shared() {
    let (interpreter, client) = start(options()).await;
    let legacy = SessionClient::new(SessionClientOptions {
        contract: ApiContract::Legacy2024,
        ..SessionClientOptions::new(interpreter.base_url())
    })
    .unwrap();
    let one = SessionId::generate();
    let other = SessionId::generate();

    let set = run_in(
        &client,
        Some(&one),
        "counter = 41\nopen('/mnt/data/note', 'w').write('kept')",
        10,
    )
    .await;
    assert_eq!(set.status, ExecutionStatus::Succeeded);
    let read = run_in(
        &legacy,
        Some(&one),
        "counter += 1\n(counter, open('/mnt/data/note').read())",
        10,
    )
    .await;
    assert_eq!(read.result, Some(serde_json::json!([42, "kept"])));

    let elsewhere = run_in(
        &client,
        Some(&other),
        "import os\nprint(os.listdir('/mnt/data'))\ncounter",
        10,
    )
    .await;
    assert_eq!(elsewhere.status, ExecutionStatus::Failed);
    assert_eq!(elsewhere.stdout, "[]\n");
    assert!(
        elsewhere.stderr.contains("NameError"),
        "{}",
        elsewhere.stderr
    );
    interpreter.shutdown().await;
}

#[tokio::test]
async fn an_infinite_loop_times_out() {
    let (interpreter, client) = start(options()).await;
    let session = SessionId::generate();

    run_in(&client, Some(&session), "kept = 'yes'", 10).await;
    let interrupted = run_in(&client, Some(&session), "while True:\n    pass", 2).await;
    assert_eq!(
        interrupted.status,
        ExecutionStatus::TimedOut,
        "{interrupted:?}"
    );
    let still = run_in(&client, Some(&session), "kept", 10).await;
    assert_eq!(
        still.result,
        Some(serde_json::json!("yes")),
        "an interruptible loop keeps the session"
    );

    let stubborn =
        "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass";
    let killed = run_in(&client, Some(&session), stubborn, 2).await;
    assert_eq!(killed.status, ExecutionStatus::TimedOut, "{killed:?}");
    let fresh = run_in(&client, Some(&session), "'kept' in globals()", 10).await;
    assert_eq!(
        fresh.result,
        Some(serde_json::json!(false)),
        "a killed session starts afresh"
    );
    interpreter.shutdown().await;
}

#[tokio::test]
async fn an_output_flood_is_capped() {
    let (interpreter, client) = start(options()).await;
    let flood = run_in(&client, None, "import sys\nfor _ in range(200000):\n    print('x' * 100)\n    print('y' * 100, file=sys.stderr)", 20).await;
    assert_eq!(flood.stdout.chars().count(), 4096);
    assert_eq!(flood.stderr.chars().count(), 4096);
    assert!(flood.stdout.starts_with("xxxx"));
    interpreter.shutdown().await;
}

#[tokio::test]
async fn the_status_endpoint_shows_every_layer_active() {
    let (interpreter, _) = start(options()).await;
    let status: serde_json::Value = reqwest::get(interpreter.base_url().join("status").unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let layers = status["isolation"]["layers"].as_array().unwrap();
    let inactive: Vec<_> = layers.iter().filter(|l| l["active"] != true).collect();
    assert!(inactive.is_empty(), "inactive layers: {inactive:?}");
    assert_eq!(layers.len(), 9);
    assert_eq!(
        status["isolation"],
        serde_json::to_value(interpreter.isolation()).unwrap()
    );
    interpreter.shutdown().await;
}

#[tokio::test]
async fn without_bubblewrap_seccomp_and_landlock_still_confine() {
    let (interpreter, client) = start(InterpreterOptions {
        use_bwrap: false,
        ..options()
    })
    .await;
    let isolation = interpreter.isolation();
    assert!(!isolation.is_active("namespaces"));
    assert!(
        isolation.is_active("seccomp") && isolation.is_active("landlock"),
        "{isolation:?}"
    );

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let code = format!(
        "import socket, os\n\
         out = []\n\
         try:\n\
         \x20   socket.create_connection(('127.0.0.1', {port}), timeout=2)\n\
         \x20   out.append('connected')\n\
         except OSError as e:\n\
         \x20   out.append(type(e).__name__)\n\
         try:\n\
         \x20   open('/etc/hostname').read()\n\
         \x20   out.append('read')\n\
         except OSError as e:\n\
         \x20   out.append(type(e).__name__)\n\
         out\n"
    );
    let execution = run_in(&client, None, &code, 10).await;
    assert_eq!(
        execution.result,
        Some(serde_json::json!(["PermissionError", "PermissionError"])),
        "{}",
        execution.stderr
    );
    interpreter.shutdown().await;
}

#[tokio::test]
async fn refuses_a_non_loopback_address() {
    let refused = serve(InterpreterOptions {
        listen: "0.0.0.0:0".parse().unwrap(),
        ..InterpreterOptions::default()
    })
    .await;
    assert!(matches!(
        refused,
        Err(evalgate::sessions::interpreter::InterpreterError::NotLoopback(_))
    ));
}

#[tokio::test]
async fn with_no_isolation_it_refuses_unless_opted_in() {
    let unconfined = InterpreterOptions {
        use_bwrap: false,
        use_seccomp: false,
        use_landlock: false,
        ..options()
    };
    let refused = serve(unconfined.clone()).await;
    match refused {
        Err(evalgate::sessions::interpreter::InterpreterError::NoIsolation { missing }) => {
            assert!(
                missing.contains("namespaces") && missing.contains("seccomp"),
                "{missing}"
            );
        }
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("started with no isolation"),
    }

    let (interpreter, client) = start(InterpreterOptions {
        allow_unisolated: true,
        ..unconfined
    })
    .await;
    assert!(interpreter.isolation().unisolated_opt_in);
    assert!(!interpreter.isolation().isolated);
    let execution = run_in(&client, None, "6 * 7", 10).await;
    assert_eq!(execution.result, Some(serde_json::json!(42)));
    interpreter.shutdown().await;
}
