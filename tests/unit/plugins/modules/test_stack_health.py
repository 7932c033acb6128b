# Copyright (c) 2025, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import socket

import pytest

from ansible_collections.homelab.core.plugins.modules import stack_health

DOCKER = "/usr/bin/docker"
PS = [DOCKER, "compose", "--project-name", "homelab", "ps", "--all", "--format", "json"]
OLLAMA_LOG = '2024-04-12T10:15:02.511934120Z time=2024-04-12T10:15:02.511Z level=INFO msg="Listening on [::]:11434"\n'
MCP_FETCH_LOG = "2024-04-12T10:11:40.207311475Z Error: unable to reach https://example.invalid\n"


class FakeDocker:
    """Stands in for ``AnsibleModule.run_command``: replays recorded docker outputs and records the calls.

    ``ps`` maps project names to the outputs of successive ``docker compose ps`` calls (the last one repeats).
    """

    def __init__(self, ps, inspect=(0, ""), logs=None, config=""):
        self.ps = dict((project, list(outputs)) for project, outputs in ps.items())
        self.inspect = inspect
        self.logs = logs or {}
        self.config = config
        self.calls = []

    def __call__(self, args, **kwargs):
        self.calls.append((args, kwargs))
        assert args[0] == DOCKER
        if args[1:3] == ["compose", "--project-name"]:
            outputs = self.ps[args[3]]
            if args[4] == "ps":
                return 0, outputs.pop(0) if len(outputs) > 1 else outputs[0], ""
            assert args[-2:] == ["config", "--services"]
            return 0, self.config, ""
        if args[1] == "inspect":
            return self.inspect[0], self.inspect[1], "Error: No such container: gone" if self.inspect[0] else ""
        assert args[1:5] == ["logs", "--timestamps", "--tail", "20"]
        return (0,) + self.logs.get(args[5], ("", ""))

    def commands(self, verb):
        return [args for args, _kwargs in self.calls if verb in args[1:5]]


@pytest.fixture
def docker(monkeypatch, fixture_text):
    """Install a FakeDocker built from keyword arguments; fixture names are read from tests/unit/fixtures/compose."""
    from ansible.module_utils import basic

    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None:
                        "/usr/bin/" + name)

    def install(*ps_fixtures, **kwargs):
        fake = FakeDocker({"homelab": [fixture_text("compose", name) for name in ps_fixtures]}, **kwargs)
        monkeypatch.setattr(basic.AnsibleModule, "run_command", fake)
        return fake

    return install


@pytest.fixture
def recorded(docker, fixture_text):
    """The compose 2.26 recording: one container exited, one starting, one unhealthy."""
    return docker(
        "ps-2.26.ndjson",
        inspect=(0, fixture_text("compose", "inspect-restart-count.txt")),
        logs={
            "homelab-open-webui-1": (fixture_text("compose", "logs-open-webui.stdout"),
                                     fixture_text("compose", "logs-open-webui.stderr")),
            "homelab-mcp-fetch-1": ("", MCP_FETCH_LOG),
        },
    )


@pytest.fixture
def refused_url():
    """A loopback URL that refuses connections: the port is bound, so nobody else takes it, but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield "http://127.0.0.1:%d/api/version" % sock.getsockname()[1]


def summary(result):
    return [(e["service"], e["container"], e["state"], e["health"], e["restart_count"], e["healthy"], e["reason"])
            for e in result["services"]]


RECORDED_SUMMARY = [
    ("cloudflared", "homelab-cloudflared-1", "running", "", 0, True, None),
    ("mcp-fetch", "homelab-mcp-fetch-1", "exited", "", 5, False, "container exited with code 1"),
    ("n8n", "homelab-n8n-1", "running", "starting", 0, False, "healthcheck is still starting"),
    ("ollama", "homelab-ollama-1", "running", "healthy", 0, True, None),
    ("open-webui", "homelab-open-webui-1", "running", "unhealthy", 2, False, "healthcheck reports unhealthy"),
]
RECORDED_UNHEALTHY = [
    "homelab/mcp-fetch: container exited with code 1",
    "homelab/n8n: healthcheck is still starting",
    "homelab/open-webui: healthcheck reports unhealthy",
]


def test_recorded_state_fails_naming_the_unhealthy_services(run_module, recorded):
    result = run_module(stack_health, {"projects": [{"name": "homelab"}], "deadline": 0})

    assert result["failed"] is True
    assert result["changed"] is False
    assert result["msg"] == (
        "3 services are unhealthy: homelab/mcp-fetch (container exited with code 1); "
        "homelab/n8n (healthcheck is still starting); homelab/open-webui (healthcheck reports unhealthy)."
    )
    assert result["healthy"] is False
    assert result["unhealthy"] == RECORDED_UNHEALTHY
    assert summary(result) == RECORDED_SUMMARY
    assert recorded.commands("ps") == [PS]
    assert recorded.commands("inspect") == [
        [DOCKER, "inspect", "--type", "container", "--format", "{{.Name}} {{.RestartCount}}", "homelab-cloudflared-1",
         "homelab-mcp-fetch-1", "homelab-n8n-1", "homelab-ollama-1", "homelab-open-webui-1"],
    ]


def test_logs_are_returned_for_unhealthy_services_only(run_module, recorded):
    result = run_module(stack_health, {"projects": [{"name": "homelab"}], "deadline": 0})

    logs = dict((e["service"], e.get("logs")) for e in result["services"])
    assert logs["cloudflared"] is None and logs["ollama"] is None
    assert logs["mcp-fetch"] == ["Error: unable to reach https://example.invalid"]
    assert logs["n8n"] == []
    assert logs["open-webui"][0] == "Loading WEBUI_SECRET_KEY from file, not provided as an environment variable."
    assert logs["open-webui"][-1] == 'INFO:     127.0.0.1:52314 - "GET /health HTTP/1.1" 500 Internal Server Error'
    assert len(logs["open-webui"]) == 9
    assert sorted(args[-1] for args in recorded.commands("logs")) == [
        "homelab-mcp-fetch-1", "homelab-n8n-1", "homelab-open-webui-1"]


def test_fail_on_unhealthy_false_returns_the_facts(run_module, recorded):
    result = run_module(stack_health, {"projects": [{"name": "homelab"}], "deadline": 0, "fail_on_unhealthy": False})

    assert result["failed"] is False
    assert result["changed"] is False
    assert result["healthy"] is False
    assert result["unhealthy"] == RECORDED_UNHEALTHY
    assert summary(result) == RECORDED_SUMMARY


def test_check_mode_reads_and_reports_the_same(run_module, recorded):
    result = run_module(stack_health, {"projects": [{"name": "homelab"}], "deadline": 0, "fail_on_unhealthy": False,
                                       "_ansible_check_mode": True})

    assert result["changed"] is False
    assert summary(result) == RECORDED_SUMMARY
    assert recorded.commands("ps") == [PS]


def test_waits_until_the_stack_is_healthy(run_module, docker, fixture_text):
    fake = docker("ps-2.26.ndjson", "ps-2.26.ndjson", "ps-2.26-healthy.ndjson",
                  inspect=(0, fixture_text("compose", "inspect-restart-count.txt")))

    result = run_module(stack_health, {"projects": [{"name": "homelab"}], "interval": 0.01})

    assert result["failed"] is False
    assert result["changed"] is False
    assert result["healthy"] is True
    assert result["unhealthy"] == []
    assert all(e["healthy"] and "logs" not in e for e in result["services"])
    assert len(fake.commands("ps")) == 3
    assert fake.commands("logs") == []
    assert 0 <= result["elapsed_ms"] < 5000


def test_array_output_of_compose_2_20(run_module, docker):
    docker("ps-2.20.json")

    result = run_module(stack_health, {"projects": [{"name": "homelab"}], "deadline": 0})

    assert result["msg"] == "1 service is unhealthy: homelab/n8n (container exited with code 137)."
    assert [(e["service"], e["healthy"]) for e in result["services"]] == [
        ("n8n", False), ("ollama", True), ("open-webui", True)]
    # No inspect output: restart counts are unknown rather than guessed.
    assert [e["restart_count"] for e in result["services"]] == [None, None, None]


def test_service_that_is_not_required_does_not_fail(run_module, docker):
    docker("ps-2.20.json")

    result = run_module(stack_health, {"projects": [{"name": "homelab", "services": [
        {"service": "n8n", "required": False}]}], "deadline": 0})

    assert result["failed"] is False
    assert result["healthy"] is True
    assert result["unhealthy"] == []
    n8n = result["services"][0]
    assert (n8n["service"], n8n["required"], n8n["healthy"]) == ("n8n", False, False)
    assert n8n["reason"] == "container exited with code 137"


def test_project_without_containers_is_unhealthy(run_module, docker):
    docker("ps-empty.ndjson")

    result = run_module(stack_health, {"projects": [{"name": "homelab"}], "deadline": 0})

    assert result["msg"] == "1 service is unhealthy: homelab (project has no containers)."
    assert result["unhealthy"] == ["homelab: project has no containers"]
    assert summary(result) == [(None, None, None, None, None, False, "project has no containers")]


def test_probed_service_without_container(run_module, docker, refused_url):
    docker("ps-2.20.json")

    result = run_module(stack_health, {"projects": [{"name": "homelab", "services": [
        {"service": "n8n", "required": False}, {"service": "comfyui", "url": refused_url}]}], "deadline": 0})

    assert result["msg"] == "1 service is unhealthy: homelab/comfyui (no container)."
    comfyui = result["services"][0]
    assert (comfyui["service"], comfyui["container"], comfyui["logs"]) == ("comfyui", None, [])
    assert comfyui["probe"]["target"] == refused_url


def test_project_src_makes_declared_services_expected(run_module, recorded, tmp_path):
    recorded.config = "cloudflared\nmcp-fetch\nn8n\nollama\nopen-webui\nsearxng\n"

    result = run_module(stack_health, {"projects": [{"name": "homelab", "project_src": str(tmp_path)}],
                                       "deadline": 0, "fail_on_unhealthy": False})

    config_calls = [(args, kwargs) for args, kwargs in recorded.calls if "config" in args]
    assert config_calls == [([DOCKER, "compose", "--project-name", "homelab", "config", "--services"],
                             {"cwd": str(tmp_path)})]
    assert summary(result)[-1] == ("searxng", None, None, None, None, False, "no container")
    assert result["unhealthy"] == RECORDED_UNHEALTHY + ["homelab/searxng: no container"]


def test_a_second_stack_in_the_same_directory_names_its_compose_file(run_module, recorded, tmp_path):
    recorded.config = "x-mcp\n"

    run_module(stack_health, {"projects": [{"name": "homelab", "project_src": str(tmp_path),
                                            "files": ["docker-compose-mcp.yml"]}],
                              "deadline": 0, "fail_on_unhealthy": False})

    config_calls = [args for args, _kwargs in recorded.calls if "config" in args]
    assert config_calls == [[DOCKER, "compose", "--project-name", "homelab", "--file", "docker-compose-mcp.yml",
                             "config", "--services"]]


def test_deadline_exhausted_reports_probe_failure_and_logs(run_module, docker, refused_url):
    docker("ps-2.20.json", logs={"homelab-ollama-1": (OLLAMA_LOG, "")})

    result = run_module(stack_health, {"projects": [{"name": "homelab", "services": [
        {"service": "n8n", "required": False}, {"service": "ollama", "url": refused_url}]}],
        "deadline": 1, "interval": 0.1})

    reason = "probe %s: connection refused" % refused_url
    assert result["msg"] == "1 service is unhealthy: homelab/ollama (%s)." % reason
    assert result["unhealthy"] == ["homelab/ollama: " + reason]
    ollama = [e for e in result["services"] if e["service"] == "ollama"][0]
    assert (ollama["healthy"], ollama["reason"]) == (False, reason)
    assert ollama["logs"] == ['time=2024-04-12T10:15:02.511Z level=INFO msg="Listening on [::]:11434"']
    probe = ollama["probe"]
    assert (probe["type"], probe["ok"], probe["status_code"], probe["error"]) == (
        "http", False, None, "connection refused")
    assert probe["attempts"] >= 3
    assert 1000 <= result["elapsed_ms"] < 3000


def test_tcp_probe(run_module, docker):
    docker("ps-2.20.json")
    with socket.create_server(("127.0.0.1", 0)) as server:
        target = "127.0.0.1:%d" % server.getsockname()[1]
        result = run_module(stack_health, {"projects": [{"name": "homelab", "services": [
            {"service": "n8n", "required": False}, {"service": "ollama", "tcp": target}]}], "deadline": 0})

    assert result["failed"] is False
    ollama = [e for e in result["services"] if e["service"] == "ollama"][0]
    assert ollama["probe"] == {"type": "tcp", "target": "tcp://" + target, "ok": True, "status_code": None,
                               "latency_ms": ollama["probe"]["latency_ms"], "error": None, "attempts": 1}


def test_restart_counts_survive_a_container_that_vanished(run_module, docker):
    docker("ps-2.20.json", inspect=(1, "/homelab-ollama-1 3\n/homelab-open-webui-1 0\n"))

    result = run_module(stack_health, {"projects": [{"name": "homelab"}], "deadline": 0})

    assert [e["restart_count"] for e in result["services"]] == [None, 3, 0]


@pytest.mark.parametrize("service, message", [
    ({"service": "db", "url": "http://127.0.0.1/", "tcp": "127.0.0.1:5432"}, "mutually exclusive: url|tcp"),
    ({"service": "db", "tcp": "127.0.0.1"}, "homelab/db: tcp expected host:port, got '127.0.0.1'"),
    ({"service": "db", "url": "ftp://127.0.0.1/"}, "homelab/db: url must be an http:// or https:// URL"),
    ({"service": "db", "tcp": "127.0.0.1:5432", "body_contains": "ok"},
     "missing parameter(s) required by 'body_contains': url"),
])
def test_invalid_probes_are_rejected(run_module, docker, service, message):
    fake = docker("ps-2.26.ndjson")

    result = run_module(stack_health, {"projects": [{"name": "homelab", "services": [service]}]})

    assert result["failed"] is True
    assert message in result["msg"]
    assert fake.calls == []


def test_service_listed_twice_is_rejected(run_module, docker):
    docker("ps-2.26.ndjson")

    result = run_module(stack_health, {"projects": [{"name": "homelab", "services": [
        {"service": "n8n"}, {"service": "n8n", "tcp": "127.0.0.1:5678"}]}]})

    assert result["msg"] == "homelab/n8n is listed twice"


@pytest.mark.parametrize("option, value", [("deadline", -1), ("log_lines", -1), ("interval", 0), ("probe_timeout", 0)])
def test_out_of_range_numbers_are_rejected(run_module, docker, option, value):
    docker("ps-2.26.ndjson")

    result = run_module(stack_health, {"projects": [{"name": "homelab"}], option: value})

    assert result["failed"] is True
    assert option in result["msg"]


def test_compose_failure_fails_the_task(run_module, docker, monkeypatch):
    from ansible.module_utils import basic

    docker("ps-2.26.ndjson")
    monkeypatch.setattr(basic.AnsibleModule, "run_command",
                        lambda self, args, **kwargs: (1, "", "docker: 'compose' is not a docker command.\n"))

    result = run_module(stack_health, {"projects": [{"name": "homelab"}]})

    assert result["failed"] is True
    assert result["msg"] == "%s failed: docker: 'compose' is not a docker command." % " ".join(PS)
    assert result["rc"] == 1


def test_unparsable_ps_output_fails_the_task(run_module, docker, monkeypatch):
    from ansible.module_utils import basic

    docker("ps-2.26.ndjson")
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, args, **kwargs: (0, "NAME  IMAGE\n", ""))

    result = run_module(stack_health, {"projects": [{"name": "homelab"}]})

    assert result["failed"] is True
    assert result["msg"].startswith("Cannot parse docker compose ps output of homelab: ")


@pytest.fixture
def setup_page():
    """A real HTTP server on loopback answering GET /rest/settings as n8n does, owned or not (``.owned``)."""
    import http.server
    import json
    import threading

    class Answer(http.server.BaseHTTPRequestHandler):
        owned = True

        def do_GET(self):  # noqa: N802 (http.server's name)
            body = json.dumps({"data": {"userManagement": {"showSetupOnFirstLoad": not Answer.owned}}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Answer, "http://127.0.0.1:%d/rest/settings" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_a_healthy_service_whose_setup_page_is_still_open_fails_naming_it(run_module, recorded, setup_page):
    answer, url = setup_page
    answer.owned = False

    result = run_module(stack_health, {"projects": [{"name": "homelab", "services": [
        {"service": "ollama", "setup_page": {"url": url, "rule": "n8n"}}]}], "deadline": 0})

    ollama = [entry for entry in result["services"] if entry["service"] == "ollama"][0]
    assert ollama["healthy"] is False and ollama["setup_page"] == {"url": url, "open": True}
    assert ollama["reason"].startswith("offers its setup page %s to anyone, although the inventory gives its admin account" % url)
    assert "homelab/ollama (offers its setup page %s" % url in result["msg"]


def test_an_owned_setup_page_leaves_the_service_healthy(run_module, recorded, setup_page):
    answer, url = setup_page
    answer.owned = True

    result = run_module(stack_health, {"projects": [{"name": "homelab", "services": [
        {"service": "ollama", "setup_page": {"url": url, "rule": "n8n"}}]}], "deadline": 0, "fail_on_unhealthy": False})

    ollama = [entry for entry in result["services"] if entry["service"] == "ollama"][0]
    assert ollama["healthy"] is True and ollama["setup_page"] == {"url": url, "open": False}


def test_an_unreachable_setup_page_counts_as_open(run_module, recorded, refused_url):
    result = run_module(stack_health, {"projects": [{"name": "homelab", "services": [
        {"service": "ollama", "setup_page": {"url": refused_url, "rule": "open-webui"}}]}], "deadline": 0,
        "fail_on_unhealthy": False})

    ollama = [entry for entry in result["services"] if entry["service"] == "ollama"][0]
    assert ollama["healthy"] is False and ollama["setup_page"]["open"] is True
