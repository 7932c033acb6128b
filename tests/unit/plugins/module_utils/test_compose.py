# Copyright (c) 2025, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import itertools
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.homelab.core.plugins.module_utils import _compose
from ansible_collections.homelab.core.plugins.module_utils._compose import (
    assess,
    backoff,
    evaluate,
    merge_logs,
    parse_hostport,
    parse_ps,
    parse_restart_counts,
    run_probe,
    watch,
)


def container(service, state="running", health="", exit_code=0):
    return {"name": "homelab-%s-1" % service, "service": service, "state": state, "health": health,
            "exit_code": exit_code}


def http_probe(url, status_code=(200,), body_contains=None):
    return {"type": "http", "target": url, "status_code": list(status_code), "body_contains": body_contains,
            "validate_certs": True}


def probe_until(probe, seconds, interval=0.05, timeout=1.0):
    """Run ``probe`` with a deadline ``seconds`` from now; return ``(result, elapsed seconds)``."""
    started = time.monotonic()
    result = run_probe(probe, started + seconds, interval, timeout, threading.Event(), threading.Event())
    return result, time.monotonic() - started


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client that timed out leaves a broken pipe behind: expected, not worth a traceback."""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        status, body, delay = self.server.respond()
        time.sleep(delay)
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """Start loopback HTTP servers; ``respond()`` returns ``(status, body bytes, delay seconds)`` per request."""
    servers = []

    def start(respond):
        server = _Server(("127.0.0.1", 0), _Handler)
        server.respond = respond
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return "http://127.0.0.1:%d/health" % server.server_address[1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port():
    """A loopback port that refuses connections: bound, so nobody else takes it, but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


class FakeClock:
    """Replaces ``_compose.monotonic`` and ``_compose.wait``: waiting only moves the clock forward.

    Only the test's own thread (the one running ``watch()``) moves the clock. A wait in any other thread, such
    as a probe of ``watch()``, returns only once its event is set: were probe threads to move the clock too,
    they would race through their backoff to the deadline before the test thread reads the states, at a time
    that depends on thread scheduling. So a probe makes one attempt, then waits until ``watch()`` stops it.
    """

    def __init__(self):
        self.now = 0.0
        self.waits = []
        self.owner = threading.current_thread()

    def monotonic(self):
        return self.now

    def wait(self, event, seconds):
        if threading.current_thread() is not self.owner:
            # A safety net against a hang, not a pause: watch() sets the event as soon as it is done.
            assert event.wait(30), "wait() in a probe thread was never released"
            return True
        self.waits.append(seconds)
        self.now += seconds
        return event.is_set()


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(_compose, "monotonic", fake.monotonic)
    monkeypatch.setattr(_compose, "wait", fake.wait)
    return fake


# Parsers


def test_parse_ps_ndjson_of_compose_2_26(fixture_text):
    containers = parse_ps(fixture_text("compose", "ps-2.26.ndjson"))

    # homelab-ollama-run-3f2a9c1d4b5e, left by `docker compose run`, is not part of the stack.
    assert containers == [
        {"name": "homelab-cloudflared-1", "service": "cloudflared", "state": "running", "health": "", "exit_code": 0},
        {"name": "homelab-mcp-fetch-1", "service": "mcp-fetch", "state": "exited", "health": "", "exit_code": 1},
        {"name": "homelab-n8n-1", "service": "n8n", "state": "running", "health": "starting", "exit_code": 0},
        {"name": "homelab-ollama-1", "service": "ollama", "state": "running", "health": "healthy", "exit_code": 0},
        {"name": "homelab-open-webui-1", "service": "open-webui", "state": "running", "health": "unhealthy",
         "exit_code": 0},
    ]


def test_parse_ps_array_of_compose_2_20(fixture_text):
    containers = parse_ps(fixture_text("compose", "ps-2.20.json"))

    assert containers == [
        {"name": "homelab-n8n-1", "service": "n8n", "state": "exited", "health": "", "exit_code": 137},
        {"name": "homelab-ollama-1", "service": "ollama", "state": "running", "health": "healthy", "exit_code": 0},
        {"name": "homelab-open-webui-1", "service": "open-webui", "state": "running", "health": "", "exit_code": 0},
    ]


@pytest.mark.parametrize("text", ["", "\n", "[]\n"], ids=["empty", "blank-line", "empty-array"])
def test_parse_ps_without_containers(text):
    assert parse_ps(text) == []


def test_parse_ps_empty_fixture(fixture_text):
    assert parse_ps(fixture_text("compose", "ps-empty.ndjson")) == []


def test_parse_ps_rejects_text_that_is_not_json():
    with pytest.raises(ValueError):
        parse_ps("no configuration file provided: not found\n")


def test_parse_restart_counts(fixture_text):
    assert parse_restart_counts(fixture_text("compose", "inspect-restart-count.txt")) == {
        "homelab-cloudflared-1": 0,
        "homelab-mcp-fetch-1": 5,
        "homelab-n8n-1": 0,
        "homelab-ollama-1": 0,
        "homelab-open-webui-1": 2,
    }


def test_merge_logs_interleaves_streams_by_time(fixture_text):
    lines = merge_logs(fixture_text("compose", "logs-open-webui.stdout"),
                       fixture_text("compose", "logs-open-webui.stderr"))

    assert lines == [
        "Loading WEBUI_SECRET_KEY from file, not provided as an environment variable.",
        "Loading WEBUI_SECRET_KEY from .webui_secret_key",
        "INFO:     Started server process [1]",
        "INFO:     Waiting for application startup.",
        "INFO:     Application startup complete.",
        "INFO:     Uvicorn running on http://0.0.0.0:8080 (Press CTRL+C to quit)",
        "INFO:apps.ollama.main:get_all_models()",
        "ERROR:apps.ollama.main:Connection error: Cannot connect to host ollama:11434 ssl:default "
        "[Name or service not known]",
        'INFO:     127.0.0.1:52314 - "GET /health HTTP/1.1" 500 Internal Server Error',
    ]


def test_merge_logs_keeps_empty_and_carriage_return_lines():
    stdout = "2024-04-12T10:00:00.000000001Z \n2024-04-12T10:00:00.000000003Z pulling 10%\rpulling 20%\n"
    stderr = "2024-04-12T10:00:00.000000002Z warning\n"

    assert merge_logs(stdout, stderr) == ["", "warning", "pulling 10%\rpulling 20%"]


@pytest.mark.parametrize("value, expected", [
    ("127.0.0.1:11434", ("127.0.0.1", 11434)),
    ("ollama.lan:80", ("ollama.lan", 80)),
    ("[::1]:5432", ("::1", 5432)),
])
def test_parse_hostport(value, expected):
    assert parse_hostport(value) == expected


@pytest.mark.parametrize("value", ["127.0.0.1", ":80", "host:", "host:http", "host:0", "host:65536"])
def test_parse_hostport_rejects(value):
    with pytest.raises(ValueError, match="expected host:port"):
        parse_hostport(value)


def test_backoff_doubles_up_to_ten_seconds():
    assert list(itertools.islice(backoff(0.5), 8)) == [0.5, 1, 2, 4, 8, 10, 10, 10]
    assert next(backoff(30)) == 10


# Health decision


PROBE_OK = {"target": "http://127.0.0.1:5678/healthz", "ok": True, "error": None}
PROBE_FAILED = {"target": "http://127.0.0.1:5678/healthz", "ok": False, "error": "connection refused"}


@pytest.mark.parametrize("state, probe, reason", [
    (container("n8n"), None, None),
    (container("n8n", health="healthy"), PROBE_OK, None),
    (None, None, "no container"),
    (None, PROBE_OK, "no container"),
    (container("n8n", state="exited", exit_code=1), None, "container exited with code 1"),
    (container("n8n", state="restarting"), PROBE_OK, "container is restarting"),
    (container("n8n", state="paused"), None, "container is paused"),
    (container("n8n", health="starting"), PROBE_OK, "healthcheck is still starting"),
    (container("n8n", health="unhealthy"), PROBE_OK, "healthcheck reports unhealthy"),
    (container("n8n", health="healthy"), PROBE_FAILED, "probe http://127.0.0.1:5678/healthz: connection refused"),
    (container("n8n"), PROBE_FAILED, "probe http://127.0.0.1:5678/healthz: connection refused"),
])
def test_assess(state, probe, reason):
    assert assess(state, probe) == reason


def test_evaluate_reports_missing_services_and_empty_projects():
    states = {"homelab": [container("ollama"), container("n8n", state="exited", exit_code=1)], "tunnel": []}
    checks = {"homelab": {
        "ollama": {"required": True, "probe": http_probe("http://127.0.0.1:11434/")},
        "searxng": {"required": False, "probe": None},
    }}
    results = {("homelab", "ollama"): dict(PROBE_OK, target="http://127.0.0.1:11434/")}

    entries = evaluate(states, checks, results)

    summary = [(e["project"], e["service"], e["container"], e["required"], e["healthy"], e["reason"]) for e in entries]
    assert summary == [
        ("homelab", "n8n", "homelab-n8n-1", True, False, "container exited with code 1"),
        ("homelab", "ollama", "homelab-ollama-1", True, True, None),
        ("homelab", "searxng", None, False, False, "no container"),
        ("tunnel", None, None, True, False, "project has no containers"),
    ]
    assert entries[1]["probe"] is results[("homelab", "ollama")]
    assert entries[0]["probe"] is None


def test_evaluate_counts_a_probe_without_result_as_failing():
    checks = {"homelab": {"ollama": {"required": True, "probe": http_probe("http://127.0.0.1:11434/")}}}

    (entry,) = evaluate({"homelab": [container("ollama")]}, checks, {})

    assert entry["reason"] == "probe http://127.0.0.1:11434/: no result yet"


# Probes against loopback servers


def test_http_probe_success_ignores_proxy_settings(http_server, monkeypatch):
    # A proxy that does not exist: the probe only works if loopback addresses bypass it.
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    url = http_server(lambda: (200, b'{"status":true}', 0))

    result, _elapsed = probe_until(http_probe(url, body_contains='"status":true'), 5)

    assert result["ok"] is True
    assert result["error"] is None
    assert result["status_code"] == 200
    assert result["attempts"] == 1
    assert result["type"] == "http" and result["target"] == url
    assert 0 <= result["latency_ms"] < 1000


def test_http_probe_accepts_listed_status_codes(http_server):
    url = http_server(lambda: (401, b"unauthorized", 0))

    result, _elapsed = probe_until(http_probe(url, status_code=[200, 401]), 5)

    assert result["ok"] is True
    assert result["status_code"] == 401


def test_http_probe_wrong_status_until_deadline(http_server):
    url = http_server(lambda: (503, b"starting", 0))

    result, elapsed = probe_until(http_probe(url), 0.5)

    assert result["ok"] is False
    assert result["status_code"] == 503
    assert result["error"] == "status 503 not in [200]"
    assert result["attempts"] >= 3
    assert elapsed < 1.5


def test_http_probe_body_mismatch(http_server):
    url = http_server(lambda: (200, b'{"status":false}', 0))

    result, _elapsed = probe_until(http_probe(url, body_contains='"status":true'), 0.2)

    assert result["ok"] is False
    assert result["status_code"] == 200
    assert result["error"] == "body does not contain '\"status\":true'"


def test_http_probe_slow_server_times_out_within_deadline(http_server):
    url = http_server(lambda: (200, b"ok", 2.0))

    result, elapsed = probe_until(http_probe(url), 0.5, timeout=0.2)

    assert result["ok"] is False
    assert result["error"] == "timed out"
    assert result["status_code"] is None
    assert elapsed < 1.2


def test_http_probe_retries_until_the_service_answers(http_server):
    answers = iter([(503, b"", 0), (503, b"", 0)])
    url = http_server(lambda: next(answers, (200, b"ok", 0)))

    result, _elapsed = probe_until(http_probe(url), 5, interval=0.01)

    assert result["ok"] is True
    assert result["attempts"] == 3


def test_http_probe_connection_refused(closed_port):
    result, _elapsed = probe_until(http_probe("http://127.0.0.1:%d/" % closed_port), 0.1)

    assert result["ok"] is False
    assert result["error"] == "connection refused"


def test_tcp_probe_listening_socket():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        probe = {"type": "tcp", "target": "tcp://127.0.0.1:%d" % port, "host": "127.0.0.1", "port": port}

        result, _elapsed = probe_until(probe, 5)

    assert result["ok"] is True
    assert result["error"] is None
    assert result["status_code"] is None
    assert result["attempts"] == 1


def test_tcp_probe_closed_port(closed_port):
    probe = {"type": "tcp", "target": "tcp://127.0.0.1:%d" % closed_port, "host": "127.0.0.1", "port": closed_port}

    result, _elapsed = probe_until(probe, 0.3)

    assert result["ok"] is False
    assert result["error"] == "connection refused"
    assert result["attempts"] > 1


def test_probe_stops_when_asked(closed_port):
    stop = threading.Event()
    stop.set()
    probe = {"type": "tcp", "target": "tcp://127.0.0.1:%d" % closed_port, "host": "127.0.0.1", "port": closed_port}

    result = run_probe(probe, time.monotonic() + 60, 0.01, 1.0, stop, threading.Event())

    assert result["attempts"] == 1


# The wait loop


def test_watch_probes_services_in_parallel(http_server):
    """Five services that each get healthy 1 s after their first request: together they take about 1 s, not 5."""

    def becomes_healthy_after(seconds):
        first = []

        def respond():
            first.append(time.monotonic())
            return (200, b"ok", 0) if time.monotonic() - first[0] >= seconds else (503, b"", 0)
        return respond

    services = ["svc%d" % number for number in range(5)]
    checks = {"homelab": dict(
        (service, {"required": True, "probe": http_probe(http_server(becomes_healthy_after(1.0)))})
        for service in services)}

    def read_states():
        return {"homelab": [container(service) for service in services]}

    started = time.monotonic()
    entries, elapsed_ms = watch(read_states, checks, deadline=30, interval=0.02, timeout=2.0)
    elapsed = time.monotonic() - started

    assert elapsed < 2.5
    assert 1000 <= elapsed_ms < 2500
    assert [(e["service"], e["healthy"]) for e in entries] == [(service, True) for service in services]
    assert all(e["probe"]["attempts"] > 1 for e in entries)


def test_watch_rereads_states_with_backoff_until_the_deadline(clock):
    reads = []

    def read_states():
        reads.append(clock.now)
        return {"homelab": [container("n8n", health="starting")]}

    entries, elapsed_ms = watch(read_states, {"homelab": {}}, deadline=60, interval=1.0, timeout=5.0)

    assert clock.waits == [1, 2, 4, 8, 10, 10, 10, 10, 5]
    assert reads == [0, 1, 3, 7, 15, 25, 35, 45, 55, 60]
    assert elapsed_ms == 60000
    assert [(e["service"], e["healthy"], e["reason"]) for e in entries] == [
        ("n8n", False, "healthcheck is still starting"),
    ]


def test_watch_returns_once_the_containers_are_healthy(clock):
    health = iter(["starting", "starting"])

    def read_states():
        return {"homelab": [container("n8n", health=next(health, "healthy")), container("ollama")]}

    entries, elapsed_ms = watch(read_states, {"homelab": {}}, deadline=180, interval=1.0, timeout=5.0)

    assert clock.waits == [1, 2]
    assert elapsed_ms == 3000
    assert all(e["healthy"] for e in entries)


def test_watch_does_not_wait_for_optional_services(clock, closed_port):
    probe = {"type": "tcp", "target": "tcp://127.0.0.1:%d" % closed_port, "host": "127.0.0.1", "port": closed_port}
    checks = {"homelab": {"mcp-fetch": {"required": False, "probe": probe}}}
    reads = []

    def read_states():
        reads.append(clock.now)
        return {"homelab": [container("mcp-fetch"), container("ollama")]}

    entries, _elapsed_ms = watch(read_states, checks, deadline=180, interval=1.0, timeout=5.0)

    assert reads == [0]
    assert [(e["service"], e["healthy"], e["reason"]) for e in entries] == [
        ("mcp-fetch", False, "probe tcp://127.0.0.1:%d: connection refused" % closed_port),
        ("ollama", True, None),
    ]
