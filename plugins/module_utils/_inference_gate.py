# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic of the ollama_inference_gate module: read /api/generate and /api/ps, diagnose the offload.

Private to homelab.core. Written from Ollama v0.32.15:
- api/types.go:557-564 Metrics (total_duration, load_duration, prompt_eval_count, prompt_eval_duration, eval_count,
  eval_duration: nanoseconds, all omitempty) embedded in GenerateResponse (api/types.go:891-930);
  server/routes.go:750-789 sends the last chunk (done=true, with the metrics) as one object when stream is false;
- api/types.go:817-819 ProcessResponse {"models": [...]} and api/types.go:835-844 ProcessModelResponse (name, model,
  size, digest, details, expires_at, size_vram, context_length);
- server/routes.go:2271-2303 PsHandler (name = DisplayShortest, size and size_vram from the runner);
- llm/llama_server.go:2636-2676 MemorySize (full layer offload is reported as size == size_vram) and 2820-2846 (the
  VRAM is the sum of every GPU buffer, so several GPUs still add up to size);
- cmd/cmd.go:1139-1151, how `ollama ps` turns size and size_vram into "100% GPU", "100% CPU" or "c%/g% CPU/GPU";
- docs/api.md:109 tokens per second = eval_count / eval_duration * 10^9.
"""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.module_utils._ollama import human_size, parse_name

NS_PER_S = 1e9

_LOG_HINT = ("read the ollama container's log ('docker logs <ollama container>'): the 'inference compute' lines at "
             "start-up name the GPUs Ollama found (library=cuda) or say library=cpu")

# code -> (what is wrong, remedy). The detail of each finding is appended to the first part.
PROBLEMS = {
    "ollama_unreachable": (
        "Ollama cannot be reached",
        "Check that the main stack's ollama service is running and healthy ('docker compose ps' in its project "
        "directory) and that url is Ollama's API as this host reaches it (ollama_models_url).",
    ),
    "ollama_error": (
        "Ollama answered with something that is not its API's reply",
        "Check that url points at Ollama itself and not at another service or a proxy in front of it.",
    ),
    "model_not_installed": (
        "The probe model is not installed, and the gate never pulls one",
        "Add the model to ollama_models and run playbooks/models.yml (or the deploy), or set ollama_gpu_probe_model "
        "to a small model that ollama_models already lists.",
    ),
    "generate_failed": (
        "Ollama could not run the probe model",
        "A runner that dies while loading usually means a driver/CUDA runtime problem or too little memory for the "
        "model: " + _LOG_HINT + ", and run scripts/gpu-check.sh on the host.",
    ),
    "model_not_loaded": (
        "The generate answered but GET /api/ps does not list the model",
        "Ollama unloaded it at once: check OLLAMA_KEEP_ALIVE (0 unloads after each request) and "
        "OLLAMA_MAX_LOADED_MODELS in the ollama service's environment, then run the gate again.",
    ),
    "cpu_only": (
        "The model runs 100% on the CPU",
        "The container does not use the GPU: check that the ollama service reserves it (the GPU decision is not "
        "'none' and 'docker inspect' of the container shows DeviceRequests or the CDI device), run "
        "scripts/gpu-check.sh for the driver, the NVIDIA Container Toolkit and the probe containers, and "
        + _LOG_HINT + ".",
    ),
    "partial_offload": (
        "The model is only partly in VRAM, the rest runs on the CPU",
        "The free VRAM is too small for this model with its context: choose a smaller model or quantization for "
        "ollama_gpu_probe_model, lower the context length (OLLAMA_CONTEXT_LENGTH), unload the other models listed "
        "in GET /api/ps, or stop other processes on the GPU (nvidia-smi).",
    ),
    "offload_unknown": (
        "GET /api/ps gives sizes that do not tell where the model runs",
        "Read 'ollama ps' inside the container (it prints 'Unknown' for such sizes) and " + _LOG_HINT + ".",
    ),
}

# Codes about where the model runs; only problems when a GPU is expected.
OFFLOAD_CODES = ("cpu_only", "partial_offload", "offload_unknown")


def make_problem(code, detail=None):
    """{code, diagnosis, remedy}: the diagnosis starts with the code, as homelab.core.gpu_info's do."""
    what, remedy = PROBLEMS[code]
    diagnosis = "%s: %s" % (code, what)
    if detail:
        diagnosis += " " + detail
    return {"code": code, "diagnosis": diagnosis.rstrip(".") + ".", "remedy": remedy}


def _int(value):
    """An integer field of Ollama's JSON (omitempty: absent means 0); None when it is not a number."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def rate(count, duration_ns):
    """Tokens per second from a count and a duration in nanoseconds; None when either is missing or zero."""
    count, duration_ns = _int(count), _int(duration_ns)
    if not count or not duration_ns or count < 0 or duration_ns < 0:
        return None
    return round(count * NS_PER_S / duration_ns, 2)


def generate_metrics(response):
    """The counters of a GenerateResponse (the final one, done=true) and the rates computed from them."""
    response = response if isinstance(response, dict) else {}
    metrics = {key: _int(response.get(key)) for key in (
        "total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_count", "eval_duration")}
    metrics["done_reason"] = response.get("done_reason")
    metrics["tokens_per_second"] = rate(metrics["eval_count"], metrics["eval_duration"])
    metrics["prompt_tokens_per_second"] = rate(metrics["prompt_eval_count"], metrics["prompt_eval_duration"])
    return metrics


def final_response(chunks):
    """The last chunk with done=true of a streamed /api/generate (NDJSON decoded), else None.

    A chunk with "error" (server/routes.go streamResponse) raises ValueError with Ollama's message.
    """
    final = None
    for chunk in chunks:
        if not isinstance(chunk, dict):
            continue
        if chunk.get("error"):
            raise ValueError(str(chunk["error"]))
        if chunk.get("done"):
            final = chunk
    return final


def find_loaded(model, models):
    """The /api/ps entry of `model` (a name string), or None; names compare the way Ollama normalises them."""
    key = parse_name(model).key
    for entry in models or []:
        if not isinstance(entry, dict):
            continue
        listed = entry.get("name") or entry.get("model")
        try:
            if parse_name(listed).key == key:
                return entry
        except ValueError:
            continue
    return None


def processor(size, size_vram):
    """What `ollama ps` prints in its PROCESSOR column for these sizes (cmd/cmd.go:1139-1151)."""
    if size_vram == 0:
        return "100% CPU"
    if size_vram == size:
        return "100% GPU"
    if size_vram > size or size == 0:
        return "Unknown"
    cpu_percent = int(round(float(size - size_vram) / size * 100))
    return "%d%%/%d%% CPU/GPU" % (cpu_percent, 100 - cpu_percent)


def offload(entry):
    """Sizes and placement of one /api/ps entry.

    Returns {size, size_vram, offload_percent, processor, code}: code is None when the model is wholly in VRAM
    (size_vram == size), else one of OFFLOAD_CODES.
    """
    size, size_vram = _int(entry.get("size")), _int(entry.get("size_vram"))
    if size is None or size_vram is None or size < 0 or size_vram < 0:
        return {"size": entry.get("size"), "size_vram": entry.get("size_vram"), "offload_percent": None,
                "processor": "Unknown", "code": "offload_unknown"}
    placed = processor(size, size_vram)
    percent = round(100.0 * size_vram / size, 1) if size and size_vram <= size else None
    if placed == "100% GPU":
        code = None
    elif placed == "100% CPU":
        code = "cpu_only"
    elif placed == "Unknown":
        code = "offload_unknown"
    else:
        code = "partial_offload"
    return {"size": size, "size_vram": size_vram, "offload_percent": percent, "processor": placed, "code": code}


def offload_problem(name, placed, others=None):
    """The problem for an offload that is not 100% GPU, with the numbers that show it; None when it is."""
    code = placed["code"]
    if code is None:
        return None
    size, vram = placed["size"], placed["size_vram"]
    if code == "offload_unknown":
        detail = "(%s: size %r, size_vram %r)" % (name, size, vram)
    else:
        detail = "(%s: %s of %s in VRAM, %s; 'ollama ps' says '%s')" % (
            name, human_size(vram), human_size(size),
            "size_vram %d of size %d bytes" % (vram, size), placed["processor"])
    if code == "partial_offload" and others:
        detail += "; also loaded: %s" % ", ".join(others)
    return make_problem(code, detail)


def summary(name, placed, metrics):
    """One line for the play's output: where the model runs and how fast it answered."""
    parts = ["%s: %s" % (name, placed["processor"] if placed else "not loaded")]
    if placed and placed.get("offload_percent") is not None:
        parts.append("%s%% in VRAM (%s of %s)" % (placed["offload_percent"], human_size(placed["size_vram"]),
                                                  human_size(placed["size"])))
    if metrics:
        if metrics.get("tokens_per_second") is not None:
            parts.append("%s tokens/s generated (%d in %.3f s)" % (
                metrics["tokens_per_second"], metrics["eval_count"], metrics["eval_duration"] / NS_PER_S))
        if metrics.get("prompt_tokens_per_second") is not None:
            parts.append("%s tokens/s prompt" % metrics["prompt_tokens_per_second"])
        if metrics.get("load_duration"):
            parts.append("loaded in %.1f s" % (metrics["load_duration"] / NS_PER_S))
    return ", ".join(parts)
