"""Runs the durabletask in-memory backend as a gRPC server on 127.0.0.1 for the interop tests.

Usage: inmemory_backend.py [PORT]. PORT 0 (the default) lets the OS pick one. Prints
`LISTENING <port>` on stdout once the server accepts calls, and stops cleanly on SIGTERM or SIGINT.
The backend's own start() binds every interface, so this script builds the server itself.
"""

import signal
import sys
import threading
from concurrent import futures

import grpc
from durabletask.internal import orchestrator_service_pb2_grpc as stubs
from durabletask.testing import InMemoryOrchestrationBackend


def main() -> int:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    backend = InMemoryOrchestrationBackend()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
    stubs.add_TaskHubSidecarServiceServicer_to_server(backend, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    if bound == 0:
        print(f"cannot bind 127.0.0.1:{port}", file=sys.stderr, flush=True)
        return 1
    server.start()
    print(f"LISTENING {bound}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()

    # What backend.stop() does, without its server: release the GetWorkItems loops.
    backend._shutdown_event.set()
    backend._work_available.set()
    server.stop(1).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
