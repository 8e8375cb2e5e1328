"""Worker and client for the task hub crash test.

Usage: taskhub_crash_worker.py <host:port> <activity log> <count>. Starts <count> orchestrations
of three activities around a durable timer, keeps a Python SDK worker running across task hub
restarts, waits for every orchestration to finish (retrying while the hub is down), and prints
{instance id: {status, output}} as JSON on the last line of stdout. Every activity execution
appends "<instance id> <step>" to the activity log.
"""

import json
import os
import sys
import time
from datetime import timedelta

import grpc
from durabletask import client, worker

ADDRESS, LOG, COUNT = sys.argv[1], sys.argv[2], int(sys.argv[3])
LIMIT = 150


def record(ctx, args):
    instance_id, step, n = args
    with open(LOG, "a") as log:
        log.write(f"{instance_id} {step}\n")
    return n * 10 + step


def three_steps(ctx, n):
    first = yield ctx.call_activity(record, input=[ctx.instance_id, 1, n])
    yield ctx.create_timer(timedelta(seconds=2))
    second = yield ctx.call_activity(record, input=[ctx.instance_id, 2, n])
    third = yield ctx.call_activity(record, input=[ctx.instance_id, 3, n])
    return [first, second, third]


def retrying(call):
    deadline = time.monotonic() + LIMIT
    while True:
        try:
            return call()
        except (grpc.RpcError, TimeoutError) as err:
            code = err.code() if isinstance(err, grpc.RpcError) else None
            if time.monotonic() > deadline or code not in (None, grpc.StatusCode.UNAVAILABLE,
                                                           grpc.StatusCode.CANCELLED,
                                                           grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            time.sleep(0.1)


def main():
    w = worker.TaskHubGrpcWorker(host_address=ADDRESS)
    w.add_orchestrator(three_steps)
    w.add_activity(record)
    w.start()
    c = client.TaskHubGrpcClient(host_address=ADDRESS)
    ids = [f"crash-{i}" for i in range(COUNT)]
    for i, iid in enumerate(ids):
        c.schedule_new_orchestration(three_steps, input=i, instance_id=iid)

    results = {}
    for iid in ids:
        state = retrying(lambda: c.wait_for_orchestration_completion(iid, timeout=10))
        results[iid] = {"status": state.runtime_status.name, "output": state.get_output()}
    w.stop()
    print(json.dumps(results))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
