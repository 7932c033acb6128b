"""STAND-IN for tests: imitates the Open WebUI server of ghcr.io/open-webui/open-webui:v0.12.4.

Not Open WebUI: no chat, no users, no embedding models. Started by
/app/backend/start.sh from /app/backend, like the real image, on $HOST:$PORT
(0.0.0.0:8080). What it does like the real one:
  - when WEBUI_SECRET_KEY and WEBUI_JWT_SECRET_KEY are both empty, it reads the
    key from the file WEBUI_SECRET_KEY_FILE names (start.sh, since 0.6.14: CHANGELOG
    "Support for Secret Key File"; backend/start_windows.bat shows the semantics),
    by default ./.webui_secret_key (i.e. /app/backend/.webui_secret_key, NOT the
    data directory), generating it first when missing. The backend itself
    (backend/open_webui/env.py at v0.12.4, lines 768-796) refuses to start without a key
    when authentication is on, so the stand-in does too;
  - writes into $DATA_DIR (/app/backend/data) on start (webui.db-standin), so a
    data bind mount that is not writable makes it exit 1;
  - resolves OLLAMA_BASE_URLS (';'-separated) or OLLAMA_BASE_URL, where the
    image default "/ollama" means http://host.docker.internal:11434.
Endpoints: GET /health -> {"status": true}; GET /health/db; GET /api/version;
GET /api/config -> includes "ollama_base_url(s)" (stand-in only: the real
/api/config does not report them); GET /api/standin/ollama asks the first
Ollama URL for /api/version, to prove the network wiring.
"""

import base64
import datetime
import os
import sys
from pathlib import Path

from standin_http import exit_on_signals, fail, http_call, log, serve

VERSION = "0.12.4"
SERVICE = "open-webui"
KEY_FILE = Path(".webui_secret_key")


def load_secret_key():
    if os.environ.get("WEBUI_SECRET_KEY") or os.environ.get("WEBUI_JWT_SECRET_KEY"):
        return
    key_file = Path(os.environ.get("WEBUI_SECRET_KEY_FILE") or KEY_FILE)
    log(SERVICE, "Loading WEBUI_SECRET_KEY from file, not provided as an environment variable.")
    if not key_file.exists():
        log(SERVICE, "Generating WEBUI_SECRET_KEY")
        key_file.write_text(base64.b64encode(os.urandom(12)).decode() + "\n")
    log(SERVICE, f"Loading WEBUI_SECRET_KEY from {key_file.resolve()}")
    os.environ["WEBUI_SECRET_KEY"] = key_file.read_text().strip()
    if not os.environ["WEBUI_SECRET_KEY"]:
        fail(SERVICE, "WEBUI_SECRET_KEY is not set. It is a hard requirement when authentication is enabled.")


def ollama_urls():
    raw = os.environ.get("OLLAMA_BASE_URLS") or os.environ.get("OLLAMA_BASE_URL") or "/ollama"
    urls = [url.strip().rstrip("/") for url in raw.split(";") if url.strip()]
    return ["http://host.docker.internal:11434" if url == "/ollama" else url for url in urls]


def probe_ollama(_handler):
    url = ollama_urls()[0]
    try:
        status, text = http_call("GET", f"{url}/api/version", timeout=3)
    except OSError as error:
        return 200, {"url": url, "reachable": False, "error": str(error)}
    return 200, {"url": url, "reachable": status == 200, "status": status, "body": text}


def config(_handler):
    urls = ollama_urls()
    return 200, {"status": True, "name": "Open WebUI (STAND-IN)", "version": VERSION,
                 "ollama_base_url": urls[0], "ollama_base_urls": urls}


ROUTES = {
    ("GET", "/"): lambda handler: (200, "Open WebUI STAND-IN for tests"),
    ("GET", "/health"): lambda handler: (200, {"status": True}),
    ("GET", "/health/db"): lambda handler: (200, {"status": True}),
    ("GET", "/api/version"): lambda handler: (200, {"version": VERSION}),
    ("GET", "/api/config"): config,
    ("GET", "/api/standin/ollama"): probe_ollama,
}


def main():
    exit_on_signals(SERVICE)
    data_dir = Path(os.environ.get("DATA_DIR") or "/app/backend/data")
    try:
        load_secret_key()
        data_dir.mkdir(parents=True, exist_ok=True)
        started = datetime.datetime.now(datetime.timezone.utc).isoformat()
        (data_dir / "webui.db-standin").write_text(f"STAND-IN for tests: not a database\nstarted {started}\n")
    except OSError as error:
        fail(SERVICE, f"{type(error).__name__}: [Errno {error.errno}] {error.strerror}: '{error.filename}'")
    log(SERVICE, f"STAND-IN open-webui {VERSION}; data in {data_dir}; ollama at {';'.join(ollama_urls())}")
    serve(SERVICE, [(os.environ.get("HOST") or "0.0.0.0", int(os.environ.get("PORT") or 8080), ROUTES)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
