"""STAND-IN for tests: shared plumbing for the main-stack stand-in images.

Not upstream code. Every stand-in server in tests/stand-ins/stack imports this
module for the same behaviour: a threaded HTTP server per listening address
that logs one line per request to stdout, JSON and text replies, a small HTTP
client for the command-line stand-ins, and a clean exit (status 0) on SIGTERM
or SIGINT, so `docker stop` never has to fall back to SIGKILL.
"""

import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def log(service, message):
    """One timestamped line on stdout, flushed at once (docker logs)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{stamp} {service}: {message}", flush=True)


def fail(service, message, status=1):
    """Print one error line on stderr and exit, as a crashing server would."""
    print(f"{service}: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def exit_on_signals(service):
    """Exit 0 on SIGTERM/SIGINT during start-up (as PID 1 the default is to ignore them)."""

    def on_signal(signum, _frame):
        log(service, f"received {signal.Signals(signum).name} while starting, exiting")
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


def require_env(service, names):
    """Return {name: value} for the names, or exit 1 naming the missing ones."""
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        fail(service, "missing required environment variable(s): " + ", ".join(missing))
    return {name: os.environ[name] for name in names}


def split_hostport(value, default_host, default_port):
    """'host:port', ':port', 'host' or 'http://host:port/' -> (host, port)."""
    value = (value or "").strip()
    if "://" in value:
        value = value.split("://", 1)[1]
    value = value.split("/", 1)[0]
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, ""
    host = host.strip("[]") or default_host
    return host, int(port) if port else default_port


def tcp_reachable(host, port, timeout=2.0):
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_call(method, url, payload=None, timeout=5.0):
    """Send one request; return (status, body text). Raises OSError when unreachable."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")
    except urllib.error.URLError as error:
        reason = error.reason
        raise reason if isinstance(reason, OSError) else OSError(str(reason)) from error


class BadRequest(Exception):
    """Raised by a route to answer 400 with this message."""


class Handler(BaseHTTPRequestHandler):
    """Dispatch on (METHOD, path) through the class attribute `routes`.

    A route takes the handler and returns (status, body) or
    (status, body, headers); a dict or list body is sent as JSON, a str as
    text. A route that writes its own response (streaming) returns None.
    HEAD is answered by the GET route without a body.
    """

    routes = {}
    service = "stand-in"
    server_version = "stand-in"

    def _dispatch(self):
        method = "GET" if self.command == "HEAD" else self.command
        path = self.path.split("?", 1)[0]
        route = self.routes.get((method, path))
        if route is None:
            known = any(route_path == path for _method, route_path in self.routes)
            self.reply(405 if known else 404, {"error": "405 method not allowed" if known else "404 page not found"})
            return
        try:
            result = route(self)
        except BadRequest as error:
            result = (400, {"error": str(error)})
        if result is not None:
            self.reply(*result)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    def json_body(self):
        """The request body as a JSON object; BadRequest when it is not one."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError as error:
            raise BadRequest(f"invalid JSON body: {error}") from error
        if not isinstance(body, dict):
            raise BadRequest("the JSON body must be an object")
        return body

    def reply(self, status, body, headers=None):
        if isinstance(body, (dict, list)):
            data, content_type = json.dumps(body).encode(), "application/json; charset=utf-8"
        else:
            data, content_type = str(body).encode(), "text/plain; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def start_stream(self, status, content_type):
        """Headers for a streamed body; the connection closes when it ends (HTTP/1.0)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.end_headers()

    def log_request(self, code="-", size="-"):
        log(self.service, f'{self.client_address[0]} "{self.command} {self.path}" {code}')

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        """Silenced: log_request already wrote the one line for this request."""


def serve(service, listeners):
    """Serve [(host, port, routes), ...] until SIGTERM or SIGINT, then return."""
    servers = []
    for host, port, routes in listeners:
        handler = type("RouteHandler", (Handler,), {"routes": routes, "service": service})
        try:
            server = ThreadingHTTPServer((host, port), handler)
        except OSError as error:
            fail(service, f"cannot listen on {host}:{port}: {error.strerror or error}")
        server.daemon_threads = True
        servers.append(server)
        log(service, f"listening on http://{host}:{port}")

    stop = threading.Event()

    def on_signal(signum, _frame):
        log(service, f"received {signal.Signals(signum).name}, shutting down")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    while not stop.wait(0.5):
        pass
    for server in servers:
        server.shutdown()
        server.server_close()
    log(service, "stopped")
