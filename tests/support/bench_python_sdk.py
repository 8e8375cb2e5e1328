"""The approval workload of the benchmarks, written with the official Durable Task Python SDK.

Usage: bench_python_sdk.py <host:port> <flows> <seconds> <poll_ms>

Runs a worker and a client in this process against the task hub at <host:port>. Each of <flows>
threads repeats, until <seconds> have passed: schedule the orchestration, poll its custom status
every <poll_ms> ms until it is awaiting approval, raise the approval event, wait for completion.
The orchestration has the shape of the service's: an activity, then a custom status, then a race
of the approval event against a one-hour timer. The activity is trivial, so what is measured is
the SDK and the task hub, not a sandbox.

Prints one JSON object on the last stdout line: completed flows within the window, the window,
and the per-flow latencies in milliseconds.
"""

import json
import os
import sys
import threading
import time
from datetime import timedelta

from durabletask import client, task, worker

ADDRESS = sys.argv[1]
FLOWS = int(sys.argv[2])
SECONDS = float(sys.argv[3])
POLL = int(sys.argv[4]) / 1000.0
WAIT = 60


def bench_noop(ctx, value):
    return value


def bench_gate(ctx, value):
    result = yield ctx.call_activity(bench_noop, input=value)
    ctx.set_custom_status({"stage": "awaiting_approval", "result": result})
    approval = ctx.wait_for_external_event("HumanApproval")
    deadline = ctx.create_timer(timedelta(hours=1))
    winner = yield task.when_any([approval, deadline])
    if winner == approval:
        decision = approval.get_result()
        ctx.set_custom_status({"stage": "approved", "result": result})
        return {"approved": decision["approved"], "result": result}
    return {"approved": False, "result": result}


def flow(c, number, deadline, done, errors):
    sequence = 0
    while time.monotonic() < deadline:
        sequence += 1
        value = f"{number}-{sequence}"
        started = time.monotonic()
        try:
            iid = c.schedule_new_orchestration(bench_gate, input=value)
            waiting = None
            while time.monotonic() < started + WAIT:
                state = c.get_orchestration_state(iid, fetch_payloads=True)
                status = state.get_custom_status() if state is not None else None
                if isinstance(status, dict) and status.get("stage") == "awaiting_approval":
                    waiting = time.monotonic()
                    break
                time.sleep(POLL)
            if waiting is None:
                raise TimeoutError(f"{iid} never reached awaiting_approval")
            c.raise_orchestration_event(iid, "HumanApproval", data={"approved": True})
            state = c.wait_for_orchestration_completion(iid, timeout=WAIT)
            finished = time.monotonic()
            output = state.get_output()
            if state.runtime_status.name != "COMPLETED" or output != {"approved": True, "result": value}:
                raise RuntimeError(f"{iid} ended {state.runtime_status.name} with {output!r}")
        except Exception as err:  # noqa: BLE001 - every failure is counted and reported
            errors.append(repr(err))
            return
        if finished <= deadline:
            done.append(((waiting - started) * 1000.0, (finished - started) * 1000.0))


def main():
    w = worker.TaskHubGrpcWorker(host_address=ADDRESS)
    w.add_orchestrator(bench_gate)
    w.add_activity(bench_noop)
    w.start()
    c = client.TaskHubGrpcClient(host_address=ADDRESS)

    done, errors = [], []
    began = time.monotonic()
    deadline = began + SECONDS
    cpu_before = os.times()
    threads = [
        threading.Thread(target=flow, args=(c, n, deadline, done, errors)) for n in range(FLOWS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu_after = os.times()
    w.stop()

    cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    print(json.dumps({
        "completed": len(done),
        "window_s": SECONDS,
        "elapsed_s": time.monotonic() - began,
        "cpu_s": cpu,
        "to_awaiting_ms": [d[0] for d in done],
        "total_ms": [d[1] for d in done],
        "errors": errors[:5],
        "error_count": len(errors),
    }))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
