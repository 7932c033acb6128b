#!/usr/bin/python
#
# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: ollama_inference_gate

short_description: Prove that Ollama runs a model on the GPU, wholly in VRAM

version_added: 1.0.0

author:
  - homelab.core maintainers (@homelab-core)

description:
  - Loads one small, already installed model on an Ollama server with a short C(POST /api/generate) (not streamed,
    O(num_predict) tokens), then reads C(GET /api/ps) and checks that the model is wholly in VRAM
    (C(size_vram) equals C(size)), which is what C(ollama ps) shows as C(100% GPU).
  - Reports the generate's own counters and the rates computed from them, as Ollama's API documentation says
    (C(eval_count) / C(eval_duration) * 10^9 tokens per second, and the same for the prompt).
  - The model is never pulled. C(GET /api/tags) must list it, else the result names the model, C(ollama_models) and
    C(ollama_gpu_probe_model).
  - Every finding comes with a machine-readable code, a diagnosis and a remedy, in the style of
    M(homelab.core.gpu_info) - V(ollama_unreachable), V(ollama_error), V(model_not_installed), V(generate_failed),
    V(model_not_loaded), V(cpu_only), V(partial_offload), V(offload_unknown).
  - With O(mode=required) the first finding fails the task; with O(mode=auto) every finding is a warning and the task
    passes.
  - Written from Ollama 0.32.15 (C(api/types.go) GenerateResponse, Metrics, ProcessModelResponse;
    C(server/routes.go) GenerateHandler and PsHandler; C(cmd/cmd.go) for C(ollama ps)).

attributes:
  check_mode:
    support: partial
    description: Can run in check_mode and return changed status prediction without modifying target.
    details:
      - In check mode no generate is sent, because it would load the model into memory. Only C(/api/tags) and
        C(/api/ps) are read; when the model is already loaded its placement is checked, otherwise RV(checked) is
        V(false) and nothing is reported as a problem (a deploy in check mode may not have pulled the model yet).
  diff_mode:
    support: none
    description: Returns no diff; nothing is changed.
  idempotent:
    support: full
    description: Never reports a change. The generate only loads the model into memory, as any request would.

options:
  url:
    description:
      - Base URL of the Ollama API as this host reaches it.
    type: str
    default: http://127.0.0.1:11434
  model:
    description:
      - The model to load, as V(model:tag) (see M(homelab.core.ollama_model) for the name forms). It must be installed.
      - Choose a small one that fits the GPU's VRAM with room to spare, or the check reports a partial offload.
    type: str
    required: true
  mode:
    description:
      - V(required) fails the task on any finding; V(auto) warns and passes. Same meaning as C(homelab_gpu_mode).
    type: str
    choices: [required, auto]
    default: auto
  expect_gpu:
    description:
      - Whether the model must be in VRAM. With V(false) (a CPU-only host) the placement and speed are reported but
        never a finding; only an unreachable Ollama, a missing model or a failed generate are.
    type: bool
    default: true
  num_predict:
    description:
      - Tokens the generate may produce (C(options.num_predict)). One token proves that the model runs and keeps the
        check short; the tokens-per-second figure of a single token is coarse, so raise this (for example to V(32))
        for a throughput figure.
    type: int
    default: 1
  keep_alive:
    description:
      - How long Ollama keeps the model loaded after the generate (the request's C(keep_alive)), so that
        C(GET /api/ps) still lists it when it is read. Ollama's own default is V(5m); V(0) would unload it at once.
    type: str
    default: 5m
  timeout:
    description:
      - Seconds the generate may take, loading the model included. The reads of C(/api/tags) and C(/api/ps) wait at
        most 30 seconds.
    type: int
    default: 300
  validate_certs:
    description:
      - Verify the TLS certificate when O(url) is C(https).
    type: bool
    default: true

notes:
  - C(size_vram) is the sum of every GPU's buffers, so a model split over several GPUs is wholly in VRAM when
    C(size_vram) equals C(size). When Ollama cannot read llama-server's buffer sizes it falls back to the file size for
    both (C(llm/llama_server.go) MemorySize), which this check cannot tell from a real full offload.
  - The model stays loaded for O(keep_alive) afterwards, as after any request.
seealso:
  - module: homelab.core.gpu_info
  - module: homelab.core.ollama_model
"""

EXAMPLES = r"""
- name: Prove that the probe model runs on the GPU
  homelab.core.ollama_inference_gate:
    url: http://127.0.0.1:11434
    model: qwen2.5:0.5b
    mode: required

- name: Measure the speed too, warning only
  homelab.core.ollama_inference_gate:
    model: llama3.2:1b
    mode: auto
    num_predict: 32
  register: gate

- name: Show the result
  ansible.builtin.debug:
    msg: "{{ gate.summary }}"
"""

RETURN = r"""
model:
  description: The model name as Ollama lists it.
  returned: always
  type: str
  sample: qwen2.5:0.5b
checked:
  description: Whether the placement was read (the model was loaded when C(/api/ps) was read).
  returned: always
  type: bool
generated:
  description: Whether the generate answered.
  returned: always
  type: bool
gpu_ok:
  description: V(true) when C(/api/ps) lists the model with C(size_vram) equal to C(size).
  returned: always
  type: bool
processor:
  description: What C(ollama ps) prints for the model - V(100% GPU), V(100% CPU), V(48%/52% CPU/GPU) or V(Unknown);
    V(null) when it was not loaded.
  returned: always
  type: str
  sample: 100% GPU
size:
  description: Bytes the loaded model takes (C(size) of C(/api/ps)); V(null) when it was not loaded.
  returned: always
  type: int
  sample: 1141334016
size_vram:
  description: Bytes of it in VRAM (C(size_vram) of C(/api/ps)); V(null) when it was not loaded.
  returned: always
  type: int
  sample: 1141334016
offload_percent:
  description: C(size_vram) as a percentage of C(size); V(null) when unknown.
  returned: always
  type: float
  sample: 100.0
context_length:
  description: Context length the model was loaded with (C(/api/ps)).
  returned: when loaded
  type: int
expires_at:
  description: When Ollama will unload the model (C(/api/ps)).
  returned: when loaded
  type: str
other_loaded:
  description: Other models C(/api/ps) lists; they share the VRAM.
  returned: always
  type: list
  elements: str
metrics:
  description:
    - The generate's counters (durations in nanoseconds, V(0) when Ollama left them out) and the rates computed from
      them; V(null) when no generate answered.
  returned: always
  type: dict
  sample:
    total_duration: 1843221875
    load_duration: 1650331209
    prompt_eval_count: 35
    prompt_eval_duration: 21876000
    eval_count: 1
    eval_duration: 6543000
    done_reason: length
    tokens_per_second: 152.84
    prompt_tokens_per_second: 1599.93
summary:
  description: One line - where the model runs and how fast it answered.
  returned: always
  type: str
  sample: "qwen2.5:0.5b: 100% GPU, 100.0% in VRAM (1.1 GiB of 1.1 GiB), 152.84 tokens/s generated (1 in 0.007 s)"
problems:
  description: Every finding, in the order found.
  returned: always
  type: list
  elements: dict
  contains:
    code:
      description: Machine-readable code.
      type: str
    diagnosis:
      description: The code, a colon, then what is wrong, with the numbers or Ollama's message that show it.
      type: str
    remedy:
      description: What to do about it.
      type: str
diagnosis:
  description: Diagnosis of the first finding; V(null) when there is none.
  returned: always
  type: str
remedy:
  description: Remedy of the first finding; V(null) when there is none.
  returned: always
  type: str
"""

import http.client
import json
import socket
import urllib.error

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.homelab.core.plugins.module_utils._answers import answer_message
from ansible_collections.homelab.core.plugins.module_utils._inference_gate import (
    find_loaded,
    generate_metrics,
    make_problem,
    offload,
    offload_problem,
    summary,
)
from ansible_collections.homelab.core.plugins.module_utils._ollama import find_installed, parse_name

PROMPT = "Reply with one word: ready"
READ_TIMEOUT = 30


class GateError(Exception):
    """One finding that ends the check; holds its problem dict."""

    def __init__(self, problem):
        super().__init__(problem["diagnosis"])
        self.problem = problem


class Gate:
    def __init__(self, module, name):
        self.module = module
        self.params = module.params
        self.name = name
        self.url = self.params["url"].rstrip("/")

    def _request(self, method, path, payload=None, timeout=READ_TIMEOUT):
        """(status, body bytes); GateError when Ollama cannot be reached or does not answer in time."""
        data = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            with open_url(self.url + path, data=data, headers=headers, method=method, timeout=timeout,
                          validate_certs=self.params["validate_certs"], follow_redirects="none") as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (socket.timeout, TimeoutError):
            code = "generate_failed" if path == "/api/generate" else "ollama_unreachable"
            raise GateError(make_problem(code, "(%s %s%s gave no answer within %d seconds; raise timeout for a model "
                                               "that loads slowly)" % (method, self.url, path, timeout))) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", None) or error
            raise GateError(make_problem("ollama_unreachable", "(%s %s%s: %s)" % (method, self.url, path, reason))) \
                from None

    def _json(self, method, path, payload=None, timeout=READ_TIMEOUT):
        """(status, body bytes, decoded JSON or None)."""
        status, body = self._request(method, path, payload, timeout)
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        return status, body, data

    def _list(self, path):
        """The "models" list of /api/tags or /api/ps (api/types.go ListResponse, ProcessResponse)."""
        status, body, data = self._json("GET", path)
        if status == 200 and isinstance(data, dict) and isinstance(data.get("models", []) or [], list):
            return data.get("models") or []
        raise GateError(make_problem("ollama_error", "(GET %s%s: HTTP %s, %s)" % (self.url, path, status,
                                                                                  answer_message(body, "error"))))

    def generate(self):
        """The GenerateResponse of a non-streamed generate (server/routes.go:750-789: the last chunk, done=true)."""
        payload = {"model": self.name, "prompt": PROMPT, "stream": False, "keep_alive": self.params["keep_alive"],
                   "options": {"num_predict": self.params["num_predict"]}}
        status, body, data = self._json("POST", "/api/generate", payload, timeout=self.params["timeout"])
        if status == 200 and isinstance(data, dict) and data.get("done"):
            return data
        if status == 404:
            raise GateError(self.not_installed("POST /api/generate answered HTTP 404: %s" % answer_message(body, "error")))
        if status != 200:
            raise GateError(make_problem("generate_failed", "(%s: POST /api/generate answered HTTP %s: %s)"
                                         % (self.name, status, answer_message(body, "error"))))
        raise GateError(make_problem("ollama_error", "(POST /api/generate answered 200 without done=true: %s)"
                                     % answer_message(body, "error")))

    def not_installed(self, detail):
        return make_problem("model_not_installed", "(%s on %s: %s; it is the ollama_gpu_probe_model and must be in "
                                                   "ollama_models)" % (self.name, self.url, detail))

    def run(self):
        result = {"model": self.name, "checked": False, "generated": False, "gpu_ok": False, "processor": None,
                  "size": None, "size_vram": None, "offload_percent": None, "other_loaded": [], "metrics": None}
        problems = []
        placed = None
        try:
            if find_installed(parse_name(self.name), self._list("/api/tags")) is None:
                if not self.module.check_mode:
                    raise GateError(self.not_installed("GET /api/tags does not list it"))
                self.module.warn("%s is not installed on %s (yet); in check mode nothing is pulled or loaded, so the "
                                 "inference gate is not checked." % (self.name, self.url))
                return self.finish(result, problems, placed)
            if not self.module.check_mode:
                result["metrics"] = generate_metrics(self.generate())
                result["generated"] = True
            loaded = self._list("/api/ps")
            entry = find_loaded(self.name, loaded)
            result["other_loaded"] = [str(item.get("name") or item.get("model")) for item in loaded
                                      if isinstance(item, dict) and item is not entry]
            if entry is None:
                if result["generated"]:
                    raise GateError(make_problem("model_not_loaded", "(%s; GET /api/ps lists %s)" % (
                        self.name, ", ".join(result["other_loaded"]) or "no model")))
                return self.finish(result, problems, placed)
            placed = offload(entry)
            result.update(checked=True, model=str(entry.get("name") or self.name), size=placed["size"],
                          size_vram=placed["size_vram"], offload_percent=placed["offload_percent"],
                          processor=placed["processor"], gpu_ok=placed["code"] is None,
                          context_length=entry.get("context_length"), expires_at=entry.get("expires_at"))
            problem = offload_problem(result["model"], placed, result["other_loaded"])
            if problem is not None and self.params["expect_gpu"]:
                problems.append(problem)
        except GateError as error:
            problems.append(error.problem)
        return self.finish(result, problems, placed)

    def finish(self, result, problems, placed):
        module = self.module
        result["summary"] = summary(result["model"], placed, result["metrics"])
        if module.check_mode and not result["checked"]:
            result["summary"] += " (check mode: no generate sent)"
        result["problems"] = problems
        result["diagnosis"] = problems[0]["diagnosis"] if problems else None
        result["remedy"] = problems[0]["remedy"] if problems else None
        if problems and self.params["mode"] == "required":
            module.fail_json(msg="%s %s" % (result["diagnosis"], result["remedy"]), changed=False, **result)
        for problem in problems:
            module.warn("%s %s" % (problem["diagnosis"], problem["remedy"]))
        module.exit_json(changed=False, **result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", default="http://127.0.0.1:11434"),
            model=dict(type="str", required=True),
            mode=dict(type="str", choices=["required", "auto"], default="auto"),
            expect_gpu=dict(type="bool", default=True),
            num_predict=dict(type="int", default=1),
            keep_alive=dict(type="str", default="5m"),
            timeout=dict(type="int", default=300),
            validate_certs=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if module.params["timeout"] <= 0 or module.params["num_predict"] <= 0:
        module.fail_json(msg="timeout and num_predict must be positive numbers.")
    try:
        name = parse_name(module.params["model"]).shortest
    except ValueError as error:
        module.fail_json(msg="Invalid model: %s; set ollama_gpu_probe_model to a model that ollama_models lists."
                         % error)
    Gate(module, name).run()


if __name__ == "__main__":
    main()
