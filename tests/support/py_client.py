"""A client of the official Python SDK, for interop tests in which our worker runs the instance.

Usage: py_client.py ADDRESS ORCHESTRATOR INPUT_JSON EVENT_NAME EVENT_JSON. Schedules ORCHESTRATOR
by name, waits until it publishes a custom status, raises EVENT_NAME with EVENT_JSON, waits for
completion, and prints one JSON object: the instance id, the first custom status seen, and the
final status, output and custom status.
"""

import json
import sys
import time

from durabletask import client

TIMEOUT_SECONDS = 30


def wait_for_custom_status(c: client.TaskHubGrpcClient, instance_id: str):
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        state = c.get_orchestration_state(instance_id, fetch_payloads=True)
        if state is not None and state.serialized_custom_status:
            return json.loads(state.serialized_custom_status)
        time.sleep(0.02)
    raise TimeoutError(f"instance {instance_id} published no custom status")


def main() -> int:
    address, orchestrator, input_json, event_name, event_json = sys.argv[1:6]
    c = client.TaskHubGrpcClient(host_address=address)
    instance_id = c.schedule_new_orchestration(orchestrator, input=json.loads(input_json))
    c.wait_for_orchestration_start(instance_id, timeout=TIMEOUT_SECONDS)
    first_status = wait_for_custom_status(c, instance_id)

    c.raise_orchestration_event(instance_id, event_name, data=json.loads(event_json))
    state = c.wait_for_orchestration_completion(instance_id, timeout=TIMEOUT_SECONDS)
    print(json.dumps({
        "instance_id": instance_id,
        "first_custom_status": first_status,
        "status": state.runtime_status.name,
        "output": json.loads(state.serialized_output) if state.serialized_output else None,
        "custom_status": json.loads(state.serialized_custom_status)
        if state.serialized_custom_status else None,
        "failure": str(state.failure_details) if state.failure_details else None,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
