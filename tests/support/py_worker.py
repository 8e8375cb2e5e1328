"""A worker of the official Python SDK, for interop tests in which our client drives it.

Usage: py_worker.py ADDRESS. Registers the orchestrator `python_pipeline` (calls the activity
`python_greet`, publishes a custom status, waits for the event `decision`, returns both) and
prints `READY` once started. Stops on SIGTERM or SIGINT.
"""

import signal
import sys
import threading

from durabletask import task, worker


def python_greet(ctx: task.ActivityContext, name: str) -> str:
    return f"Hello from Python, {name}!"


def python_pipeline(ctx: task.OrchestrationContext, name: str):
    greeting = yield ctx.call_activity("python_greet", input=name)
    ctx.set_custom_status({"stage": "waiting", "greeting": greeting})
    decision = yield ctx.wait_for_external_event("decision")
    return {"greeting": greeting, "decision": decision}


def main() -> int:
    address = sys.argv[1]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    w = worker.TaskHubGrpcWorker(host_address=address)
    w.add_orchestrator(python_pipeline)  # registered by function name
    w.add_activity(python_greet)
    w.start()
    print("READY", flush=True)
    stop.wait()
    w.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
