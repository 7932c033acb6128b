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
  - resolves the Ollama URLs as backend/open_webui/config.py does at v0.12.4
    (every line cited here was read in the 0.12.4 wheel, whose open_webui/ is
    the repository's backend/open_webui/):
    OLLAMA_BASE_URL loses one trailing "/" (l. 247-250); when empty it comes
    from OLLAMA_API_BASE_URL (default http://localhost:11434/api, less "/api";
    l. 245, 256-257); with ENV=prod (the image's) "/ollama", the image default,
    means http://host.docker.internal:11434 (l. 259-266). OLLAMA_BASE_URLS, when
    set, replaces it and is split on ";" with each part strip()ped, nothing more:
    no "/" removed, empty parts kept (l. 302-305). Not imitated: K8S_FLAG,
    USE_OLLAMA_DOCKER (l. 260-268) and the 11434 -> 12434 port fallback (l. 271-299);
  - ENABLE_OLLAMA_API (default True, config.py l. 243);
  - GET /ollama/ -> {"status": true} (routers/ollama.py l. 227-231; the router is
    mounted at /ollama, main.py l. 876);
  - GET /ollama/config -> {"ENABLE_OLLAMA_API": bool, "OLLAMA_BASE_URLS": [...],
    "OLLAMA_API_CONFIGS": {}} (routers/ollama.py l. 200-209, 277-283). There is
    no /ollama/urls route at v0.12.4;
  - GET /ollama/api/tags (routers/ollama.py l. 475-505, get_all_models
    l. 382-451): 503 {"detail": "The Ollama API is disabled. ..."} when
    ENABLE_OLLAMA_API is off (l. 486-487, constants.py l. 104); otherwise every
    URL's /api/tags is asked at once (l. 395-406), with a total timeout of
    AIOHTTP_CLIENT_TIMEOUT_MODEL_LIST seconds, else
    AIOHTTP_CLIENT_TIMEOUT_OPENAI_MODEL_LIST, default 10, empty = none (env.py
    l. 662-669, routers/ollama.py l. 58, 84; the stand-in's urllib timeout is per
    socket operation, not total). A backend that fails (refused,
    timeout, not JSON) counts as None and is skipped (send_get_request l. 67-89,
    l. 412-415), but keeps its index. Each model gets "connection_type": "local"
    (no OLLAMA_API_CONFIGS entry, l. 419, 434-435), and models are merged on
    their "model" name in first-seen order, each with "urls": the indexes of
    the OLLAMA_BASE_URLS entries that list it (merge_models_lists l. 347-362,
    l. 437). Reply: {"models": [{..., "connection_type": "local", "urls": [0, 1]}]}.
Stand-in differences: no users, so NO AUTH: upstream answers 401 {"detail":
"Not authenticated"} without a token (utils/auth.py l. 411-412), /ollama/config
needs an admin (get_admin_user, l. 622-628) and /ollama/api/tags a verified
user, role "user" or "admin" (get_verified_user, l. 564-573), and filters the
models for role "user" (routers/ollama.py l. 502-503). The stand-in answers
everyone as an admin would. No database: upstream seeds OLLAMA_BASE_URLS into
its config table on the first start only and then reads the table
(models/config.py l. 143-149, 248-273; config.py l. 2917-2926, 3352-3358),
so with ENABLE_PERSISTENT_CONFIG=true (the default) a changed OLLAMA_BASE_URLS
is ignored on a later start; the stand-in always reads the environment. Not
imitated: OLLAMA_API_CONFIGS (prefix_id, tags, model_ids, enable, key), the
models cache (MODELS_CACHE_TTL), "expires_at" from /api/ps (l. 439-448), and
/ollama/api/tags/{url_idx}.
Accounts, as upstream at v0.12.4 (open_webui/ in the 0.12.4 wheel):
  - at start, when WEBUI_ADMIN_EMAIL and WEBUI_ADMIN_PASSWORD are both set and there
    is no user yet, an admin is created and signup is switched off (main.py lifespan
    l. 400-404, utils/auth.py create_admin_user l. 631-660; env.py l. 806-808). Only
    the environment is read: upstream has no _FILE variant;
  - ENABLE_SIGNUP (config.py l. 1692) seeds "ui.enable_signup" on the first start
    only; the stored value wins afterwards (models/config.py seed_defaults);
  - POST /api/v1/auths/signup (routers/auths.py l. 854-907): with users and signup
    off, 403 {"detail": "You do not have permission to access this resource. Please
    contact your administrator for assistance."}; the first user ever becomes admin
    and switches signup off (l. 831-834);
  - POST /api/v1/auths/signin {email, password} (l. 663): 200 {"token", "token_type":
    "Bearer", "id", "email", "name", "role"}, or 400 {"detail": "The email or password
    provided is incorrect. Please check for typos and try logging in again."};
  - GET /api/config for an anonymous client has "onboarding": true only while there is
    no user, and "features": {"auth", "enable_signup", "enable_login_form", ...}
    (main.py l. 2321-2323, 2393, 2405-2423).
  Stand-in differences: users are kept in $DATA_DIR/users-standin.json with a
  SHA-256 of the password (upstream: bcrypt in webui.db); tokens are random, not JWTs,
  and no route checks them.
Other endpoints: GET /health -> {"status": true}; GET /health/db; GET /api/version;
GET /api/config -> includes "ollama_base_url(s)" (stand-in only: the real
/api/config does not report them); GET /api/standin/ollama asks the first
Ollama URL for /api/version, to prove the network wiring.
"""

import base64
import datetime
import hashlib
import json
import os
import secrets
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from standin_http import exit_on_signals, fail, http_call, log, serve

VERSION = "0.12.4"
SERVICE = "open-webui"
KEY_FILE = Path(".webui_secret_key")
ACCOUNTS = None  # Accounts, made in main()


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
    """OLLAMA_BASE_URLS as a list, resolved as config.py l. 243-305 at v0.12.4 (see the docstring)."""
    base = os.environ.get("OLLAMA_BASE_URL", "")
    base = base[:-1] if base.endswith("/") else base
    if base == "":
        api = os.environ.get("OLLAMA_API_BASE_URL", "http://localhost:11434/api")
        base = api[:-4] if api.endswith("/api") else api
    if os.environ.get("ENV", "dev") == "prod" and base == "/ollama":
        base = "http://host.docker.internal:11434"
    raw = os.environ.get("OLLAMA_BASE_URLS", "") or base
    return [url.strip() for url in raw.split(";")]


def ollama_enabled():
    return os.environ.get("ENABLE_OLLAMA_API", "True").lower() == "true"


def model_list_timeout():
    raw = os.environ.get("AIOHTTP_CLIENT_TIMEOUT_MODEL_LIST",
                         os.environ.get("AIOHTTP_CLIENT_TIMEOUT_OPENAI_MODEL_LIST", "10"))
    try:
        return int(raw) if raw else None
    except ValueError:
        return 10


def get_json(url):
    """send_get_request: the JSON reply, or None when the backend fails."""
    try:
        _status, text = http_call("GET", url, timeout=model_list_timeout())
        return json.loads(text)
    except (OSError, ValueError) as error:
        log(SERVICE, f"Connection error: {error} ({url})")
        return None


def ollama_config(_handler):
    return 200, {"ENABLE_OLLAMA_API": ollama_enabled(), "OLLAMA_BASE_URLS": ollama_urls(),
                 "OLLAMA_API_CONFIGS": {}}


def ollama_tags(_handler):
    if not ollama_enabled():
        return 503, {"detail": "The Ollama API is disabled. Please enable it to use this feature."}
    urls = ollama_urls()
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        responses = list(pool.map(get_json, [f"{url}/api/tags" for url in urls]))
    merged = {}
    for idx, response in enumerate(responses):
        if not isinstance(response, dict):
            continue
        for model in response.get("models", []):
            model["connection_type"] = "local"
            name = model.get("model")
            if name is None:
                continue
            if name in merged:
                merged[name]["urls"].append(idx)
            else:
                model["urls"] = [idx]
                merged[name] = model
    return 200, {"models": list(merged.values())}


def probe_ollama(_handler):
    url = ollama_urls()[0]
    try:
        status, text = http_call("GET", f"{url}/api/version", timeout=3)
    except (OSError, ValueError) as error:
        return 200, {"url": url, "reachable": False, "error": str(error)}
    return 200, {"url": url, "reachable": status == 200, "status": status, "body": text}


ACCESS_PROHIBITED = "You do not have permission to access this resource. Please contact your administrator for assistance."
INVALID_CRED = "The email or password provided is incorrect. Please check for typos and try logging in again."


class Accounts:
    """The users and the stored "ui.enable_signup", kept in the data directory."""

    def __init__(self, data_dir):
        self.path = data_dir / "users-standin.json"
        self.lock = threading.Lock()
        self.state = json.loads(self.path.read_text()) if self.path.exists() else {"users": [], "config": {}}
        # seed_defaults: a stored value wins over the environment.
        self.state["config"].setdefault("ui.enable_signup", os.environ.get("ENABLE_SIGNUP", "True").lower() == "true")
        self.save()

    def save(self):
        self.path.write_text(json.dumps(self.state))

    @staticmethod
    def digest(password):
        return hashlib.sha256(password.encode()).hexdigest()

    def add(self, email, name, password, role):
        user = {"id": secrets.token_hex(8), "email": email.lower(), "name": name, "role": role,
                "password_sha256": self.digest(password)}
        self.state["users"].append(user)
        if role == "admin":
            self.state["config"]["ui.enable_signup"] = False
        self.save()
        return user

    def create_admin_from_env(self):
        email, password = os.environ.get("WEBUI_ADMIN_EMAIL", ""), os.environ.get("WEBUI_ADMIN_PASSWORD", "")
        if not (email and password):
            return
        if self.state["users"]:
            log(SERVICE, "Users already exist, skipping admin creation")
            return
        self.add(email, os.environ.get("WEBUI_ADMIN_NAME", "Admin"), password, "admin")
        log(SERVICE, f"Admin user created: {email.lower()}")


def session(user):
    return {"token": secrets.token_urlsafe(24), "token_type": "Bearer", "id": user["id"], "email": user["email"],
            "name": user["name"], "role": user["role"]}


def signup(handler):
    body = handler.json_body()
    with ACCOUNTS.lock:
        if ACCOUNTS.state["users"] and not ACCOUNTS.state["config"]["ui.enable_signup"]:
            return 403, {"detail": ACCESS_PROHIBITED}
        role = "pending" if ACCOUNTS.state["users"] else "admin"
        user = ACCOUNTS.add(str(body.get("email", "")), str(body.get("name", "")), str(body.get("password", "")), role)
    return 200, session(user)


def signin(handler):
    body = handler.json_body()
    email, digest = str(body.get("email", "")).lower(), Accounts.digest(str(body.get("password", "")))
    for user in ACCOUNTS.state["users"]:
        if user["email"] == email and user["password_sha256"] == digest:
            return 200, session(user)
    return 400, {"detail": INVALID_CRED}


def config(_handler):
    urls = ollama_urls()
    answer = {"status": True, "name": "Open WebUI (STAND-IN)", "version": VERSION,
              "features": {"auth": True, "enable_signup": ACCOUNTS.state["config"]["ui.enable_signup"],
                           "enable_login_form": True},
              "ollama_base_url": urls[0], "ollama_base_urls": urls}
    if not ACCOUNTS.state["users"]:
        answer["onboarding"] = True
    return 200, answer


ROUTES = {
    ("GET", "/"): lambda handler: (200, "Open WebUI STAND-IN for tests"),
    ("GET", "/health"): lambda handler: (200, {"status": True}),
    ("GET", "/health/db"): lambda handler: (200, {"status": True}),
    ("GET", "/api/version"): lambda handler: (200, {"version": VERSION}),
    ("GET", "/api/config"): config,
    ("POST", "/api/v1/auths/signup"): signup,
    ("POST", "/api/v1/auths/signin"): signin,
    ("GET", "/api/standin/ollama"): probe_ollama,
    ("GET", "/ollama/"): lambda handler: (200, {"status": True}),
    ("GET", "/ollama/config"): ollama_config,
    ("GET", "/ollama/api/tags"): ollama_tags,
}


def main():
    exit_on_signals(SERVICE)
    data_dir = Path(os.environ.get("DATA_DIR") or "/app/backend/data")
    try:
        load_secret_key()
        data_dir.mkdir(parents=True, exist_ok=True)
        started = datetime.datetime.now(datetime.timezone.utc).isoformat()
        (data_dir / "webui.db-standin").write_text(f"STAND-IN for tests: not a database\nstarted {started}\n")
        global ACCOUNTS  # pylint: disable=global-statement
        ACCOUNTS = Accounts(data_dir)
        ACCOUNTS.create_admin_from_env()
    except OSError as error:
        fail(SERVICE, f"{type(error).__name__}: [Errno {error.errno}] {error.strerror}: '{error.filename}'")
    log(SERVICE, f"STAND-IN open-webui {VERSION}; data in {data_dir}; ollama at {';'.join(ollama_urls())}")
    serve(SERVICE, [(os.environ.get("HOST") or "0.0.0.0", int(os.environ.get("PORT") or 8080), ROUTES)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
