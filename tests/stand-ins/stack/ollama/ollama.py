"""STAND-IN for tests: imitates the `ollama` binary of ollama/ollama:0.32.15.

Not Ollama: no model is ever downloaded or run. `ollama serve` answers the
HTTP API that the homelab role and its health checks touch, on $OLLAMA_HOST
(the image sets 0.0.0.0:11434):
  GET /              "Ollama is running"
  GET /api/version   {"version": "0.32.15"}
  GET /api/tags      {"models": [...]}, read from the manifests on disk
  GET /api/ps        the models "loaded" by a generate, with size and size_vram
  POST /api/generate a canned reply (streamed NDJSON, or one object with "stream": false)
                     with made-up counters; it "loads" the model for keep_alive (default 5m)
  POST /api/chat     a canned, non-streamed reply
  POST /api/pull     streams JSON progress lines, then writes a fake manifest
  DELETE /api/delete removes the manifest; 404 when the model is not there
Manifests live in the real layout under $OLLAMA_MODELS (default
~/.ollama/models, i.e. /root/.ollama/models): manifests/<host>/<namespace>/
<model>/<tag>, so pulled models survive a container re-create when the data
directory is a bind mount. No blobs are written.
The command line supports `ollama --version`, `ollama list`, `ollama pull`,
`ollama rm` and `ollama serve`. Like the real image there is no curl here,
so a health check has to use `ollama list` or `ollama --version`.

Where a "loaded" model runs is chosen, not found out: the file
$OLLAMA_MODELS/standin-offload (read at each generate, so `docker exec` can
change it), else $OLLAMA_STANDIN_OFFLOAD, holds `full` (size_vram == size),
`partial` (60% in VRAM) or `cpu` (size_vram 0). Without either: `full` when
Docker handed the container a GPU (NVIDIA_VISIBLE_DEVICES from its nvidia device
driver, or the gpu-sim stand-in CDI spec's HOMELAB_STANDIN_CDI_GPU), else `cpu`,
as a real Ollama without a GPU runs on the CPU (this image sets neither variable
itself). A loaded model keeps its placement until it is unloaded (empty prompt,
keep_alive 0). Response shapes follow
ollama v0.32.15: api/types.go GenerateResponse (891-930) with Metrics
(557-564), ProcessModelResponse (835-844); server/routes.go GenerateHandler
(404 for a model that is not installed, 279-282; "load"/"unload" for an empty
prompt, 403-486; stream false, 750-789) and PsHandler (2271-2303).
"""

import datetime
import hashlib
import json
import os
import re
import sys
import threading
import time
from pathlib import Path

from standin_http import BadRequest, http_call, log, serve, split_hostport

VERSION = "0.32.15"
SERVICE = "ollama"
DEFAULT_REGISTRY = "registry.ollama.ai"
FAKE_LAYER_SIZE = 4_000_000
OFFLOAD_VRAM_SHARE = {"full": 1.0, "partial": 0.6, "cpu": 0.0}
FOREVER = 10 ** 9  # seconds: keep_alive < 0 keeps the model loaded (api/types.go Duration.UnmarshalJSON)
LOADED = {}  # display name -> {"until": epoch seconds, "vram_share": float}
LOADED_LOCK = threading.Lock()


def models_dir():
    return Path(os.environ.get("OLLAMA_MODELS") or Path.home() / ".ollama" / "models")


def parse_name(name):
    """'llama3' -> (registry.ollama.ai, library, llama3, latest); 'ns/m:tag'; 'host/ns/m:tag'."""
    name = (name or "").strip()
    base, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:
        base, tag = name, "latest"
    parts = base.split("/")
    parts = [DEFAULT_REGISTRY, "library", *parts] if len(parts) == 1 else parts
    parts = [DEFAULT_REGISTRY, *parts] if len(parts) == 2 else parts
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789._-")
    if len(parts) != 3 or not all(part and set(part.lower()) <= allowed for part in (*parts, tag)):
        raise BadRequest("invalid model name")
    return (*parts, tag)


def display_name(host, namespace, model, tag):
    if host != DEFAULT_REGISTRY:
        return f"{host}/{namespace}/{model}:{tag}"
    return f"{model}:{tag}" if namespace == "library" else f"{namespace}/{model}:{tag}"


def manifest_path(parts):
    return models_dir().joinpath("manifests", *parts)


def list_models():
    root = models_dir() / "manifests"
    models = []
    for path in sorted(root.glob("*/*/*/*")) if root.is_dir() else []:
        raw = path.read_bytes()
        manifest = json.loads(raw)
        name = display_name(*path.relative_to(root).parts)
        modified = datetime.datetime.fromtimestamp(path.stat().st_mtime, datetime.timezone.utc)
        models.append({
            "name": name,
            "model": name,
            "modified_at": modified.isoformat(),
            "size": sum(layer["size"] for layer in manifest["layers"]),
            "digest": hashlib.sha256(raw).hexdigest(),
            "details": {"format": "gguf", "family": "stand-in", "parameter_size": "0B",
                        "quantization_level": "none"},
        })
    return models


def write_manifest(parts):
    layer_digest = "sha256:" + hashlib.sha256("/".join(parts).encode()).hexdigest()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": "sha256:" + hashlib.sha256(b"stand-in config").hexdigest(), "size": 2},
        "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": layer_digest,
                    "size": FAKE_LAYER_SIZE}],
        "standin": "STAND-IN for tests: no model data was downloaded",
    }
    path = manifest_path(parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest))
    return layer_digest


def pull(handler):
    body = handler.json_body()
    parts = parse_name(body.get("model") or body.get("name"))
    digest = write_manifest(parts)
    events = [
        {"status": "pulling manifest"},
        {"status": f"pulling {digest[7:19]}", "digest": digest, "total": FAKE_LAYER_SIZE, "completed": 0},
        {"status": f"pulling {digest[7:19]}", "digest": digest, "total": FAKE_LAYER_SIZE,
         "completed": FAKE_LAYER_SIZE},
        {"status": "verifying sha256 digest"},
        {"status": "writing manifest"},
        {"status": "success"},
    ]
    if body.get("stream") is False:
        return 200, events[-1]
    handler.start_stream(200, "application/x-ndjson")
    for event in events:
        handler.wfile.write(json.dumps(event).encode() + b"\n")
        handler.wfile.flush()
    return None


def delete(handler):
    body = handler.json_body()
    name = body.get("model") or body.get("name")
    path = manifest_path(parse_name(name))
    if not path.is_file():
        return 404, {"error": f"model '{name}' not found"}
    path.unlink()
    return 200, ""


def chat(handler):
    """A canned, non-streamed reply for any valid model name; no model is loaded or run (STAND-IN)."""
    body = handler.json_body()
    parse_name(body.get("model"))
    return 200, {"model": body.get("model"), "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                 "message": {"role": "assistant", "content": "STAND-IN reply from ollama"},
                 "done": True, "done_reason": "stop", "prompt_eval_count": 1, "eval_count": 1}


def gpu_handed_over():
    """Whether Docker gave this container a GPU: its nvidia device driver sets NVIDIA_VISIBLE_DEVICES to the
    requested IDs (moby daemon/nvidia_linux.go), the gpu-sim stand-in CDI spec sets HOMELAB_STANDIN_CDI_GPU."""
    visible = os.environ.get("NVIDIA_VISIBLE_DEVICES", "")
    return bool(os.environ.get("HOMELAB_STANDIN_CDI_GPU")) or visible not in ("", "void", "none")


def offload_choice():
    """The share of a loaded model that the stand-in reports in VRAM (see the module docstring)."""
    path = models_dir() / "standin-offload"
    choice = (path.read_text().strip() if path.is_file() else os.environ.get("OLLAMA_STANDIN_OFFLOAD", "")) or (
        "full" if gpu_handed_over() else "cpu")
    if choice not in OFFLOAD_VRAM_SHARE:
        raise BadRequest(f"STAND-IN: offload choice {choice!r} is not one of full, partial, cpu")
    return OFFLOAD_VRAM_SHARE[choice]


def keep_alive_seconds(value):
    """keep_alive as api.Duration reads it: a number of seconds or a Go duration string; < 0 means forever."""
    if value is None:
        return 300.0
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        units = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
        sign, text = (-1.0, value[1:]) if value.startswith("-") else (1.0, value.lstrip("+"))
        parts = re.findall(r"(\d+(?:\.\d*)?)(ns|us|ms|s|m|h)", text)
        if text == "0":
            parts = [("0", "s")]
        if not parts or "".join(number + unit for number, unit in parts) != text:
            raise BadRequest(f'time: invalid duration "{value}"')
        seconds = sign * sum(float(number) * units[unit] for number, unit in parts)
    else:
        raise BadRequest(f"Unsupported type: '{type(value).__name__}'")
    return FOREVER if seconds < 0 else seconds


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def installed_entry(name):
    """(display name, /api/tags entry) of an installed model; 404 body when it is not installed."""
    try:
        parts = parse_name(name)
    except BadRequest:
        return None, None
    wanted = display_name(*parts)
    for entry in list_models():
        if entry["name"] == wanted:
            return wanted, entry
    return wanted, None


def generate(handler):
    """POST /api/generate: no model runs (STAND-IN); the reply and its counters are made up."""
    body = handler.json_body()
    name, entry = installed_entry(body.get("model"))
    if entry is None:
        return 404, {"error": f"model '{body.get('model')}' not found"}
    keep = keep_alive_seconds(body.get("keep_alive"))
    prompt = body.get("prompt") or ""
    with LOADED_LOCK:
        if not prompt and keep == 0:
            LOADED.pop(name, None)
            return 200, {"model": body.get("model"), "created_at": now_iso(), "response": "", "done": True,
                         "done_reason": "unload"}
        loading = name not in LOADED
        share = offload_choice() if loading else LOADED[name]["vram_share"]
        LOADED[name] = {"until": time.time() + keep, "vram_share": share}
    load_ns = 1_500_000_000 if loading else 120_000
    if not prompt:
        return 200, {"model": body.get("model"), "created_at": now_iso(), "response": "", "done": True,
                     "done_reason": "load"}
    options = body.get("options") or {}
    predict = options.get("num_predict")
    words = ["STAND-IN", " reply", " from", " ollama"]
    count = len(words) if not isinstance(predict, int) or predict <= 0 else min(predict, len(words))
    prompt_count = max(1, len(prompt.split()))
    per_token_ns = 20_000_000 if share < 1 else 5_000_000  # made up: slower when not all in VRAM
    chunks = [{"model": body.get("model"), "created_at": now_iso(), "response": word, "done": False}
              for word in words[:count]]
    final = {"model": body.get("model"), "created_at": now_iso(), "response": "", "done": True,
             "done_reason": "length" if count < len(words) else "stop", "context": list(range(1, prompt_count + 1)),
             "total_duration": load_ns + (prompt_count + count) * per_token_ns, "load_duration": load_ns,
             "prompt_eval_count": prompt_count, "prompt_eval_duration": prompt_count * per_token_ns // 4,
             "eval_count": count, "eval_duration": count * per_token_ns}
    if body.get("stream") is False:
        final["response"] = "".join(words[:count])
        return 200, final
    handler.start_stream(200, "application/x-ndjson")
    for chunk in [*chunks, final]:
        handler.wfile.write(json.dumps(chunk).encode() + b"\n")
        handler.wfile.flush()
    return None


def ps(_handler):
    """GET /api/ps: the models a generate "loaded" and whose keep_alive has not run out."""
    tags = {entry["name"]: entry for entry in list_models()}
    models = []
    with LOADED_LOCK:
        for name, state in list(LOADED.items()):
            if state["until"] <= time.time() or name not in tags:
                LOADED.pop(name)
                continue
            size = tags[name]["size"] + 2_000_000  # weights plus a made-up KV cache
            until = datetime.datetime.fromtimestamp(min(state["until"], 253402300799), datetime.timezone.utc)
            models.append({"name": name, "model": name, "size": size, "digest": tags[name]["digest"],
                           "details": {"parent_model": "", "format": "gguf", "family": "stand-in",
                                       "families": ["stand-in"], "parameter_size": "0B",
                                       "quantization_level": "none"},
                           "expires_at": until.isoformat().replace("+00:00", "Z"),
                           "size_vram": int(size * state["vram_share"]), "context_length": 4096})
    models.sort(key=lambda model: model["expires_at"], reverse=True)
    return 200, {"models": models}


ROUTES = {
    ("GET", "/"): lambda handler: (200, "Ollama is running"),
    ("GET", "/api/version"): lambda handler: (200, {"version": VERSION}),
    ("GET", "/api/tags"): lambda handler: (200, {"models": list_models()}),
    ("GET", "/api/ps"): ps,
    ("POST", "/api/generate"): generate,
    ("POST", "/api/pull"): pull,
    ("POST", "/api/chat"): chat,
    ("DELETE", "/api/delete"): delete,
}


def client_url(path):
    host, port = split_hostport(os.environ.get("OLLAMA_HOST"), "127.0.0.1", 11434)
    return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}{path}"


def client_call(method, path, payload=None):
    try:
        return http_call(method, client_url(path), payload, timeout=30)
    except OSError:
        print("Error: could not connect to ollama app, is it running?", file=sys.stderr)
        sys.exit(1)


def cmd_version():
    try:
        http_call("GET", client_url("/api/version"))
        print(f"ollama version is {VERSION}")
    except OSError:
        print("Warning: could not connect to a running Ollama instance")
        print(f"Warning: client version is {VERSION}")
    return 0


def cmd_list():
    status, text = client_call("GET", "/api/tags")
    if status != 200:
        print(f"Error: {text}", file=sys.stderr)
        return 1
    print(f"{'NAME':<32}{'ID':<16}{'SIZE':<10}MODIFIED")
    for model in json.loads(text)["models"]:
        size = f"{model['size'] / 1e6:.1f} MB"
        print(f"{model['name']:<32}{model['digest'][:12]:<16}{size:<10}{model['modified_at']}")
    return 0


def cmd_model(method, path, name):
    status, text = client_call(method, path, {"model": name, "stream": False})
    if status != 200:
        print(f"Error: {json.loads(text or '{}').get('error', text)}", file=sys.stderr)
        return 1
    print("success" if method == "POST" else f"deleted '{name}'")
    return 0


def cmd_serve():
    host, port = split_hostport(os.environ.get("OLLAMA_HOST"), "127.0.0.1", 11434)
    log(SERVICE, f"STAND-IN ollama {VERSION}; models in {models_dir()} (no real inference)")
    serve(SERVICE, [(host, port, ROUTES)])
    return 0


def main(argv):
    command, args = (argv[0], argv[1:]) if argv else ("help", [])
    if command in ("-v", "--version"):
        return cmd_version()
    if command == "serve":
        return cmd_serve()
    if command in ("list", "ls"):
        return cmd_list()
    if command == "pull" and len(args) == 1:
        return cmd_model("POST", "/api/pull", args[0])
    if command == "rm" and len(args) == 1:
        return cmd_model("DELETE", "/api/delete", args[0])
    if command in ("help", "-h", "--help"):
        print("Usage: ollama [serve|list|pull MODEL|rm MODEL|--version]  (STAND-IN for tests)")
        return 0
    print(f'Error: unknown command "{command}" for "ollama" (STAND-IN supports serve, list, pull, rm, '
          '--version)', file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
