"""STAND-IN for tests: imitates the n8n server of n8nio/n8n:1.80.3.

Not n8n: no editor, no workflows. Runs as user node (uid 1000) with its data
in $N8N_USER_FOLDER/.n8n (default /home/node/.n8n). On start, like n8n:
  - takes a setting from the file named by <VARIABLE>_FILE when <VARIABLE>
    itself is not set (its content as it is), and exits 1 when that file
    cannot be read;
  - writes the settings file .n8n/config ({"encryptionKey": ...}, mode 0600):
    the key comes from N8N_ENCRYPTION_KEY, or is generated; a data directory
    that uid 1000 cannot write makes it exit 1 with "EACCES: permission denied";
  - exits 1 with "Mismatching encryption keys" when N8N_ENCRYPTION_KEY differs
    from the key already stored in .n8n/config;
  - keeps its users in an SQLite file, .n8n/database.sqlite.
HTTP on $N8N_LISTEN_ADDRESS:$N8N_PORT (0.0.0.0:5678):
  GET /healthz                {"status": "ok"}
  GET /healthz/readiness      200 once the database is ready (SQLite: at once;
                              DB_TYPE=postgresdb: when its TCP port answers), else 503
  GET /rest/settings          {"data": {"userManagement": {"showSetupOnFirstLoad": ...}, ...}}
  POST /rest/owner/setup      {email, firstName, lastName, password}: 200 the first
                              time, 400 "Instance owner already setup" afterwards
  POST /rest/login            {email (or emailOrLdapLoginId), password}: 200 or 401
  GET /rest/standin/env       stand-in only: WEBHOOK_URL, N8N_HOST, N8N_PROTOCOL, ...
"""

import base64
import hashlib
import hmac
import json
import os
import re
import sqlite3
import sys
import threading
import uuid
from pathlib import Path

from standin_http import BadRequest, exit_on_signals, fail, log, serve, tcp_reachable

VERSION = "1.80.3"
SERVICE = "n8n"
ENV_ECHO = ("WEBHOOK_URL", "N8N_WEBHOOK_URL", "N8N_HOST", "N8N_PROTOCOL", "N8N_PORT", "N8N_PROXY_HOPS",
            "N8N_EDITOR_BASE_URL", "N8N_SECURE_COOKIE", "GENERIC_TIMEZONE", "TZ", "DB_TYPE")
SETUP_LOCK = threading.Lock()
KEY_DOCS = "https://docs.n8n.io/hosting/environment-variables/configuration-methods/#encryption-key"


def n8n_dir():
    return Path(os.environ.get("N8N_USER_FOLDER") or Path.home()) / ".n8n"


def eacces(error):
    fail(SERVICE, f"Error: EACCES: permission denied, open '{error.filename}'")


def load_file_settings():
    """n8n's <VARIABLE>_FILE: the setting is the content of the named file."""
    for name, path in sorted(os.environ.items()):
        setting = name[: -len("_FILE")]
        if not name.endswith("_FILE") or not setting or setting in os.environ:
            continue
        try:
            os.environ[setting] = Path(path).read_text()
        except OSError as error:
            fail(SERVICE, f"Error: could not read {name} ({path}): {error.strerror}")


def load_or_create_settings():
    """The encryption-key handling of n8n's InstanceSettings."""
    settings_file = n8n_dir() / "config"
    env_key = os.environ.get("N8N_ENCRYPTION_KEY", "")
    try:
        settings_file.parent.mkdir(parents=True, exist_ok=True)
        if settings_file.exists():
            stored = json.loads(settings_file.read_text()).get("encryptionKey", "")
            if env_key and stored and env_key != stored:
                fail(SERVICE, f"Error: Mismatching encryption keys. The encryption key in the settings file "
                              f"{settings_file} does not match the N8N_ENCRYPTION_KEY env var. Please make sure "
                              f"both keys match. More information: {KEY_DOCS}")
            if stored:
                return
        key = env_key or base64.b64encode(os.urandom(24)).decode()
        with open(os.open(settings_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            json.dump({"encryptionKey": key}, handle, indent="\t")
        log(SERVICE, f"User settings loaded from: {settings_file}")
    except PermissionError as error:
        eacces(error)


def query(sql, params=()):
    """Run one statement on .n8n/database.sqlite (created on first use); return the first row."""
    connection = sqlite3.connect(n8n_dir() / "database.sqlite")
    try:
        with connection:
            connection.execute("CREATE TABLE IF NOT EXISTS user (id TEXT PRIMARY KEY, email TEXT UNIQUE, "
                               "firstName TEXT, lastName TEXT, password TEXT, role TEXT)")
            return connection.execute(sql, params).fetchone()
    finally:
        connection.close()


def hash_password(password, salt=None):
    salt = salt or os.urandom(16).hex()
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), 100_000).hex()
    return f"pbkdf2_sha256${salt}${digest}"


def owner():
    return query("SELECT id, email, firstName, lastName, password FROM user WHERE role = 'global:owner'")


def public_user(row):
    return {"id": row[0], "email": row[1], "firstName": row[2], "lastName": row[3], "role": "global:owner",
            "isPending": False}


def auth_cookie():
    secure = os.environ.get("N8N_SECURE_COOKIE", "true").lower() != "false"
    return {"Set-Cookie": f"n8n-auth={uuid.uuid4().hex}; Path=/; HttpOnly; SameSite=Lax"
                          + ("; Secure" if secure else "")}


def password_problems(password):
    problems = []
    if not 8 <= len(password) <= 64:
        problems.append("Password must be 8 to 64 characters long.")
    if not re.search(r"\d", password):
        problems.append("Password must contain at least 1 number.")
    if not re.search(r"[A-Z]", password):
        problems.append("Password must contain at least 1 uppercase letter.")
    return " ".join(problems)


def setup_owner(handler):
    with SETUP_LOCK:
        return create_owner(handler.json_body())


def create_owner(body):
    fields = {name: str(body.get(name) or "") for name in ("email", "firstName", "lastName", "password")}
    if owner():
        return 400, {"code": 400, "message": "Instance owner already setup"}
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", fields["email"]):
        raise BadRequest("Invalid email address")
    if not fields["firstName"] or not fields["lastName"]:
        raise BadRequest("First and last name are required")
    problems = password_problems(fields["password"])
    if problems:
        raise BadRequest(problems)
    row = (str(uuid.uuid4()), fields["email"].lower(), fields["firstName"], fields["lastName"],
           hash_password(fields["password"]))
    query("INSERT INTO user VALUES (?, ?, ?, ?, ?, 'global:owner')", row)
    log(SERVICE, f"owner account set up for {row[1]}")
    return 200, {"data": public_user(row)}, auth_cookie()


def login(handler):
    body = handler.json_body()
    email = str(body.get("emailOrLdapLoginId") or body.get("email") or "").lower()
    row = owner()
    if row and row[1] == email:
        salt = row[4].split("$")[1]
        if hmac.compare_digest(row[4], hash_password(str(body.get("password") or ""), salt)):
            return 200, {"data": public_user(row)}, auth_cookie()
    return 401, {"code": 401, "message": "Wrong username or password. Do you have caps lock on?"}


def base_url(env_name):
    explicit = os.environ.get(env_name)
    if explicit:
        return explicit.rstrip("/") + "/"
    protocol = os.environ.get("N8N_PROTOCOL") or "http"
    port = os.environ.get("N8N_PORT") or "5678"
    default_port = {"http": "80", "https": "443"}.get(protocol)
    return f"{protocol}://{os.environ.get('N8N_HOST') or 'localhost'}{'' if port == default_port else ':' + port}/"


def settings(_handler):
    return 200, {"data": {
        "versionCli": VERSION,
        "urlBaseWebhook": base_url("WEBHOOK_URL"),
        "urlBaseEditor": base_url("N8N_EDITOR_BASE_URL"),
        "userManagement": {"showSetupOnFirstLoad": owner() is None, "authenticationMethod": "email"},
        "standin": "STAND-IN for tests",
    }}


def readiness(_handler):
    if os.environ.get("DB_TYPE") == "postgresdb":
        host = os.environ.get("DB_POSTGRESDB_HOST") or "localhost"
        if not tcp_reachable(host, int(os.environ.get("DB_POSTGRESDB_PORT") or 5432)):
            return 503, {"status": "error"}
    return 200, {"status": "ok"}


ROUTES = {
    ("GET", "/"): lambda handler: (200, "n8n STAND-IN for tests"),
    ("GET", "/healthz"): lambda handler: (200, {"status": "ok"}),
    ("GET", "/healthz/readiness"): readiness,
    ("GET", "/rest/settings"): settings,
    ("POST", "/rest/owner/setup"): setup_owner,
    ("POST", "/rest/login"): login,
    ("GET", "/rest/standin/env"): lambda handler: (200, {name: os.environ.get(name) for name in ENV_ECHO}),
}


def main(argv):
    if argv[:1] in (["--version"], ["-v"]):
        print(VERSION)
        return 0
    if argv and argv[0] != "start":
        fail(SERVICE, f"Error: STAND-IN n8n supports only 'start' and '--version', not {argv[0]!r}")
    exit_on_signals(SERVICE)
    load_file_settings()
    load_or_create_settings()
    try:
        query("SELECT 1")
    except (sqlite3.Error, PermissionError) as error:
        fail(SERVICE, f"Error: cannot open {n8n_dir() / 'database.sqlite'}: {error}")
    log(SERVICE, f"STAND-IN n8n {VERSION}; data in {n8n_dir()}; Editor is now accessible via: "
                 f"{base_url('N8N_EDITOR_BASE_URL')}")
    address = os.environ.get("N8N_LISTEN_ADDRESS") or "0.0.0.0"
    serve(SERVICE, [(address, int(os.environ.get("N8N_PORT") or 5678), ROUTES)])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
