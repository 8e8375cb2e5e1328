"""The session kernel: a long-lived Python REPL that runs inside the sandbox, one per session.

The host starts it as `python -I kernel.py CONFIG_JSON` with the protocol on stdin (one JSON
request per line) and stdout (one JSON response per line). At start it moves the protocol to
private descriptors, applies Landlock when asked, and reports what it measured about its own
confinement. Each request runs in one persistent namespace, so state survives between executions
of a session; after each one every other process in the sandbox is killed.
"""

# Only cheap modules at start-up: a fresh session pays for every import here.
import _ast
import _signal as signal
import json
import math
import os
import resource
import sys
import time

PYCF_ONLY_AST = 0x400

CONFIG = json.loads(sys.argv[1])
KERNEL_PID = os.getpid()

# Landlock access rights (linux/landlock.h), by the ABI that introduced them.
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1, 2, 4, 8
FS_READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
FS_ALL_V1 = (1 << 13) - 1
FS_REFER, FS_TRUNCATE = 1 << 13, 1 << 14
NET_BIND_TCP, NET_CONNECT_TCP = 1, 2
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1, 2
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
PR_SET_NO_NEW_PRIVS = 38


class ExecutionTimeout(BaseException):
    """Raised in the user's code when its wall-clock allowance runs out."""


def write_line(fd, message):
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]


def apply_landlock(read_only, read_write):
    """Confine this process and its children to the given paths, with no TCP. Returns a report."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return {"abi": 0, "enforced": False, "detail": "landlock unavailable"}

    fs = FS_ALL_V1 | (FS_REFER if abi >= 2 else 0) | (FS_TRUNCATE if abi >= 3 else 0)
    net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL if abi >= 6 else 0
    attr = (ctypes.c_uint64 * 3)(fs, net, scoped)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    ruleset = libc.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        return {"abi": abi, "enforced": False, "detail": "create_ruleset failed"}

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    for paths, rights in ((read_only, FS_READ), (read_write, fs)):
        for path in paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            allowed = rights if os.path.isdir(path) else rights & (FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE)
            rule = PathBeneath(allowed, fd)
            libc.syscall(SYS_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0)
            os.close(fd)

    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    if libc.syscall(SYS_RESTRICT_SELF, ruleset, 0) != 0:
        return {"abi": abi, "enforced": False, "detail": "restrict_self failed"}
    os.close(ruleset)
    return {"abi": abi, "enforced": True, "tcp": abi >= 4, "signalScope": abi >= 6}


def measured_confinement(landlock):
    status = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    limits = {
        name: resource.getrlimit(getattr(resource, "RLIMIT_" + name))[1]
        for name in ("AS", "CPU", "NPROC", "FSIZE", "NOFILE", "CORE")
    }
    return {
        "uid": os.getuid(),
        "pid": os.getpid(),
        "capEff": status.get("CapEff"),
        "noNewPrivs": status.get("NoNewPrivs") == "1",
        "seccomp": status.get("Seccomp") == "2",
        "landlock": landlock,
        "limits": limits,
        "python": sys.version.split()[0],
    }


def to_json_value(value, cap):
    """The last expression's value as JSON when it is plain data, else its repr; capped."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        text = json.dumps(value, allow_nan=False)
        if len(text) <= cap:
            return value
    except (TypeError, ValueError, RecursionError):
        pass
    try:
        return repr(value)[:cap]
    except Exception:
        return "<unrepresentable result>"


def run_user_code(code, namespace):
    """Run `code` in `namespace`; returns the value of a trailing expression, if any."""
    tree = compile(code, "<session>", "exec", PYCF_ONLY_AST)
    tail = None
    if tree.body and isinstance(tree.body[-1], _ast.Expr):
        tail = _ast.Expression(tree.body.pop().value)
    exec(compile(tree, "<session>", "exec"), namespace)
    if tail is not None:
        return eval(compile(tail, "<session>", "eval"), namespace)
    return None


def kill_everything_else(deadline):
    """Kill every other process this sandbox's uid owns; True once none is left."""
    while time.monotonic() < deadline:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            return True
        time.sleep(0.002)
    return False


def capture_file(directory):
    """An anonymous file in `directory` for one output stream."""
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_RDWR, 0o600)
    except OSError:
        path = os.path.join(directory, "capture-%d-%d" % (os.getpid(), time.monotonic_ns()))
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        os.unlink(path)
    return os.fdopen(fd, "w+b")


def read_capped(f, cap):
    f.flush()
    f.seek(0)
    return f.read(cap * 4).decode("utf-8", "replace")[:cap]


def execute(request, namespace, capture_dir):
    cap = request["maxOutput"]
    out = capture_file(capture_dir)
    err = capture_file(capture_dir)
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)

    used = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    # Above the host's wall-clock deadline, so a busy loop is stopped by the clock first.
    cpu_soft = int(used + request["timeout"] + 5)
    if cpu_hard != resource.RLIM_INFINITY:
        cpu_soft = min(cpu_soft, cpu_hard)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_soft, cpu_hard))

    def on_alarm(signum, frame):
        raise ExecutionTimeout()

    status, error, result = "Succeeded", None, None
    started = time.monotonic()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, request["timeout"])
    try:
        result = run_user_code(request["code"], namespace)
    except ExecutionTimeout:
        status, error = "TimedOut", {"code": "ExecutionTimeout", "message": "execution timed out"}
    except BaseException as exc:
        if os.getpid() != KERNEL_PID:
            os._exit(1)
        status = "Failed"
        error = {"code": "ExecutionError", "message": type(exc).__name__}
        import traceback

        if isinstance(exc, SyntaxError):
            sys.stderr.write("".join(traceback.format_exception_only(type(exc), exc)))
        else:
            frames = exc.__traceback__
            while frames is not None and frames.tb_frame.f_code.co_filename != "<session>":
                frames = frames.tb_next
            traceback.print_exception(type(exc), exc, frames)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        if os.getpid() != KERNEL_PID:
            os._exit(0)
    duration_ms = int((time.monotonic() - started) * 1000)

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os.dup2(DEVNULL, 1)
    os.dup2(DEVNULL, 2)
    clean = True
    if CONFIG["killOthers"]:
        clean = kill_everything_else(time.monotonic() + 2.0)
    response = {
        "status": status,
        "error": error,
        "stdout": read_capped(out, cap),
        "stderr": read_capped(err, cap),
        "result": to_json_value(result, cap),
        "durationMs": duration_ms,
        "clean": clean,
    }
    out.close()
    err.close()
    return response


def main():
    global DEVNULL
    requests_in = os.dup(0)
    responses_out = os.dup(1)
    DEVNULL = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(DEVNULL, fd)
    os.chdir(CONFIG["workdir"])

    landlock = {"abi": 0, "enforced": False, "detail": "not requested"}
    if CONFIG.get("landlock"):
        landlock = apply_landlock(CONFIG["landlock"]["readOnly"], CONFIG["landlock"]["readWrite"])
    write_line(responses_out, {"ready": measured_confinement(landlock)})

    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    reader = os.fdopen(requests_in, "rb", buffering=0)
    buffered = b""
    while True:
        while b"\n" not in buffered:
            chunk = reader.read(65536)
            if not chunk:
                return
            buffered += chunk
        line, buffered = buffered.split(b"\n", 1)
        response = execute(json.loads(line), namespace, CONFIG["captureDir"])
        write_line(responses_out, response)


if __name__ == "__main__":
    main()
