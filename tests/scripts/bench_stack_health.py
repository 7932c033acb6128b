"""Bench: stack_health's wait on 7 services is bounded by the slowest one, not the sum.

Seven real HTTP servers on loopback answer 503 until their own delay has passed, then
200 (the stand-in for services that become healthy at different times). The module's
probe loop (plugins/module_utils/_compose.watch) waits for all of them. Prints one
table row; a figure for tuning, not a timed test.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "collections"))
from ansible_collections.homelab.core.plugins.module_utils import _compose  # noqa: E402

DELAYS = [0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4]


def serve(ready_at):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if time.monotonic() >= ready_at else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    started = time.monotonic()
    servers = {"svc%d" % index: serve(started + delay) for index, delay in enumerate(DELAYS)}
    checks = {"bench": {name: {"required": True, "probe": {
        "type": "http", "target": "http://127.0.0.1:%d/" % server.server_address[1], "status_code": [200],
        "body_contains": None, "validate_certs": True}} for name, server in servers.items()}}
    containers = [{"name": name, "service": name, "state": "running", "health": "", "exit_code": 0} for name in servers]
    entries, elapsed_ms = _compose.watch(lambda: {"bench": containers}, checks, deadline=30, interval=0.1, timeout=2)
    for server in servers.values():
        server.shutdown()
    assert all(entry["healthy"] for entry in entries), entries
    print("| %-44s | %8.1f | %7s |" % ("stack_health, 7 services: the wait", elapsed_ms / 1000.0, "-"))
    print("| %-44s | %8.1f | %7s |" % ("stack_health: its slowest probe (sum %.1f s)" % sum(DELAYS), max(DELAYS), "-"))


if __name__ == "__main__":
    main()
