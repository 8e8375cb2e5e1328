//! A corpus of hostile snippets run in the local interpreter: each must be contained, and the
//! execution must report the expected error.
//!
//! Needs bubblewrap (`apt-get install bubblewrap`, or `./scripts/setup`) and /usr/bin/python3.

mod sessions_common;

use std::io::Write;
use std::net::TcpListener;

use evalgate::sessions::{ExecutionStatus, SessionId};
use sessions_common::{options, run_in, start};

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
         import tempfile\n\
         open(os.path.join(tempfile.gettempdir(), 'scratch'), 'w').write('ok')\n",
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
async fn the_sandbox_holds_no_privilege() {
    let (interpreter, client) = start(options()).await;
    let code = "import ctypes, os\n\
        libc = ctypes.CDLL(None, use_errno=True)\n\
        status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)\n\
        MS_REMOUNT, MS_BIND = 32, 4096\n\
        remount = libc.mount(None, b'/usr', None, MS_REMOUNT | MS_BIND, None)\n\
        remount_errno = ctypes.get_errno()\n\
        CLONE_NEWUSER = 0x10000000\n\
        nested = libc.unshare(CLONE_NEWUSER)\n\
        {'uid': os.getuid(), 'capEff': status['CapEff'].strip(), 'noNewPrivs': status['NoNewPrivs'].strip(),\n\
        \x20'remount': remount, 'remountErrno': remount_errno, 'unshare': nested,\n\
        \x20'usrWritable': os.access('/usr/lib', os.W_OK)}\n";
    let execution = run_in(&client, None, code, 10).await;
    assert_eq!(
        execution.status,
        ExecutionStatus::Succeeded,
        "{}",
        execution.stderr
    );
    let seen = execution.result.unwrap();
    assert_ne!(seen["uid"], 0);
    assert_eq!(seen["capEff"], "0000000000000000");
    assert_eq!(seen["noNewPrivs"], "1");
    assert_eq!(seen["remount"], -1);
    assert_eq!(seen["remountErrno"], libc::EPERM);
    assert_eq!(seen["unshare"], -1);
    assert_eq!(seen["usrWritable"], false);
    interpreter.shutdown().await;
}
