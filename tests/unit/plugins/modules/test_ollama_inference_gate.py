# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""ollama_inference_gate against a real HTTP server on 127.0.0.1 that replays Ollama's /api/tags, /api/generate and
/api/ps in the shapes of v0.32.15 (tests/unit/fixtures/ollama, built from upstream's structs, see its README), and
once against the labelled Ollama stand-in of the stack tests (tests/stand-ins/stack/ollama).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import run_ollama_standin

from ansible_collections.homelab.core.plugins.module_utils import _inference_gate as gate
from ansible_collections.homelab.core.plugins.modules import ollama_inference_gate

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures", "ollama")
STANDIN = os.path.join(ROOT, "tests", "stand-ins", "stack", "ollama", "ollama.py")
PROBE = "qwen2.5:0.5b"


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as handle:
        return handle.read()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes = None  # (method, path) -> (status, body bytes[, delay seconds])
    requests = None

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.requests.append((self.command, self.path, body))
        status, data, *delay = self.routes.get((self.command, self.path), (404, b'{"error":"404 page not found"}'))
        if delay:
            time.sleep(delay[0])
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _serve


@pytest.fixture
def ollama():
    """A server whose answers each test sets in .routes; .requests records what the module sent."""
    handler = type("H", (Handler,), {"routes": {}, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    handler.url = "http://127.0.0.1:%d" % server.server_address[1]
    handler.routes.update({("GET", "/api/tags"): (200, fixture("tags_probe.json"))})
    yield handler
    server.shutdown()
    server.server_close()


@pytest.fixture
def warnings(monkeypatch):
    from ansible.module_utils import basic

    emitted = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, message: emitted.append(message))
    return emitted


@pytest.fixture
def run(run_module, ollama):
    def _run(generate=None, ps=None, **args):
        if generate is not None:
            ollama.routes[("POST", "/api/generate")] = generate if isinstance(generate, tuple) else (200, fixture(generate))
        if ps is not None:
            ollama.routes[("GET", "/api/ps")] = (200, fixture(ps))
        args.setdefault("url", ollama.url)
        args.setdefault("model", PROBE)
        return run_module(ollama_inference_gate, args)

    return _run


def sent(ollama, method, path):
    return [body for verb, where, body in ollama.requests if (verb, where) == (method, path)]


# --- full offload, several GPUs ----------------------------------------------------------------------------------


def test_full_offload_passes_and_reports_tokens_per_second(run, ollama, warnings):
    result = run("generate_gpu.json", "ps_full_gpu.json", mode="required")
    assert not result["failed"] and not result["changed"]
    assert result["gpu_ok"] and result["checked"] and result["generated"]
    assert result["processor"] == "100% GPU"
    assert result["size"] == result["size_vram"] == 1141334016
    assert result["offload_percent"] == 100.0
    metrics = result["metrics"]
    assert metrics["eval_count"] == 1 and metrics["eval_duration"] == 6543000
    assert metrics["tokens_per_second"] == round(1 / 0.006543, 2)
    assert metrics["prompt_tokens_per_second"] == round(35 / 0.021876, 2)
    assert metrics["done_reason"] == "length"
    assert result["problems"] == [] and result["diagnosis"] is None and warnings == []
    assert result["summary"].startswith("qwen2.5:0.5b: 100% GPU, 100.0% in VRAM")
    assert "152.84 tokens/s generated (1 in 0.007 s)" in result["summary"]
    # One non-streamed, one-token generate; the model is never pulled.
    assert sent(ollama, "POST", "/api/generate") == [{
        "model": PROBE, "prompt": ollama_inference_gate.PROMPT, "stream": False, "keep_alive": "5m",
        "options": {"num_predict": 1}}]
    assert sent(ollama, "POST", "/api/pull") == []


def test_a_model_split_over_several_gpus_is_wholly_in_vram(run, warnings):
    result = run("generate_two_gpus.json", "ps_two_gpus.json", model="llama3.3:70b", mode="required")
    assert not result["failed"] and result["gpu_ok"] and result["processor"] == "100% GPU"
    assert result["size_vram"] == 49375522816
    assert result["other_loaded"] == ["qwen2.5:0.5b"]
    assert result["metrics"]["load_duration"] == 38903617345
    assert "loaded in 38.9 s" in result["summary"]
    assert warnings == []


def test_names_match_as_ollama_normalises_them(run):
    result = run("generate_gpu.json", "ps_full_gpu.json", model="registry.ollama.ai/library/Qwen2.5:0.5b")
    assert result["gpu_ok"] and result["model"] == "qwen2.5:0.5b"


# --- partial offload and CPU: required fails, auto warns ---------------------------------------------------------


def test_partial_offload_fails_required_naming_the_vram_and_the_other_models(run):
    result = run("generate_gpu.json", "ps_partial.json", mode="required")
    assert result["failed"] and not result["gpu_ok"]
    assert result["processor"] == "65%/35% CPU/GPU"
    assert result["offload_percent"] == 35.2
    assert [p["code"] for p in result["problems"]] == ["partial_offload"]
    assert result["diagnosis"].startswith("partial_offload: The model is only partly in VRAM")
    assert "size_vram 401604608 of size 1141334016 bytes" in result["diagnosis"]
    assert "also loaded: llama3.1:8b" in result["diagnosis"]
    assert "too small" in result["remedy"] and "ollama_gpu_probe_model" in result["remedy"]
    assert result["msg"] == "%s %s" % (result["diagnosis"], result["remedy"])


def test_partial_offload_warns_in_auto(run, warnings):
    result = run("generate_gpu.json", "ps_partial.json", mode="auto")
    assert not result["failed"] and not result["gpu_ok"]
    assert warnings == ["%s %s" % (result["diagnosis"], result["remedy"])]


@pytest.mark.parametrize("mode", ["required", "auto"])
def test_cpu_only_is_the_gpu_not_reaching_the_container(run, warnings, mode):
    result = run("generate_cpu.json", "ps_cpu.json", mode=mode)
    assert result["failed"] is (mode == "required")
    assert result["processor"] == "100% CPU" and result["size_vram"] == 0 and result["offload_percent"] == 0.0
    assert result["problems"][0]["code"] == "cpu_only"
    assert "reserves it" in result["remedy"] and "scripts/gpu-check.sh" in result["remedy"]
    assert "inference compute" in result["remedy"]
    assert result["metrics"]["tokens_per_second"] == round(1 / 0.058731, 2)
    assert warnings == ([] if mode == "required" else [result["diagnosis"] + " " + result["remedy"]])


def test_cpu_only_is_no_finding_on_a_host_without_a_gpu(run, warnings):
    result = run("generate_cpu.json", "ps_cpu.json", mode="required", expect_gpu=False)
    assert not result["failed"] and result["processor"] == "100% CPU" and result["problems"] == []
    assert warnings == []


def test_sizes_that_do_not_add_up_are_unknown(run, ollama):
    entry = json.loads(fixture("ps_full_gpu.json"))
    entry["models"][0]["size_vram"] = entry["models"][0]["size"] + 1
    ollama.routes[("GET", "/api/ps")] = (200, json.dumps(entry).encode())
    result = run("generate_gpu.json", mode="required")
    assert result["failed"] and result["processor"] == "Unknown"
    assert result["problems"][0]["code"] == "offload_unknown"


# --- not loaded, not installed, failed, unreachable -------------------------------------------------------------


def test_model_not_listed_after_the_generate(run):
    result = run("generate_gpu.json", "ps_other_model.json", mode="required")
    assert result["failed"] and result["problems"][0]["code"] == "model_not_loaded"
    assert "GET /api/ps lists llama3.1:8b" in result["diagnosis"]
    assert "OLLAMA_KEEP_ALIVE" in result["remedy"]
    assert result["other_loaded"] == ["llama3.1:8b"]


@pytest.mark.parametrize("mode", ["required", "auto"])
def test_a_model_that_is_not_installed_is_never_pulled(run, ollama, warnings, mode):
    result = run("generate_gpu.json", "ps_full_gpu.json", model="phi3:mini", mode=mode)
    assert result["failed"] is (mode == "required")
    assert result["problems"][0]["code"] == "model_not_installed"
    assert "phi3:mini" in result["diagnosis"] and "GET /api/tags does not list it" in result["diagnosis"]
    for name in ("ollama_gpu_probe_model", "ollama_models"):
        assert name in result["diagnosis"] + result["remedy"]
    assert sent(ollama, "POST", "/api/generate") == [] and sent(ollama, "POST", "/api/pull") == []
    assert len(warnings) == (mode == "auto")


def test_a_404_from_the_generate_is_a_missing_model(run):
    result = run((404, fixture("generate_not_found_404.json")), "ps_empty.json", mode="required")
    assert result["problems"][0]["code"] == "model_not_installed"
    assert "model 'qwen2.5:0.5b' not found" in result["diagnosis"]


def test_a_runner_that_dies_is_reported_with_ollamas_message(run):
    result = run((500, fixture("generate_runner_terminated_500.json")), "ps_empty.json", mode="required")
    assert result["failed"] and result["problems"][0]["code"] == "generate_failed"
    assert "HTTP 500: llama-server process has terminated: CUDA error" in result["diagnosis"]
    assert "docker logs" in result["remedy"]
    assert result["generated"] is False and result["metrics"] is None


def test_a_generate_slower_than_timeout_fails_naming_timeout(run):
    result = run((200, fixture("generate_gpu.json"), 2), "ps_full_gpu.json", mode="required", timeout=1)
    assert result["problems"][0]["code"] == "generate_failed"
    assert "within 1 seconds; raise timeout" in result["diagnosis"]


@pytest.mark.parametrize("mode", ["required", "auto"])
def test_unreachable_ollama(run_module, warnings, mode):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_module(ollama_inference_gate, {"url": "http://127.0.0.1:%d" % port, "model": PROBE, "mode": mode})
    assert result["failed"] is (mode == "required")
    assert result["problems"][0]["code"] == "ollama_unreachable"
    assert "GET http://127.0.0.1:%d/api/tags" % port in result["diagnosis"]
    assert "ollama_models_url" in result["remedy"]


def test_something_else_at_url_is_not_ollama(run, ollama):
    ollama.routes[("GET", "/api/tags")] = (200, b"<html>login</html>")
    result = run(mode="required")
    assert result["problems"][0]["code"] == "ollama_error" and "<html>login</html>" in result["diagnosis"]


def test_invalid_model_name_and_options(run):
    assert "ollama_gpu_probe_model" in run(model="bad name!")["msg"]
    assert run(num_predict=0)["failed"]


# --- check mode ---------------------------------------------------------------------------------------------------


def test_check_mode_sends_no_generate_and_reads_a_loaded_model(run, ollama):
    result = run("generate_gpu.json", "ps_partial.json", mode="required", _ansible_check_mode=True)
    assert sent(ollama, "POST", "/api/generate") == []
    assert result["checked"] and not result["generated"] and result["metrics"] is None
    assert result["failed"] and result["problems"][0]["code"] == "partial_offload"


def test_check_mode_with_the_model_not_loaded_checks_nothing(run, ollama, warnings):
    result = run("generate_gpu.json", "ps_empty.json", mode="required", _ansible_check_mode=True)
    assert not result["failed"] and not result["checked"] and result["problems"] == []
    assert result["summary"] == "qwen2.5:0.5b: not loaded (check mode: no generate sent)"
    result = run(model="phi3:mini", mode="required", _ansible_check_mode=True)
    assert not result["failed"] and "not installed" in warnings[0]
    assert sent(ollama, "POST", "/api/generate") == []


# --- the pure logic on the fixtures -------------------------------------------------------------------------------


@pytest.mark.parametrize("size, vram, shown, code", [
    (100, 100, "100% GPU", None),
    (100, 0, "100% CPU", "cpu_only"),
    (0, 0, "100% CPU", "cpu_only"),
    (100, 101, "Unknown", "offload_unknown"),
    (100, 52, "48%/52% CPU/GPU", "partial_offload"),
    (1141334016, 401604608, "65%/35% CPU/GPU", "partial_offload"),
])
def test_placement_is_what_ollama_ps_prints(size, vram, shown, code):
    placed = gate.offload({"size": size, "size_vram": vram})
    assert placed["processor"] == shown and placed["code"] == code


def test_missing_sizes_are_unknown():
    assert gate.offload({"size": "x"})["code"] == "offload_unknown"
    assert gate.offload({})["processor"] == "100% CPU"  # both omitted: Go's zero values


def test_streamed_generate_gives_the_same_counters_as_the_non_streamed_one():
    lines = [json.loads(line) for line in fixture("generate_stream_gpu.ndjson").splitlines()]
    final = gate.final_response(lines)
    assert gate.generate_metrics(final) == gate.generate_metrics(json.loads(fixture("generate_gpu.json")))
    with pytest.raises(ValueError, match="CUDA error"):
        gate.final_response(lines[:1] + [json.loads(fixture("generate_runner_terminated_500.json"))])


def test_omitted_counters_give_no_rate():
    # Metrics fields are omitempty (api/types.go:557-564): a reply without them is zero, not an error.
    metrics = gate.generate_metrics({"model": PROBE, "done": True, "done_reason": "load"})
    assert metrics["eval_count"] == 0 and metrics["tokens_per_second"] is None
    assert gate.rate(None, 5) is None and gate.rate(3, 0) is None and gate.rate(2, 1_000_000_000) == 2.0


def test_every_code_has_a_diagnosis_and_a_remedy():
    for code in gate.PROBLEMS:
        problem = gate.make_problem(code, "(detail)")
        assert problem["diagnosis"].startswith(code + ": ") and problem["diagnosis"].endswith("(detail).")
        assert problem["remedy"].endswith(".")
    assert set(gate.OFFLOAD_CODES) <= set(gate.PROBLEMS)


# --- against the labelled stand-in --------------------------------------------------------------------------------


@pytest.fixture
def standin(tmp_path):
    for url in run_ollama_standin(tmp_path, tmp_path, OLLAMA_STANDIN_OFFLOAD="partial"):
        yield url, tmp_path


def _post(url, path, payload):
    request = urllib.request.Request(url + path, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


def test_the_standin_answers_generate_and_ps_in_ollamas_shapes(run_module, standin, warnings):
    url, models = standin
    args = {"url": url, "model": PROBE, "mode": "required"}
    assert run_module(ollama_inference_gate, args)["problems"][0]["code"] == "model_not_installed"
    _post(url, "/api/pull", {"model": PROBE, "stream": False})

    # The environment chose partial offload; the file overrides it for the next load.
    result = run_module(ollama_inference_gate, args)
    assert result["problems"][0]["code"] == "partial_offload" and result["processor"] == "40%/60% CPU/GPU"
    assert result["metrics"]["eval_count"] == 1 and result["metrics"]["tokens_per_second"] == 50.0

    for choice, code, processor in (("cpu", "cpu_only", "100% CPU"), ("full", None, "100% GPU")):
        _post(url, "/api/generate", {"model": PROBE, "keep_alive": 0})  # unload ("done_reason": "unload")
        (models / "standin-offload").write_text(choice + "\n")
        result = run_module(ollama_inference_gate, args)
        assert result["processor"] == processor and result["failed"] is (code is not None)
        assert [p["code"] for p in result["problems"]] == ([code] if code else [])

    # The streamed form: NDJSON chunks, the last one done with the counters.
    lines = [json.loads(line) for line in _post(url, "/api/generate", {
        "model": PROBE, "prompt": "hi there", "options": {"num_predict": 3}}).splitlines()]
    assert [line["done"] for line in lines] == [False, False, False, True]
    metrics = gate.generate_metrics(gate.final_response(lines))
    assert metrics["eval_count"] == 3 and metrics["prompt_eval_count"] == 2 and metrics["done_reason"] == "length"

    # keep_alive 0 on an empty prompt unloads: /api/ps no longer lists it.
    assert json.loads(_post(url, "/api/generate", {"model": PROBE, "keep_alive": 0}))["done_reason"] == "unload"
    with urllib.request.urlopen(url + "/api/ps", timeout=5) as response:
        assert json.load(response) == {"models": []}
