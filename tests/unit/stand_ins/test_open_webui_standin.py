"""The Open-WebUI stand-in's Ollama routes, against two Ollama stand-ins and a dead port on loopback.

What upstream v0.12.4 does, and where it is read, is in the stand-in's docstring and in
docs/upstream-evidence.md (section "Open WebUI"): GET /ollama/config lists OLLAMA_BASE_URLS, and
GET /ollama/api/tags merges every backend's models, each with the indexes of the URLs that have it.
A backend that does not answer is skipped, and the other indexes stay where they are.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
STACK = os.path.join(ROOT, "tests", "stand-ins", "stack")
COMMON = os.path.join(STACK, "common")


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(url, body=None):
    """(status, JSON answer) of a GET, or of a POST of ``body`` as JSON."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def _get(url):
    return _request(url)


def _wait(url):
    for _attempt in range(200):
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("no answer from " + url)


@pytest.fixture
def start(tmp_path):
    processes = []

    def run(args, port, ready_path, **env):
        log = open(tmp_path / ("%d.log" % port), "wb")
        environment = {name: value for name, value in os.environ.items()
                       if not name.startswith(("OLLAMA_", "ENABLE_OLLAMA", "AIOHTTP_")) and name != "ENV"}
        environment.update(PYTHONPATH=COMMON, **env)
        processes.append(subprocess.Popen([sys.executable] + args, env=environment, cwd=tmp_path,
                                          stdout=log, stderr=subprocess.STDOUT))
        log.close()
        url = "http://127.0.0.1:%d" % port
        _wait(url + ready_path)
        return url

    def ollama(*models):
        port = _free_port()
        models_dir = tmp_path / ("models-%d" % port)
        url = run([os.path.join(STACK, "ollama", "ollama.py"), "serve"], port, "/api/version",
                  OLLAMA_HOST="127.0.0.1:%d" % port, OLLAMA_MODELS=str(models_dir))
        for model in models:
            body = json.dumps({"model": model, "stream": False}).encode()
            request = urllib.request.Request(url + "/api/pull", data=body, method="POST")
            urllib.request.urlopen(request, timeout=10).close()
        return url

    def open_webui(**env):
        port = _free_port()
        return run([os.path.join(STACK, "open-webui", "open_webui.py")], port, "/health",
                   HOST="127.0.0.1", PORT=str(port), DATA_DIR=str(tmp_path / ("data-%d" % port)),
                   WEBUI_SECRET_KEY="test-secret", **env)

    yield ollama, open_webui
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=10)


def test_lists_the_urls_and_merges_the_models_by_url_index_skipping_a_dead_backend(start):
    ollama, open_webui = start
    first = ollama("llama3.2:1b")
    second = ollama("llama3.2:1b", "qwen2.5:0.5b")
    dead = "http://127.0.0.1:%d" % _free_port()
    webui = open_webui(OLLAMA_BASE_URLS=" %s;%s ;%s" % (first, dead, second))

    assert _get(webui + "/ollama/config") == (200, {
        "ENABLE_OLLAMA_API": True, "OLLAMA_BASE_URLS": [first, dead, second], "OLLAMA_API_CONFIGS": {}})
    status, body = _get(webui + "/ollama/api/tags")
    assert status == 200
    assert [(m["model"], m["urls"], m["connection_type"]) for m in body["models"]] == [
        ("llama3.2:1b", [0, 2], "local"), ("qwen2.5:0.5b", [2], "local")]
    assert _get(webui + "/ollama/") == (200, {"status": True})


def test_every_backend_down_gives_no_models_and_the_api_switched_off_gives_503(start):
    _ollama, open_webui = start
    dead = "http://127.0.0.1:%d" % _free_port()
    assert _get(open_webui(OLLAMA_BASE_URLS=dead + ";") + "/ollama/api/tags") == (200, {"models": []})
    off = open_webui(OLLAMA_BASE_URL=dead, ENABLE_OLLAMA_API="false")
    assert _get(off + "/ollama/api/tags") == (
        503, {"detail": "The Ollama API is disabled. Please enable it to use this feature."})
    assert _get(off + "/ollama/config")[1]["OLLAMA_BASE_URLS"] == [dead]


def test_urls_are_split_as_upstream_does(start):
    _ollama, open_webui = start
    # One trailing "/" goes from OLLAMA_BASE_URL only; OLLAMA_BASE_URLS parts are only strip()ped.
    assert _get(open_webui(OLLAMA_BASE_URL="http://a:11434/") + "/ollama/config")[1]["OLLAMA_BASE_URLS"] == [
        "http://a:11434"]
    urls = _get(open_webui(OLLAMA_BASE_URLS="http://a:11434/; ") + "/ollama/config")[1]["OLLAMA_BASE_URLS"]
    assert urls == ["http://a:11434/", ""]


def _post(url, body):
    return _request(url, body)


def test_the_admin_from_the_environment_exists_before_anyone_signs_up_and_signup_is_closed(start):
    _ollama, open_webui = start
    webui = open_webui(ENABLE_SIGNUP="false", WEBUI_ADMIN_EMAIL="Admin@Homelab.test", WEBUI_ADMIN_PASSWORD="Admin-Pass-1")
    status, config = _get(webui + "/api/config")
    assert status == 200 and "onboarding" not in config and config["features"]["enable_signup"] is False
    status, body = _post(webui + "/api/v1/auths/signup", {"name": "x", "email": "stranger@evil.test", "password": "x"})
    assert status == 403 and body["detail"].startswith("You do not have permission")
    assert _post(webui + "/api/v1/auths/signin", {"email": "admin@homelab.test", "password": "Admin-Pass-1"})[1]["role"] == "admin"
    assert _post(webui + "/api/v1/auths/signin", {"email": "admin@homelab.test", "password": "wrong"})[0] == 400


def test_without_an_admin_the_first_visitor_becomes_admin_as_upstream(start):
    """What the role's account prevents: the unclaimed page a stranger would own."""
    _ollama, open_webui = start
    webui = open_webui(ENABLE_SIGNUP="false")
    assert _get(webui + "/api/config")[1]["onboarding"] is True
    status, body = _post(webui + "/api/v1/auths/signup", {"name": "x", "email": "stranger@evil.test", "password": "x"})
    assert status == 200 and body["role"] == "admin"
    assert "onboarding" not in _get(webui + "/api/config")[1]
