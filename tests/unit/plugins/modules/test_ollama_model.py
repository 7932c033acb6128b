# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""ollama_model against a real HTTP server on 127.0.0.1 that speaks Ollama's API (and a registry's manifests).

The server streams /api/pull as chunked NDJSON, like Ollama's gin server does, and each test scripts what the
pull sends: progress, an error line, a cut connection, a non-200 answer or silence.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.homelab.core.plugins.module_utils import _ollama
from ansible_collections.homelab.core.plugins.modules import ollama_model

LAYER = "sha256:" + "ab" * 32
CONFIG = "sha256:" + "cd" * 32
GIB = 1024 ** 3


def manifest(layer_size=4_000_000, tag="v1"):
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"digest": CONFIG, "size": 485, "tag": tag},
        "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": LAYER, "size": layer_size}],
    }


def digest_of(doc):
    return hashlib.sha256(json.dumps(doc).encode()).hexdigest()


def progress_lines(total=4_000_000, steps=20):
    lines = [{"status": "pulling manifest"}]
    for step in range(steps + 1):
        lines.append({"status": "pulling " + LAYER[7:19], "digest": LAYER, "total": total,
                      "completed": total * step // steps})
    lines += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]
    return lines


class FakeOllama:
    """State of the fake server: installed models, the next pull's script, and every request seen."""

    def __init__(self):
        self.models = {}  # shortest name -> manifest document
        self.registry = {}  # "namespace/model:tag" -> manifest document
        self.registry_status = 200
        self.pull_script = None  # list of dicts (lines) and ("cut",) / ("sleep", s) / ("status", code, body)
        self.pull_installs = None  # manifest the pull installs; default: registry's, else manifest()
        self.requests = []

    def tags(self):
        return {"models": [{"name": name, "model": name, "digest": digest_of(doc),
                            "size": sum(b["size"] for b in doc["layers"]) + doc["config"]["size"]}
                           for name, doc in sorted(self.models.items())]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}") if length else {}

    def _reply(self, status, body):
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):
        state = self.state
        state.requests.append(("GET", self.path, None, self.headers.get("Accept")))
        if self.path == "/api/tags":
            return self._reply(200, state.tags())
        if self.path.startswith("/v2/"):
            repo, _sep, tag = self.path[4:].partition("/manifests/")
            doc = state.registry.get("%s:%s" % (repo, tag))
            if state.registry_status != 200 or doc is None:
                return self._reply(state.registry_status if state.registry_status != 200 else 404,
                                   {"errors": [{"code": "MANIFEST_UNKNOWN"}]})
            return self._reply(200, doc)
        return self._reply(404, {"error": "404 page not found"})

    def do_POST(self):
        state = self.state
        body = self._body()
        state.requests.append(("POST", self.path, body, None))
        name = _ollama.parse_name(body.get("model") or body.get("name"))
        script = state.pull_script if state.pull_script is not None else progress_lines()
        if script and isinstance(script[0], tuple) and script[0][0] == "status":
            return self._reply(script[0][1], script[0][2])
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for item in script:
            if isinstance(item, tuple) and item[0] == "cut":
                # Half a chunk, then the socket closes: what a crashed server or a broken network leaves.
                self.wfile.write(b"40\r\n{\"status\":\"pulling")
                self.wfile.flush()
                self.close_connection = True
                return None
            if isinstance(item, tuple) and item[0] == "sleep":
                time.sleep(item[1])
                continue
            if item.get("status") == "success":
                doc = state.pull_installs or state.registry.get("%s:%s" % (name.repository, name.tag)) or manifest()
                state.models[name.shortest] = doc
            self._chunk(json.dumps(item).encode() + b"\n")
        self._chunk(b"")
        return None

    def do_DELETE(self):
        state = self.state
        body = self._body()
        state.requests.append(("DELETE", self.path, body, None))
        name = _ollama.parse_name(body.get("model") or body.get("name"))
        if state.models.pop(name.shortest, None) is None:
            return self._reply(404, {"error": "model '%s' not found" % body.get("model")})
        return self._reply(200, None)


Server = namedtuple("Server", "state url")


@pytest.fixture
def server():
    state = FakeOllama()
    handler = type("BoundHandler", (Handler,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield Server(state, "http://127.0.0.1:%d" % httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def run(run_module, server):
    def _run(**args):
        args.setdefault("url", server.url)
        args.setdefault("registry_url", server.url)
        return run_module(ollama_model, args)

    return _run


@pytest.fixture
def warnings(monkeypatch):
    """The warnings the module emits, in order."""
    from ansible.module_utils import basic

    emitted = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, message: emitted.append(message))
    return emitted


def mutating(state):
    return [request for request in state.requests if request[0] in ("POST", "DELETE")]


# --- names ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("llama3", ("registry.ollama.ai", "library", "llama3", "latest")),
    ("llama3:8b", ("registry.ollama.ai", "library", "llama3", "8b")),
    ("jmorgan/m.x:q4_0", ("registry.ollama.ai", "jmorgan", "m.x", "q4_0")),
    ("localhost:5000/team/model", ("localhost:5000", "team", "model", "latest")),
    ("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M",
     ("hf.co", "bartowski", "Llama-3.2-1B-Instruct-GGUF", "Q4_K_M")),
])
def test_names_get_ollamas_defaults(text, expected):
    assert tuple(_ollama.parse_name(text)) == expected


def test_the_three_spellings_of_one_model_are_the_same_model():
    keys = {_ollama.parse_name(text).key for text in
            ("llama3", "llama3:latest", "registry.ollama.ai/library/llama3:latest", "Library/LLAMA3:Latest")}
    assert len(keys) == 1
    assert _ollama.parse_name("registry.ollama.ai/library/llama3").shortest == "llama3:latest"
    assert _ollama.parse_name("ns/m:t").shortest == "ns/m:t"
    assert _ollama.parse_name("host:1/ns/m").shortest == "host:1/ns/m:latest"


@pytest.mark.parametrize("text", ["", "a/b/c/d", "m@sha256:abc", "http://h/n/m", "-m", "ns.x/m", "m:t:t", "m:",
                                  "m:a/b"])
def test_invalid_names_fail_before_any_request(run, server, text):
    result = run(name=text)
    assert result["failed"] and result["msg"].startswith("Invalid name")
    assert server.state.requests == []


def test_progress_keeps_milestones_not_every_line():
    progress = _ollama.PullProgress()
    for line in progress_lines(steps=100):
        progress.add(line)
    layer = [entry["percent"] for entry in progress.milestones if "percent" in entry]
    assert layer == [0, 25, 50, 75, 100]
    assert [entry["status"] for entry in progress.milestones if "percent" not in entry] == [
        "pulling manifest", "verifying sha256 digest", "writing manifest", "success"]
    assert progress.success


# --- present --------------------------------------------------------------------------------------------------


def test_pull_of_a_missing_model_streams_and_reports_it(run, server):
    result = run(name="llama3", _ansible_diff=True)
    assert result["failed"] is False and result["changed"] is True
    assert result["name"] == "llama3:latest"
    assert result["digest"] == digest_of(manifest()) and result["size"] == 4_000_485
    assert [e.get("percent") for e in result["progress"] if "percent" in e] == [0, 25, 50, 75, 100]
    assert result["progress"][-1] == {"status": "success"}
    assert result["diff"]["before"] == {"name": "llama3:latest", "present": False}
    assert result["diff"]["after"]["present"] is True
    post = mutating(server.state)
    assert post == [("POST", "/api/pull", {"model": "llama3:latest", "name": "llama3:latest", "stream": True}, None)]


def test_present_model_in_any_spelling_is_not_pulled_again(run, server):
    server.state.models["llama3:latest"] = manifest()
    for spelling in ("llama3", "llama3:latest", "registry.ollama.ai/library/llama3:latest"):
        result = run(name=spelling, models_path="/nonexistent")
        assert result["changed"] is False and result["digest"] == digest_of(manifest())
    assert mutating(server.state) == []
    assert not any(path.startswith("/v2/") for _m, path, _b, _a in server.state.requests)


def test_check_mode_for_a_missing_model_pulls_nothing(run, server):
    result = run(name="llama3", _ansible_check_mode=True, _ansible_diff=True)
    assert result["changed"] is True and result["diff"]["after"]["present"] is True
    assert mutating(server.state) == [] and server.state.models == {}


def test_error_line_mid_stream_fails_with_ollamas_message(run, server):
    server.state.pull_script = progress_lines()[:5] + [{"error": "max retries exceeded: unexpected EOF"}]
    result = run(name="llama3")
    assert result["failed"] is True
    assert result["msg"] == "Pulling llama3:latest failed: max retries exceeded: unexpected EOF"
    assert "digest" not in result and "size" not in result
    assert result["progress"][0] == {"status": "pulling manifest"}


def test_non_200_answer_fails_with_ollamas_message(run, server):
    server.state.pull_script = [("status", 500, {"error": "pull model manifest: file does not exist"})]
    result = run(name="nosuchmodel:7b")
    assert result["failed"] is True
    assert result["msg"] == ("Pulling nosuchmodel:7b failed: Ollama refused the pull (HTTP 500): "
                             "pull model manifest: file does not exist")


def test_cut_connection_fails_and_does_not_claim_the_model(run, server):
    server.state.pull_script = progress_lines()[:4] + [("cut",)]
    result = run(name="llama3")
    assert result["failed"] is True and "The connection to Ollama broke during the pull" in result["msg"]
    assert "digest" not in result


def test_stream_without_success_line_fails(run, server):
    server.state.pull_script = progress_lines()[:-1]
    result = run(name="llama3")
    assert result["failed"] is True and "ended before its success line" in result["msg"]


def test_total_timeout_fails_naming_timeout(run, server):
    slow_line = {"status": "pulling " + LAYER[7:19], "digest": LAYER, "total": 10, "completed": 1}
    server.state.pull_script = [{"status": "pulling manifest"}] + [("sleep", 0.1), slow_line] * 30
    started = time.monotonic()
    result = run(name="llama3", timeout=1)
    assert result["failed"] is True and "timeout=1 seconds" in result["msg"]
    assert time.monotonic() - started < 3


def test_silent_ollama_fails_naming_read_timeout(run, server):
    server.state.pull_script = [{"status": "pulling manifest"}, ("sleep", 3), {"status": "success"}]
    result = run(name="llama3", read_timeout=1)
    assert result["failed"] is True and "read_timeout" in result["msg"]


def test_unreachable_ollama_fails_naming_the_url(run_module):
    result = run_module(ollama_model, {"name": "llama3", "url": "http://127.0.0.1:9"})
    assert result["failed"] is True and "Cannot reach Ollama at http://127.0.0.1:9" in result["msg"]


# --- update ---------------------------------------------------------------------------------------------------


def test_update_with_the_same_digest_is_no_change(run, server):
    server.state.models["llama3:latest"] = manifest()
    server.state.pull_installs = manifest()
    result = run(name="llama3", update=True)
    assert result["changed"] is False and result["digest"] == digest_of(manifest())
    assert len(mutating(server.state)) == 1  # it did pull


def test_update_with_a_moved_digest_is_a_change(run, server):
    server.state.models["llama3:latest"] = manifest(tag="v1")
    server.state.pull_installs = manifest(tag="v2")
    result = run(name="llama3", update=True, _ansible_diff=True)
    assert result["changed"] is True and result["digest"] == digest_of(manifest(tag="v2"))
    assert result["diff"]["before"]["digest"] == digest_of(manifest(tag="v1"))
    assert result["diff"]["after"]["digest"] == digest_of(manifest(tag="v2"))


def test_update_in_check_mode_compares_the_registrys_manifest(run, server):
    server.state.models["llama3:latest"] = manifest(tag="v1")
    server.state.registry["library/llama3:latest"] = manifest(tag="v1")
    assert run(name="llama3", update=True, _ansible_check_mode=True)["changed"] is False
    server.state.registry["library/llama3:latest"] = manifest(tag="v2")
    assert run(name="llama3", update=True, _ansible_check_mode=True)["changed"] is True
    assert mutating(server.state) == []


# --- disk check -----------------------------------------------------------------------------------------------


def test_a_model_that_does_not_fit_is_refused_before_the_pull(run, server, tmp_path):
    server.state.registry["library/big:70b"] = manifest(layer_size=10 ** 18)
    result = run(name="big:70b", models_path=str(tmp_path / "models"))
    assert result["failed"] is True
    assert "models_path %s" % (tmp_path / "models") in result["msg"] and "bytes" in result["msg"]
    assert mutating(server.state) == []
    manifest_requests = [r for r in server.state.requests if r[1].startswith("/v2/")]
    assert manifest_requests == [("GET", "/v2/library/big/manifests/70b", None,
                                  "application/vnd.docker.distribution.manifest.v2+json")]


def test_tiny_free_space_refuses_and_blobs_already_there_do_not_count(run, server, tmp_path, monkeypatch):
    server.state.registry["library/llama3:latest"] = manifest()
    real_statvfs = os.statvfs
    monkeypatch.setattr(os, "statvfs", lambda path: os.statvfs_result(
        (4096, 4096, 100, 10, 10, 100, 10, 10, 0, 255)) if str(path).startswith(str(tmp_path)) else real_statvfs(path))
    result = run(name="llama3", models_path=str(tmp_path))
    assert result["failed"] is True and "has only 40.0 KiB (40960 bytes) free" in result["msg"]
    assert mutating(server.state) == []
    # With the big layer already in blobs/, only the config (485 bytes) is new, and that fits.
    (tmp_path / "blobs").mkdir()
    (tmp_path / "blobs" / LAYER.replace(":", "-")).write_bytes(b"")
    result = run(name="llama3", models_path=str(tmp_path))
    assert result["failed"] is False and result["changed"] is True


def test_a_model_that_fits_is_pulled(run, server, tmp_path, warnings):
    server.state.registry["library/llama3:latest"] = manifest()
    result = run(name="llama3", models_path=str(tmp_path))
    assert result["changed"] is True and warnings == []


def test_unreachable_registry_warns_and_pulls(run, server, tmp_path, warnings):
    server.state.registry_status = 503
    result = run(name="llama3", models_path=str(tmp_path))
    assert result["failed"] is False and result["changed"] is True
    assert len(warnings) == 1 and "Could not read the manifest" in warnings[0] and "HTTP 503" in warnings[0]
    assert "without checking the free disk space" in warnings[0]


def test_update_in_check_mode_without_registry_warns_and_reports_no_change(run, server, warnings):
    server.state.models["llama3:latest"] = manifest()
    server.state.registry_status = 503
    result = run(name="llama3", update=True, _ansible_check_mode=True)
    assert result["changed"] is False and mutating(server.state) == []
    assert "cannot tell whether its digest moved" in warnings[0]


def test_a_model_on_another_host_asks_that_host(run, server, tmp_path, warnings):
    result = run(name="127.0.0.1:9/team/model:tag", models_path=str(tmp_path), timeout=5)
    assert result["changed"] is True and result["name"] == "127.0.0.1:9/team/model:tag"
    assert "https://127.0.0.1:9/v2/team/model/manifests/tag" in warnings[0]


# --- absent ---------------------------------------------------------------------------------------------------


def test_absent_deletes_sending_both_keys(run, server):
    server.state.models["ns/coder:7b"] = manifest()
    result = run(name="registry.ollama.ai/ns/coder:7b", state="absent", _ansible_diff=True)
    assert result["changed"] is True and result["digest"] is None
    assert result["diff"]["before"]["present"] is True and result["diff"]["after"] == {
        "name": "ns/coder:7b", "present": False}
    assert mutating(server.state) == [("DELETE", "/api/delete", {"model": "ns/coder:7b", "name": "ns/coder:7b"}, None)]
    assert server.state.models == {}


def test_absent_model_that_is_missing_is_unchanged(run, server):
    result = run(name="llama3", state="absent")
    assert result["changed"] is False and mutating(server.state) == []


def test_absent_in_check_mode_deletes_nothing(run, server):
    server.state.models["llama3:latest"] = manifest()
    result = run(name="llama3", state="absent", _ansible_check_mode=True)
    assert result["changed"] is True and mutating(server.state) == []
    assert "llama3:latest" in server.state.models


def test_delete_answered_404_means_already_absent(run, server, monkeypatch):
    server.state.models["llama3:latest"] = manifest()
    real_tags = server.state.tags
    # The model disappears between the listing and the delete (someone ran `ollama rm`).
    monkeypatch.setattr(server.state, "tags", lambda: (real_tags(), server.state.models.clear())[0])
    result = run(name="llama3", state="absent")
    assert result["failed"] is False and result["changed"] is False
