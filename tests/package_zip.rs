//! The deployment package that `scripts/package` builds: its layout, the executable bit, the
//! glibc gate, and the handler starting from an unpacked package the way the Functions host
//! starts it (port in FUNCTIONS_CUSTOMHANDLER_PORT, readiness probed with `GET /`).
//!
//! These tests package the binary cargo already built for them (`--binary`), so they add no
//! release build; `scripts/package` without `--binary` builds the shipping binary itself.

use std::collections::BTreeSet;
use std::ffi::CStr;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The host waits this long for the handler's first answer before giving up on it.
const READINESS_DEADLINE: Duration = Duration::from_secs(30);

/// The interval at which the host probes `GET /`.
const PROBE_INTERVAL: Duration = Duration::from_millis(25);

fn app_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The glibc this machine runs; a binary cargo built here needs no newer one.
fn host_glibc() -> String {
    // SAFETY: gnu_get_libc_version returns a pointer to a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(libc::gnu_get_libc_version()) };
    version.to_str().expect("glibc version is ASCII").to_owned()
}

/// Runs `scripts/package` with `args`, packaging the handler built for this test run.
fn run_package(out: &Path, extra: &[&str]) -> Output {
    Command::new(app_root().join("scripts/package"))
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_handler"))
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("run scripts/package")
}

/// The package of this run's handler, built once and shared by the tests that only read it
/// (packaging deflates a large debug binary, which takes a while).
fn shared_package() -> &'static Path {
    static PACKAGE: OnceLock<PathBuf> = OnceLock::new();
    PACKAGE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("package_zip");
        std::fs::create_dir_all(&dir).expect("create the package dir");
        let zip = dir.join("evalgate.zip");
        let output = run_package(&zip, &["--max-glibc", &host_glibc()]);
        assert!(
            output.status.success(),
            "scripts/package failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        zip
    })
}

fn zip_tool(args: &[&str]) -> Output {
    let output = Command::new("python3")
        .arg(app_root().join("tests/support/deploy_zip.py"))
        .args(args)
        .output()
        .expect("python3 is needed to read the zip (Debian: apt-get install python3)");
    assert!(
        output.status.success(),
        "deploy_zip.py {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// One `GET /` on the handler's port; the status line if anything answered.
fn probe(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status = response.lines().next()?.to_owned();
    status.starts_with("HTTP/1.").then_some(status)
}

/// Kills the spawned handler when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn package_holds_host_json_the_function_folders_and_an_executable_handler() {
    let dir = tempfile::tempdir().expect("temp dir");
    let zip = shared_package();

    let listing: Vec<Value> =
        serde_json::from_slice(&zip_tool(&["list", zip.to_str().unwrap()]).stdout)
            .expect("listing JSON");
    let files: BTreeSet<String> = listing
        .iter()
        .filter(|e| e["dir"] == false)
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = [
        "ApproveCode/function.json",
        "GetStatus/function.json",
        "SubmitCode/function.json",
        "handler",
        "host.json",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(files, expected, "the zip root is the app root");

    let handler = listing
        .iter()
        .find(|e| e["name"] == "handler")
        .expect("handler entry");
    let mode = handler["mode"].as_u64().expect("mode");
    assert_eq!(mode & 0o111, 0o111, "handler is executable: {mode:o}");

    let unpacked = dir.path().join("app");
    zip_tool(&["extract", zip.to_str().unwrap(), unpacked.to_str().unwrap()]);
    let host: Value =
        serde_json::from_str(&std::fs::read_to_string(unpacked.join("host.json")).unwrap())
            .expect("host.json");
    let executable = host["customHandler"]["description"]["defaultExecutablePath"]
        .as_str()
        .expect("defaultExecutablePath");
    assert!(
        unpacked.join(executable).is_file(),
        "host.json names {executable}, which the package holds"
    );
    for function in ["ApproveCode", "GetStatus", "SubmitCode"] {
        assert_eq!(
            std::fs::read(unpacked.join(function).join("function.json")).unwrap(),
            std::fs::read(app_root().join(function).join("function.json")).unwrap(),
            "{function}/function.json is packaged as written"
        );
    }
}

#[test]
fn packaged_handler_answers_the_host_readiness_probe() {
    let dir = tempfile::tempdir().expect("temp dir");
    let zip = shared_package();
    let unpacked = dir.path().join("app");
    zip_tool(&["extract", zip.to_str().unwrap(), unpacked.to_str().unwrap()]);

    // Nothing listens on the backend ports: readiness must not wait for the scheduler or the pool.
    let port = free_port();
    let unused = free_port();
    let child = Command::new(unpacked.join("handler"))
        .current_dir(&unpacked)
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("FUNCTIONS_CUSTOMHANDLER_WORKER_ID", "package-test")
        .env("FUNCTIONS_APP_ROOT_PATH", &unpacked)
        .env(
            "DURABLE_TASK_SCHEDULER_CONNECTION_STRING",
            format!("Endpoint=http://127.0.0.1:{unused};Authentication=None;TaskHub=default"),
        )
        .env("SESSION_POOL_URL", format!("http://127.0.0.1:{unused}"))
        .env("APPROVAL_TIMEOUT", "24h")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the packaged handler");
    let mut running = Running(child);

    let started = Instant::now();
    let status = loop {
        if let Some(status) = probe(port) {
            break status;
        }
        if let Some(exit) = running.0.try_wait().expect("poll handler") {
            let mut stderr = String::new();
            if let Some(mut pipe) = running.0.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!("handler exited ({exit}) before answering GET /: {stderr}");
        }
        assert!(
            started.elapsed() < READINESS_DEADLINE,
            "handler did not answer GET / on port {port} within {READINESS_DEADLINE:?}"
        );
        std::thread::sleep(PROBE_INTERVAL);
    };
    assert!(status.starts_with("HTTP/1."), "{status}");
}

#[test]
fn package_refuses_a_binary_that_needs_a_newer_glibc_than_allowed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let zip = dir.path().join("evalgate.zip");

    // Every x86-64 glibc binary needs at least GLIBC_2.2.5, so 2.2 is always too old.
    let output = run_package(&zip, &["--max-glibc", "2.2"]);

    assert!(!output.status.success(), "the gate must reject the binary");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("needs glibc") && stderr.contains("at most 2.2"),
        "{stderr}"
    );
    assert!(!zip.exists(), "no package is written for a rejected binary");
}

#[test]
fn package_refuses_a_file_that_is_not_an_x86_64_executable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let zip = dir.path().join("evalgate.zip");

    let output = Command::new(app_root().join("scripts/package"))
        .arg("--binary")
        .arg(app_root().join("host.json"))
        .arg("--out")
        .arg(&zip)
        .output()
        .expect("run scripts/package");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not an ELF file"), "{stderr}");
    assert!(!zip.exists());
}
