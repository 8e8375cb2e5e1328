//! The local interpreter run through the production client: ordinary code, session state, and
//! a corpus of hostile snippets that must each be contained, with the expected error reported.
//!
//! Needs bubblewrap (`apt-get install bubblewrap`, or `./scripts/setup`) and /usr/bin/python3.

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use evalgate::sessions::interpreter::{
    InterpreterOptions, ResourceLimits, RunningInterpreter, serve,
};
use evalgate::sessions::{
    ApiContract, ExecuteRequest, Execution, ExecutionStatus, SessionClient, SessionClientOptions,
    SessionId,
};

async fn start(options: InterpreterOptions) -> (RunningInterpreter, SessionClient) {
    assert!(
        std::path::Path::new("/usr/bin/bwrap").exists(),
        "bubblewrap is missing: install it with `apt-get install bubblewrap` or ./scripts/setup"
    );
    let interpreter = serve(options).await.expect("the interpreter starts");
    let client = SessionClient::new(SessionClientOptions::new(interpreter.base_url())).unwrap();
    (interpreter, client)
}

fn options() -> InterpreterOptions {
    InterpreterOptions {
        limits: ResourceLimits {
            memory_bytes: 512 << 20,
            ..ResourceLimits::default()
        },
        ..InterpreterOptions::default()
    }
}

async fn run_in(
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
async fn network_is_unreachable() {
    let (interpreter, client) = start(options()).await;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();

    let code = format!(
        "import socket\n\
         for family, kind in ((socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET, socket.SOCK_DGRAM)):\n\
         \x20   try:\n\
         \x20       s = socket.socket(family, kind)\n\
         \x20       s.settimeout(2)\n\
         \x20       s.connect(('127.0.0.1', {port}))\n\
         \x20       s.send(b'x')\n\
         \x20       print('reached')\n\
         \x20   except OSError as e:\n\
         \x20       print('blocked', type(e).__name__)\n\
         try:\n\
         \x20   socket.getaddrinfo('example.com', 80)\n\
         \x20   print('resolved')\n\
         except OSError as e:\n\
         \x20   print('blocked', type(e).__name__)\n"
    );
    let execution = run_in(&client, None, &code, 10).await;
    assert_eq!(
        execution.status,
        ExecutionStatus::Succeeded,
        "{}",
        execution.stderr
    );
    assert_eq!(execution.stdout.lines().count(), 3, "{}", execution.stdout);
    assert!(
        execution.stdout.lines().all(|l| l.starts_with("blocked")),
        "{}",
        execution.stdout
    );
    assert!(
        listener.accept().is_err(),
        "nothing connected to the test's listener"
    );
    interpreter.shutdown().await;
}

#[tokio::test]
async fn host_files_are_out_of_reach() {
    let (interpreter, client) = start(options()).await;
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::File::create(&secret)
        .unwrap()
        .write_all(b"s3cr3t-value")
        .unwrap();
    let drop_zone = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(drop_zone.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }

    let code = format!(
        "attempts = [('read', {secret:?}), ('read', '/etc/shadow'), ('list', '/root'),\n\
         \x20           ('write', {drop:?}), ('write', '/usr/evil'), ('write', '/opt/evalgate/kernel.py'),\n\
         \x20           ('write', '/evil'), ('read', '/proc/{host_pid}/environ')]\n\
         import os\n\
         for kind, path in attempts:\n\
         \x20   try:\n\
         \x20       if kind == 'read': open(path).read()\n\
         \x20       elif kind == 'list': os.listdir(path)\n\
         \x20       else: open(path, 'w').write('x')\n\
         \x20       print('allowed', kind, path)\n\
         \x20   except OSError as e:\n\
         \x20       print('denied', type(e).__name__)\n\
         open('/mnt/data/mine', 'w').write('ok')\n\
         open('/tmp/scratch', 'w').write('ok')\n",
        secret = secret.display().to_string(),
        drop = drop_zone.path().join("escaped").display().to_string(),
        host_pid = std::process::id(),
    );
    let execution = run_in(&client, None, &code, 10).await;
    assert_eq!(
        execution.status,
        ExecutionStatus::Succeeded,
        "{}",
        execution.stderr
    );
    assert_eq!(execution.stdout.lines().count(), 8, "{}", execution.stdout);
    assert!(
        execution.stdout.lines().all(|l| l.starts_with("denied")),
        "{}",
        execution.stdout
    );
    assert!(!execution.stdout.contains("s3cr3t"));
    assert_eq!(std::fs::read_dir(drop_zone.path()).unwrap().count(), 0);
    assert!(!std::path::Path::new("/usr/evil").exists());
    interpreter.shutdown().await;
}

#[tokio::test]
async fn a_fork_bomb_is_stopped_and_cleaned_up() {
    let (interpreter, client) = start(options()).await;
    let session = SessionId::generate();

    let bomb = run_in(
        &client,
        Some(&session),
        "import os\nwhile True:\n    os.fork()",
        20,
    )
    .await;
    assert_eq!(bomb.status, ExecutionStatus::Failed);
    assert!(bomb.stderr.contains("BlockingIOError"), "{}", bomb.stderr);

    let after = run_in(
        &client,
        Some(&session),
        "import os\nsorted(int(p) for p in os.listdir('/proc') if p.isdigit())",
        10,
    )
    .await;
    assert_eq!(after.status, ExecutionStatus::Succeeded, "{}", after.stderr);
    assert_eq!(
        after.result.unwrap().as_array().unwrap().len(),
        2,
        "only the namespace init and the kernel remain"
    );
    interpreter.shutdown().await;
}

#[tokio::test]
async fn a_memory_hog_gets_memory_error() {
    let (interpreter, client) = start(options()).await;
    let hog = run_in(
        &client,
        None,
        "blocks = []\nwhile True:\n    blocks.append(bytearray(64 * 1024 * 1024))",
        20,
    )
    .await;
    assert_eq!(hog.status, ExecutionStatus::Failed);
    assert!(hog.stderr.contains("MemoryError"), "{}", hog.stderr);
    interpreter.shutdown().await;
}

#[tokio::test]
async fn an_infinite_loop_times_out() {
    let (interpreter, client) = start(options()).await;
    let session = SessionId::generate();

    run_in(&client, Some(&session), "kept = 'yes'", 10).await;
    let interrupted = run_in(&client, Some(&session), "while True:\n    pass", 2).await;
    assert_eq!(interrupted.status, ExecutionStatus::TimedOut);
    let still = run_in(&client, Some(&session), "kept", 10).await;
    assert_eq!(
        still.result,
        Some(serde_json::json!("yes")),
        "an interruptible loop keeps the session"
    );

    let stubborn =
        "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\nwhile True:\n    pass";
    let killed = run_in(&client, Some(&session), stubborn, 2).await;
    assert_eq!(killed.status, ExecutionStatus::TimedOut);
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
async fn a_double_forked_daemon_is_gone_after_the_execution() {
    let (interpreter, client) = start(options()).await;
    let session = SessionId::generate();
    let marker = format!("{}.{}", 1000, std::process::id());

    let code = format!(
        "import os, time\n\
         if os.fork() == 0:\n\
         \x20   os.setsid()\n\
         \x20   if os.fork() == 0:\n\
         \x20       open('/mnt/data/daemon.pid', 'w').write(str(os.getpid()))\n\
         \x20       os.execv('/usr/bin/sleep', ['sleep', '{marker}'])\n\
         \x20   os._exit(0)\n\
         deadline = time.monotonic() + 5\n\
         while not os.path.exists('/mnt/data/daemon.pid') and time.monotonic() < deadline:\n\
         \x20   time.sleep(0.01)\n\
         int(open('/mnt/data/daemon.pid').read())\n"
    );
    let started = run_in(&client, Some(&session), &code, 10).await;
    assert_eq!(
        started.status,
        ExecutionStatus::Succeeded,
        "{}",
        started.stderr
    );
    let pid = started.result.unwrap().as_u64().unwrap();

    assert!(
        !host_has_process_with_arg(&marker),
        "the daemon is gone from the host"
    );
    let check = format!(
        "import os\ntry:\n    os.kill({pid}, 0)\n    state = 'alive'\nexcept ProcessLookupError:\n    state = 'gone'\nstate"
    );
    let inside = run_in(&client, Some(&session), &check, 10).await;
    assert_eq!(inside.result, Some(serde_json::json!("gone")));
    interpreter.shutdown().await;
}

fn host_has_process_with_arg(arg: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|cmdline| {
                cmdline
                    .split(|b| *b == 0)
                    .any(|part| part == arg.as_bytes())
            })
            .unwrap_or(false)
    })
}

#[tokio::test]
async fn signals_do_not_leave_the_sandbox() {
    let (interpreter, client) = start(options()).await;
    let session = SessionId::generate();
    let code = format!(
        "import os, signal\n\
         outcomes = []\n\
         for pid in ({host_pid}, 1, os.getppid()):\n\
         \x20   try:\n\
         \x20       os.kill(pid, signal.SIGKILL)\n\
         \x20       outcomes.append('sent')\n\
         \x20   except OSError as e:\n\
         \x20       outcomes.append(type(e).__name__)\n\
         outcomes\n",
        host_pid = std::process::id()
    );
    let execution = run_in(&client, Some(&session), &code, 10).await;
    assert_eq!(
        execution.status,
        ExecutionStatus::Succeeded,
        "{}",
        execution.stderr
    );
    let outcomes = execution.result.unwrap();
    assert_eq!(
        outcomes[0], "ProcessLookupError",
        "the host pid is not visible: {outcomes}"
    );

    let alive = run_in(&client, Some(&session), "'still here'", 10).await;
    assert_eq!(
        alive.result,
        Some(serde_json::json!("still here")),
        "the sandbox's init survived"
    );
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
