"""The status page's program (roles/mcp_stack/files/mcp-dashboard.py): its probes against local servers, the
backup age, the Ollama models, and no key in what the browser gets. The page itself is checked in Chromium by
tests/integration/dashboard_check.py (Molecule stack scenario)."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

PATH = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "mcp_stack", "files",
                                     "mcp-dashboard.py"))


@pytest.fixture(name="dashboard")
def fixture_dashboard(monkeypatch, tmp_path):
    monkeypatch.setenv("MCP_DASHBOARD_SERVERS_DIR", str(tmp_path / "servers.d"))
    monkeypatch.setenv("MCP_DASHBOARD_PROBE_TIMEOUT", "1")
    spec = importlib.util.spec_from_file_location("mcp_dashboard", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "servers.d").mkdir()
    return module


class Handler(BaseHTTPRequestHandler):
    routes = {}
    seen = []

    def do_GET(self):
        self.seen.append(dict(self.headers))
        status, body = self.routes.get(self.path, (404, {}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET

    def log_message(self, *_args):
        pass


@pytest.fixture(name="server")
def fixture_server():
    handler = type("Routes", (Handler,), {"routes": {}, "seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield handler, "http://127.0.0.1:%d" % httpd.server_address[1]
    httpd.shutdown()


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answering(reply):
    """A TCP server that answers every connection's first bytes with ``reply``."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve():
        while True:
            try:
                connection = listener.accept()[0]
            except OSError:
                return
            with connection:
                connection.recv(64)
                connection.sendall(reply)
    threading.Thread(target=serve, daemon=True).start()
    return listener


def service(probe, **more):
    return dict({"name": "n8n", "stack": "main", "description": "Workflow automation", "local_url": "http://127.0.0.1:5678",
                 "elsewhere": None, "probe": probe}, **more)


def test_an_http_probe_is_up_below_400_with_its_status_and_latency_and_down_otherwise(dashboard, server):
    handler, url = server
    handler.routes.update({"/healthz": (200, {"status": "ok"}), "/broken": (503, {})})
    up = dashboard.probe_service(service({"protocol": "http", "url": url + "/healthz"}))
    assert (up["status"], up["http_status"], up["detail"]) == ("up", 200, "GET /healthz")
    assert isinstance(up["latency_ms"], int) and up["local_url"] == "http://127.0.0.1:5678"
    down = dashboard.probe_service(service({"protocol": "http", "url": url + "/broken"}))
    assert (down["status"], down["http_status"], down["detail"], down["latency_ms"]) == ("down", 503, "HTTP 503", None)


def test_a_stopped_service_is_down_at_once_whether_its_name_is_gone_or_its_port_refuses(dashboard):
    gone = dashboard.probe_service(service({"protocol": "http", "url": "http://homelab-stopped.invalid:5678/healthz"}))
    assert (gone["status"], gone["detail"]) == ("down", "not running (its name does not resolve)")
    refused = dashboard.probe_service(service({"protocol": "http", "url": "http://127.0.0.1:%d/healthz" % free_port()}))
    assert (refused["status"], refused["detail"]) == ("down", "connection refused")


@pytest.mark.parametrize("protocol, reply, status, detail", [
    ("postgres", b"N", "up", "PostgreSQL answers (TLS off)"),
    ("postgres", b"S", "up", "PostgreSQL answers (TLS offered)"),
    ("postgres", b"HTTP/1.1 400", "down", "not a PostgreSQL answer"),
    ("redis", b"-NOAUTH Authentication required.\r\n", "up", "Redis answers PING"),
    ("redis", b"+PONG\r\n", "up", "Redis answers PING"),
    ("redis", b"-LOADING Redis is loading the dataset in memory\r\n", "down", "-LOADING Redis is loading the dataset in memory"),
])
def test_postgres_and_redis_are_asked_without_a_password(dashboard, protocol, reply, status, detail):
    listener = answering(reply)
    try:
        result = dashboard.probe_service(service({"protocol": protocol, "host": "127.0.0.1", "port": listener.getsockname()[1]}))
    finally:
        listener.close()
    assert (result["status"], result["detail"]) == (status, detail)


def test_services_without_a_probe_or_elsewhere_are_grey_with_a_reason(dashboard):
    assert dashboard.probe_service(service(None, name="cloudflared"))["status"] == "unprobed"
    elsewhere = dashboard.probe_service(service(None, name="ollama", elsewhere="gpu_nodes", local_url=None))
    assert (elsewhere["status"], elsewhere["detail"]) == ("elsewhere", "runs on the gpu_nodes hosts, not on this one")


def test_ollamas_installed_and_loaded_models_keep_only_names_sizes_and_times(dashboard, server):
    handler, url = server
    handler.routes.update({
        "/api/tags": (200, {"models": [{"name": "qwen3:8b", "size": 5_200_000_000, "modified_at": "2026-12-01T10:00:00Z",
                                        "digest": "d" * 64, "details": {"family": "qwen3"}},
                                       {"name": "llama3.2:1b", "size": 1_300_000_000, "modified_at": "2026-12-02T10:00:00Z"}]}),
        "/api/ps": (200, {"models": [{"name": "qwen3:8b", "size": 6_000_000_000, "size_vram": 6_000_000_000,
                                      "expires_at": "2026-12-03T10:05:00Z", "digest": "d" * 64}]}),
    })
    models = dashboard.ollama_models({"url": url})
    assert models["status"] == "up"
    assert [model["name"] for model in models["installed"]] == ["llama3.2:1b", "qwen3:8b"]
    assert set(models["installed"][0]) == {"name", "size", "modified_at"}
    assert models["loaded"] == [{"name": "qwen3:8b", "size": 6_000_000_000, "size_vram": 6_000_000_000,
                                 "expires_at": "2026-12-03T10:05:00Z"}]
    down = dashboard.ollama_models({"url": "http://127.0.0.1:%d" % free_port()})
    assert down["status"] == "down" and "connection refused" in down["detail"]
    assert dashboard.ollama_models(None) is None


def test_the_backup_age_comes_from_the_status_file_and_turns_stale_after_48_hours(dashboard, tmp_path):
    moment = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
    path = tmp_path / "backup.json"
    assert dashboard.backup_status(str(path), moment)["state"] == "none"
    path.write_text(json.dumps({"name": "20261203T033000Z", "verified_at": "2026-12-03T03:31:40+00:00", "whole": True,
                                "size": 123, "created": "2026-12-03T03:30:00+00:00"}))
    fresh = dashboard.backup_status(str(path), moment)
    assert (fresh["state"], fresh["age_seconds"], fresh["name"]) == ("ok", 8 * 3600 + 28 * 60 + 20, "20261203T033000Z")
    assert fresh["text"].startswith("8 h 28 min ago (20261203T033000Z, verified 2026-12-03T03:31:40Z)")
    stale = dashboard.backup_status(str(path), moment + timedelta(days=3))
    assert stale["state"] == "stale" and stale["text"].startswith("3 days 8 h ago") and "older than 48 h" in stale["text"]
    path.write_text("not json")
    assert dashboard.backup_status(str(path), moment)["state"] == "none"
    path.write_text(json.dumps({"verified_at": "yesterday"}))
    assert dashboard.backup_status(str(path), moment)["state"] == "none"


def test_one_round_probes_everything_and_the_status_holds_no_key(dashboard, server, tmp_path):
    handler, url = server
    key = "k" * 48
    handler.routes.update({"/mcp": (200, {"jsonrpc": "2.0", "id": 1, "result": {}}), "/healthz": (200, {}),
                           "/api/version": (200, {"version": "0.32.15"}), "/api/tags": (200, {"models": []}),
                           "/api/ps": (200, {"models": []})})
    (tmp_path / "servers.d" / "x-mcp.json").write_text(json.dumps(
        {"name": "x-mcp", "url": url + "/mcp", "endpoint": "http://127.0.0.1:3302/mcp"}))
    view = {"main": {"present": True, "ollama": {"url": url},
                     "gpu": {"label": "CPU-only", "mode": "off", "reason": "homelab_gpu_mode is off"},
                     "services": [service({"protocol": "http", "url": url + "/api/version"}, name="ollama")]},
            "mcp": [{"name": "mcp-gateway", "stack": "mcp", "probe": {"protocol": "http", "url": url + "/healthz"}}],
            "backup_status": str(tmp_path / "none.json")}
    with ThreadPoolExecutor(4) as pool:
        status = dashboard.probe_all(pool, key, view)
    assert [(row["name"], row["status"]) for row in status["servers"]] == \
        [("mcp-gateway", "up"), ("dashboard", "up"), ("x-mcp", "up")]
    assert [(row["name"], row["status"]) for row in status["services"]] == [("ollama", "up")]
    assert status["ollama"]["status"] == "up" and status["gpu"]["label"] == "CPU-only"
    assert status["backup"]["state"] == "none"
    # The key went to the MCP server through the gateway, and nowhere into what the browser gets.
    assert any(headers.get("Authorization") == "Bearer " + key for headers in handler.seen)
    assert key not in json.dumps(status) and key not in dashboard.PAGE


def test_the_page_builds_every_row_from_text_never_from_markup(dashboard):
    script = dashboard.PAGE.split("<script>")[1]
    assert "innerHTML" not in script and "textContent" in script
    for anchor in ('id="services"', 'id="servers"', 'id="gpu"', 'id="backup"', 'id="models-loaded"', 'id="models-installed"'):
        assert anchor in dashboard.PAGE


class SessionServer(BaseHTTPRequestHandler):
    """An MCP endpoint that opens a session at each initialize (as n8n-mcp and the Python SDK's servers do) and
    counts the sessions still open; ``delete_status`` is what it answers a DELETE with."""
    open_sessions = set()
    requests = []
    answer_as = "sse"
    delete_status = 204

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        session = "session-%d" % len(self.requests)
        self.requests.append(("POST", {name.lower(): value for name, value in self.headers.items()}))
        self.open_sessions.add(session)
        result = {"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": "2025-03-26", "capabilities": {}}}
        body = ("event: message\ndata: %s\n\n" % json.dumps(result) if self.answer_as == "sse" else json.dumps(result)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream" if self.answer_as == "sse" else "application/json")
        self.send_header("Mcp-Session-Id", session)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_DELETE(self):
        self.requests.append(("DELETE", {name.lower(): value for name, value in self.headers.items()}))
        if self.delete_status < 400:
            self.open_sessions.discard(self.headers.get("Mcp-Session-Id"))
        self.send_response(self.delete_status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args):
        pass


@pytest.mark.parametrize("answer_as", ["sse", "json"])
def test_each_probe_ends_the_session_its_initialize_opened(dashboard, answer_as):
    handler = type("Sessions", (SessionServer,), {"open_sessions": set(), "requests": [], "answer_as": answer_as})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    key = "k" * 48
    try:
        server = {"name": "n8n-mcp", "url": "http://127.0.0.1:%d/mcp" % httpd.server_address[1]}
        for _round in range(5):
            assert dashboard.probe_server(server, key)["status"] == "up"
    finally:
        httpd.shutdown()
    # Five probes, five sessions opened and five ended: none left for the server's session limit.
    assert [method for method, _headers in handler.requests] == ["POST", "DELETE"] * 5
    assert handler.open_sessions == set()
    for number, (_method, headers) in enumerate(handler.requests[1::2]):
        assert headers["mcp-session-id"] == "session-%d" % (2 * number)
        assert headers["authorization"] == "Bearer " + key
        # The version the server answered with, as the transport asks of every request after initialize.
        assert headers["mcp-protocol-version"] == "2025-03-26"


def test_a_server_refusing_the_delete_is_still_up(dashboard):
    handler = type("Sessions", (SessionServer,), {"open_sessions": set(), "requests": [], "delete_status": 405})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        row = dashboard.probe_server({"name": "x-mcp", "url": "http://127.0.0.1:%d/mcp" % httpd.server_address[1]}, "k" * 48)
    finally:
        httpd.shutdown()
    assert row["status"] == "up" and [method for method, _headers in handler.requests] == ["POST", "DELETE"]


def test_the_negotiated_version_is_read_from_json_or_events_and_nothing_else(dashboard):
    answer = {"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": "2025-06-18"}}
    assert dashboard.negotiated_version(json.dumps(answer).encode(), "application/json") == "2025-06-18"
    events = ("event: message\ndata: %s\n\n" % json.dumps(answer)).encode()
    assert dashboard.negotiated_version(events, "text/event-stream; charset=utf-8") == "2025-06-18"
    assert dashboard.negotiated_version(b"not json", "application/json") is None
    hostile = {"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": "2025\r\nX-Injected: 1"}}
    assert dashboard.negotiated_version(json.dumps(hostile).encode(), "application/json") is None
