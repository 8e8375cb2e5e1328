"""Scenarios for the embedded task hub, driven with the official Durable Task Python SDK.

Usage: taskhub_scenarios.py <host:port> <scenario>. Runs a worker and a client against the task
hub at that address, runs the scenario, and prints one JSON object with what it observed on the
last line of stdout. The Rust tests in tests/taskhub_python.rs assert on that object.
"""

import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone

import grpc
from durabletask import client, task, worker
from durabletask.internal import orchestrator_service_pb2 as pb

ADDRESS = sys.argv[1]
SCENARIO = sys.argv[2]
WAIT = 60
ATTEMPTS = {}


def hello(ctx, name):
    return f"Hello {name}!"


def square(ctx, n):
    return n * n


def flaky(ctx, key):
    ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
    if ATTEMPTS[key] < 3:
        raise ValueError(f"attempt {ATTEMPTS[key]} fails")
    return ATTEMPTS[key]


def always_fails(ctx, _):
    raise ValueError("this activity always fails")


def sequence(ctx, names):
    out = []
    for name in names:
        out.append((yield ctx.call_activity(hello, input=name)))
        ctx.set_custom_status({"done": len(out)})
    return out


def fan_out(ctx, n):
    results = yield task.when_all([ctx.call_activity(square, input=i) for i in range(n)])
    return sum(results)


def timer(ctx, seconds):
    start = ctx.current_utc_datetime
    yield ctx.create_timer(timedelta(seconds=seconds))
    return (ctx.current_utc_datetime - start).total_seconds()


def approval(ctx, _):
    greeting = yield ctx.call_activity(hello, input="first")
    ctx.set_custom_status("waiting")
    answer = yield ctx.wait_for_external_event("Approval")
    return [greeting, answer]


def approval_or_timeout(ctx, seconds):
    event = ctx.wait_for_external_event("approval")
    deadline = ctx.create_timer(timedelta(seconds=seconds))
    winner = yield task.when_any([event, deadline])
    return "approved" if winner == event else "timeout"


def child(ctx, n):
    if n < 0:
        raise ValueError(f"negative input {n}")
    return (yield ctx.call_activity(square, input=n))


def parent(ctx, numbers):
    total = 0
    for n in numbers:
        total += yield ctx.call_sub_orchestrator(child, input=n)
    try:
        yield ctx.call_sub_orchestrator(child, input=-1)
        failure = None
    except task.TaskFailedError as err:
        failure = err.details.message
    return {"total": total, "failure": failure}


def counter(ctx, n):
    if n < 3:
        yield ctx.create_timer(timedelta(milliseconds=10))
        ctx.continue_as_new(n + 1)
        return None
    return n


def waits_forever(ctx, _):
    ctx.set_custom_status("waiting")
    value = yield ctx.wait_for_external_event("go")
    return value


def retried(ctx, key):
    policy = task.RetryPolicy(first_retry_interval=timedelta(milliseconds=100), max_number_of_attempts=3)
    attempts = yield ctx.call_activity(flaky, input=key, retry_policy=policy)
    return attempts


def fails(ctx, _):
    return (yield ctx.call_activity(always_fails, input=None))


def sender(ctx, target):
    ctx.send_event(target, "go", data="from sender")
    return "sent"


def waits_on_child(ctx, _):
    return (yield ctx.call_sub_orchestrator(waits_forever, instance_id=f"{ctx.instance_id}-child"))


def status_of(state):
    return None if state is None else state.runtime_status.name


def wait_until(c, instance_id, predicate, what):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        state = c.get_orchestration_state(instance_id)
        if state is not None and predicate(state):
            return state
        time.sleep(0.02)
    raise TimeoutError(f"{instance_id} never became {what}")


def complete(c, instance_id):
    state = c.wait_for_orchestration_completion(instance_id, timeout=WAIT)
    return {
        "status": status_of(state),
        "output": state.get_output(),
        "failure": state.failure_details.message if state.failure_details else None,
    }


def run(c):
    if SCENARIO == "sequence":
        iid = c.schedule_new_orchestration(sequence, input=["a", "b", "c"])
        result = complete(c, iid)
        state = c.get_orchestration_state(iid)
        result["custom_status"] = state.get_custom_status()
        return result
    if SCENARIO == "fan_out":
        return complete(c, c.schedule_new_orchestration(fan_out, input=20))
    if SCENARIO == "timer":
        iid = c.schedule_new_orchestration(timer, input=1.0)
        result = complete(c, iid)
        state = c.get_orchestration_state(iid)
        result["elapsed"] = (state.last_updated_at - state.created_at).total_seconds()
        return result
    if SCENARIO == "events":
        early = c.schedule_new_orchestration(approval)
        c.raise_orchestration_event(early, "APPROVAL", data="early")
        late = c.schedule_new_orchestration(approval)
        wait_until(c, late, lambda s: s.get_custom_status() == "waiting", "waiting")
        c.raise_orchestration_event(late, "approval", data="late")
        try:
            c.raise_orchestration_event("no-such-instance", "approval", data=1)
            unknown = "OK"
        except grpc.RpcError as err:
            unknown = err.code().name
        return {"early": complete(c, early), "late": complete(c, late), "unknown": unknown}
    if SCENARIO == "when_any":
        timed_out = c.schedule_new_orchestration(approval_or_timeout, input=1)
        approved = c.schedule_new_orchestration(approval_or_timeout, input=30)
        c.raise_orchestration_event(approved, "approval", data=True)
        return {"timed_out": complete(c, timed_out), "approved": complete(c, approved)}
    if SCENARIO == "sub_orchestrations":
        iid = c.schedule_new_orchestration(parent, input=[1, 2, 3])
        result = complete(c, iid)
        children = c.get_all_orchestration_states(client.OrchestrationQuery(instance_id_prefix=iid + ":"))
        result["children"] = sorted(status_of(s) for s in children)
        return result
    if SCENARIO == "continue_as_new":
        return complete(c, c.schedule_new_orchestration(counter, input=0))
    if SCENARIO == "terminate":
        running = c.schedule_new_orchestration(waits_forever)
        wait_until(c, running, lambda s: s.get_custom_status() == "waiting", "waiting")
        c.terminate_orchestration(running, output="stopped")
        later = datetime.now(timezone.utc) + timedelta(hours=1)
        scheduled = c.schedule_new_orchestration(waits_forever, start_at=later)
        c.terminate_orchestration(scheduled, output="never started")
        c.terminate_orchestration("no-such-instance")
        return {"running": complete(c, running), "scheduled": complete(c, scheduled)}
    if SCENARIO == "suspend_resume":
        iid = c.schedule_new_orchestration(waits_forever)
        wait_until(c, iid, lambda s: s.get_custom_status() == "waiting", "waiting")
        c.suspend_orchestration(iid)
        suspended = status_of(wait_until(c, iid, lambda s: s.runtime_status.name == "SUSPENDED", "suspended"))
        c.raise_orchestration_event(iid, "go", data="resumed value")
        try:
            c.wait_for_orchestration_completion(iid, timeout=1)
            while_suspended = "COMPLETED"
        except TimeoutError:
            while_suspended = "still waiting"
        except grpc.RpcError as err:
            while_suspended = "still waiting" if err.code() == grpc.StatusCode.DEADLINE_EXCEEDED else err.code().name
        c.resume_orchestration(iid)
        return {"suspended": suspended, "while_suspended": while_suspended, "final": complete(c, iid)}
    if SCENARIO == "purge":
        done = c.schedule_new_orchestration(sequence, input=["x"])
        complete(c, done)
        running = c.schedule_new_orchestration(waits_forever)
        wait_until(c, running, lambda s: s.get_custom_status() == "waiting", "waiting")
        by_id = c.purge_orchestration(done).deleted_instance_count
        gone = c.get_orchestration_state(done) is None
        not_terminal = c.purge_orchestration(running).deleted_instance_count
        others = [c.schedule_new_orchestration(sequence, input=["y"]) for _ in range(3)]
        for iid in others:
            complete(c, iid)
        by_filter = c.purge_orchestrations_by(runtime_status=[client.OrchestrationStatus.COMPLETED]).deleted_instance_count
        remaining = sorted(s.instance_id for s in c.get_all_orchestration_states())
        return {"by_id": by_id, "gone": gone, "not_terminal": not_terminal, "by_filter": by_filter,
                "remaining_is_running": remaining == [running]}
    if SCENARIO == "retries":
        ok = complete(c, c.schedule_new_orchestration(retried, input="k"))
        failed = complete(c, c.schedule_new_orchestration(fails))
        return {"retried": ok, "failed": failed}
    if SCENARIO == "queries":
        ids = [c.schedule_new_orchestration(sequence, input=["q"], instance_id=f"query-{i}") for i in range(5)]
        for iid in ids:
            complete(c, iid)
        c.schedule_new_orchestration(waits_forever, instance_id="other-1")
        wait_until(c, "other-1", lambda s: s.get_custom_status() == "waiting", "waiting")
        by_prefix = sorted(s.instance_id for s in c.get_all_orchestration_states(
            client.OrchestrationQuery(instance_id_prefix="query-", max_instance_count=2)))
        running = [s.instance_id for s in c.get_all_orchestration_states(
            client.OrchestrationQuery(runtime_status=[client.OrchestrationStatus.RUNNING]))]
        future = datetime.now(timezone.utc) + timedelta(hours=1)
        none_in_future = c.get_all_orchestration_states(client.OrchestrationQuery(created_time_from=future))
        listed, token = [], None
        while True:
            page = c.list_instance_ids(page_size=2, continuation_token=token)
            listed += page.items
            token = page.continuation_token
            if not token:
                break
        try:
            c.schedule_new_orchestration(sequence, input=["q"], instance_id="query-0")
            duplicate = "OK"
        except grpc.RpcError as err:
            duplicate = err.code().name
        policy = pb.OrchestrationIdReusePolicy(replaceableStatus=[pb.ORCHESTRATION_STATUS_COMPLETED])
        c.schedule_new_orchestration(sequence, input=["again"], instance_id="query-0", reuse_id_policy=policy)
        reused = complete(c, "query-0")
        return {"by_prefix": by_prefix, "running": running, "none_in_future": len(none_in_future),
                "listed": sorted(listed), "duplicate": duplicate, "reused": reused}
    if SCENARIO == "scheduled_start":
        start_at = datetime.now(timezone.utc) + timedelta(seconds=1.5)
        iid = c.schedule_new_orchestration(sequence, input=["later"], start_at=start_at)
        pending = status_of(c.get_orchestration_state(iid))
        result = complete(c, iid)
        history = c.get_orchestration_history(iid)
        first_turn = history[0].timestamp
        result["pending_before"] = pending
        result["started_after_schedule"] = first_turn >= start_at
        return result
    if SCENARIO == "send_event_and_recursive":
        receiver = c.schedule_new_orchestration(waits_forever)
        wait_until(c, receiver, lambda s: s.get_custom_status() == "waiting", "waiting")
        sent = complete(c, c.schedule_new_orchestration(sender, input=receiver))
        received = complete(c, receiver)
        family = c.schedule_new_orchestration(waits_on_child, instance_id="family")
        wait_until(c, "family-child", lambda s: s.get_custom_status() == "waiting", "waiting")
        c.terminate_orchestration(family, output="all of them", recursive=True)
        parent_state = complete(c, family)
        child_state = complete(c, "family-child")
        purged = c.purge_orchestration(family, recursive=True).deleted_instance_count
        return {"sent": sent, "received": received, "parent": parent_state, "child": child_state,
                "purged": purged, "child_gone": c.get_orchestration_state("family-child") is None}
    raise SystemExit(f"unknown scenario {SCENARIO}")


def main():
    w = worker.TaskHubGrpcWorker(host_address=ADDRESS)
    for orchestrator in [sequence, fan_out, timer, approval, approval_or_timeout, child, parent, counter,
                         waits_forever, retried, fails, sender, waits_on_child]:
        w.add_orchestrator(orchestrator)
    for activity in [hello, square, flaky, always_fails]:
        w.add_activity(activity)
    w.start()
    c = client.TaskHubGrpcClient(host_address=ADDRESS)
    try:
        result = run(c)
    finally:
        w.stop()
    print(json.dumps(result))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
