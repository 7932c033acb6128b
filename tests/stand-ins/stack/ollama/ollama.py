"""STAND-IN for tests: imitates the `ollama` binary of ollama/ollama:0.32.15.

Not Ollama: no model is ever downloaded or run. `ollama serve` answers the
HTTP API that the homelab role and its health checks touch, on $OLLAMA_HOST
(the image sets 0.0.0.0:11434):
  GET /              "Ollama is running"
  GET /api/version   {"version": "0.32.15"}
  GET /api/tags      {"models": [...]}, read from the manifests on disk
  GET /api/ps        {"models": []}
  POST /api/pull     streams JSON progress lines, then writes a fake manifest
  DELETE /api/delete removes the manifest; 404 when the model is not there
Manifests live in the real layout under $OLLAMA_MODELS (default
~/.ollama/models, i.e. /root/.ollama/models): manifests/<host>/<namespace>/
<model>/<tag>, so pulled models survive a container re-create when the data
directory is a bind mount. No blobs are written.
The command line supports `ollama --version`, `ollama list`, `ollama pull`,
`ollama rm` and `ollama serve`. Like the real image there is no curl here,
so a health check has to use `ollama list` or `ollama --version`.
"""

import datetime
import hashlib
import json
import os
import sys
from pathlib import Path

from standin_http import BadRequest, http_call, log, serve, split_hostport

VERSION = "0.32.15"
SERVICE = "ollama"
DEFAULT_REGISTRY = "registry.ollama.ai"
FAKE_LAYER_SIZE = 4_000_000


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


ROUTES = {
    ("GET", "/"): lambda handler: (200, "Ollama is running"),
    ("GET", "/api/version"): lambda handler: (200, {"version": VERSION}),
    ("GET", "/api/tags"): lambda handler: (200, {"models": list_models()}),
    ("GET", "/api/ps"): lambda handler: (200, {"models": []}),
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
