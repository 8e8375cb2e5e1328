"""Drives the local interpreter with a real third-party client, LangChain's
SessionsPythonREPLTool, and prints what it saw as one JSON object.

Usage: python sessions_langchain.py POOL_ENDPOINT
"""

import json
import sys
import time

import requests
from langchain_azure_dynamic_sessions import SessionsPythonREPLTool


def fake_token():
    return "fake-token-for-the-local-interpreter"


def tool():
    return SessionsPythonREPLTool(
        pool_management_endpoint=sys.argv[1], access_token_provider=fake_token
    )


def session_exists(endpoint, session_id):
    response = requests.get(
        endpoint.rstrip("/") + "/session",
        params={"identifier": session_id, "api-version": "2025-10-02-preview"},
        timeout=10,
    )
    return response.status_code == 200


def main():
    endpoint = sys.argv[1]
    first, second = tool(), tool()
    seen = {}

    seen["compute"] = json.loads(first.invoke("x = 6 * 7\nprint('from langchain')\nx"))
    seen["state"] = json.loads(first.invoke("x + 1"))
    seen["failure"] = first.execute("1 / 0")
    seen["other_session"] = json.loads(second.invoke("x"))

    # Deleting runs in a background thread: poll the pool until the session is gone.
    old_id = first.session_id
    seen["existed_before_delete"] = session_exists(endpoint, old_id)
    first.delete_session()
    deadline = time.monotonic() + 10
    while session_exists(endpoint, old_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    seen["exists_after_delete"] = session_exists(endpoint, old_id)
    seen["after_delete"] = json.loads(first.invoke("'x' in globals()"))

    print(json.dumps(seen))


if __name__ == "__main__":
    main()
