"""STAND-IN for tests: imitates the Coolify v4 app container of coollabsio/coolify:4.3.10.

Not Coolify: no PHP, no dashboard, no deployments, no SSH into the host. What
it checks on start is what breaks the real app:
  - APP_KEY must be "base64:" + base64 of 32 bytes (Laravel AES-256-CBC);
  - DB_PASSWORD and REDIS_PASSWORD must be set;
  - it logs in to PostgreSQL at DB_HOST:DB_PORT (default postgres:5432) as
    DB_USERNAME to DB_DATABASE (default coolify/coolify) with DB_PASSWORD, over
    the real wire protocol (SCRAM-SHA-256, md5 or cleartext), and to Redis at
    REDIS_HOST:REDIS_PORT (default redis:6379) with AUTH REDIS_PASSWORD.
It retries refused connections for STANDIN_WAIT_SECONDS (default 60) and then
exits 1; a rejected password exits 1 at once, as it never heals (PostgreSQL
keeps the password it was initialised with).
Values missing from the environment are read from /var/www/html/.env when
that file is mounted, the environment winning, as Laravel's dotenv does.
HTTP on 0.0.0.0:8080: GET /api/health -> "OK" (like the real one, the health
answer does not consult the database).
The root user and registration, as upstream at v4.3.10:
  - at every start, when no user with id 0 exists and ROOT_USER_EMAIL and
    ROOT_USER_PASSWORD are set, the root user is created (name ROOT_USERNAME,
    default "Root User") and registration is switched off
    (database/seeders/RootUserSeeder.php l. 18-26, 49-59, 70-73). Invalid values only
    log "ERROR Invalid Root User Environment Variables" and create nobody (l. 33-45):
    the password needs 8+ characters with upper- and lowercase letters, a digit and a
    symbol; the email is refused on a reserved top-level domain (.test, .example,
    .invalid, .localhost, .local, .internal, .lan, .corp, .home, .private, .intranet);
  - GET /register: 302 to /login while registration is off, else 200 with the form
    (app/Providers/FortifyServiceProvider.php l. 47-57); GET /login with no user:
    302 to /register (l. 63-66); POST /register while off: 403, else the first
    user gets the root team and switches registration off (CreateNewUser.php l. 35-36, 53-71).
  Stand-in differences: no DNS lookup for the email (upstream's email:dns rule also
  needs an MX or A record, so an offline host fails it) and no check against
  pwnedpasswords; users live in the container (/var/www/html/storage/standin-users.json),
  not in PostgreSQL, so a recreated container seeds again; POST /login takes a form
  (email, password) without Laravel's CSRF token and answers 302 to / (signed in) or
  back to /login. Runs as root; the real image runs its
PHP workers as www-data inside and expects /data/coolify owned by uid 9999.
"""

import base64
import hashlib
import hmac
import json
import os
import re
import urllib.parse
import socket
import struct
import sys
import time
from pathlib import Path

from standin_http import exit_on_signals, fail, log, require_env, serve

VERSION = "4.3.10"
SERVICE = "coolify"
DOTENV = Path("/var/www/html/.env")


class Refused(Exception):
    """A check that is worth retrying (not listening yet, starting up)."""


def load_dotenv():
    if not os.access(DOTENV, os.R_OK):
        return
    for line in DOTENV.read_text().splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and not name.startswith("#") and not os.environ.get(name.strip()):
            os.environ[name.strip()] = value.strip().strip("'\"")


def check_app_key(app_key):
    try:
        valid = app_key.startswith("base64:") and len(base64.b64decode(app_key[7:], validate=True)) == 32
    except ValueError:
        valid = False
    if not valid:
        fail(SERVICE, "APP_KEY must be 'base64:' followed by 32 random bytes in base64 (Laravel AES-256-CBC); "
                      "Unsupported cipher or incorrect key length.")


def recv_exact(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise Refused("connection closed by the server")
        data += chunk
    return data


def pg_message(sock):
    kind, length = struct.unpack("!cI", recv_exact(sock, 5))
    return kind, recv_exact(sock, length - 4)


def pg_send(sock, kind, payload):
    sock.sendall(kind + struct.pack("!I", len(payload) + 4) + payload)


def scram_final(password, client_first_bare, server_first):
    attrs = dict(item.split("=", 1) for item in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    without_proof = f"c=biws,r={attrs['r']}"
    auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
    signature = hmac.digest(hashlib.sha256(client_key).digest(), auth_message, "sha256")
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


def pg_login(host, port, user, password, database):
    """Authenticate like a PostgreSQL client; raise Refused (retry) or RuntimeError (give up)."""
    try:
        sock = socket.create_connection((host, port), timeout=5)
    except OSError as error:
        raise Refused(error) from error
    with sock:
        params = b"".join(key + b"\0" + value.encode() + b"\0"
                          for key, value in ((b"user", user), (b"database", database))) + b"\0"
        sock.sendall(struct.pack("!II", len(params) + 8, 196608) + params)
        client_first_bare = "n=,r=" + base64.b64encode(os.urandom(18)).decode()
        while True:
            kind, body = pg_message(sock)
            if kind == b"E":
                fields = {field[:1]: field[1:].decode() for field in body.split(b"\0") if field}
                # 57P03: "the database system is starting up"; anything else is final.
                raise (Refused if fields.get(b"C") == "57P03" else RuntimeError)(fields.get(b"M"))
            code = struct.unpack("!I", body[:4])[0] if kind == b"R" else None
            if code == 0:
                pg_send(sock, b"X", b"")
                return
            if code == 3:
                pg_send(sock, b"p", password.encode() + b"\0")
            elif code == 5:
                inner = hashlib.md5((password + user).encode()).hexdigest().encode()
                pg_send(sock, b"p", b"md5" + hashlib.md5(inner + body[4:8]).hexdigest().encode() + b"\0")
            elif code == 10:
                first = ("n,," + client_first_bare).encode()
                pg_send(sock, b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first)
            elif code == 11:
                pg_send(sock, b"p", scram_final(password, client_first_bare, body[4:].decode()))
            elif code != 12:
                raise RuntimeError(f"unsupported authentication request {kind!r} {code}")


def redis_login(host, port, password):
    """AUTH and PING over RESP; raise Refused (retry) or RuntimeError (give up)."""
    try:
        sock = socket.create_connection((host, port), timeout=5)
    except OSError as error:
        raise Refused(error) from error
    with sock:
        secret = password.encode()
        sock.sendall(b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n" % (len(secret), secret))
        replies = sock.makefile("rb")
        for _reply in range(2):
            line = replies.readline().decode().strip()
            if line.startswith("-LOADING"):
                raise Refused(line)
            if line.startswith("-") or not line:
                raise RuntimeError(line or "connection closed by the server")


def wait_for(name, check, deadline):
    while True:
        try:
            check()
            log(SERVICE, f"{name}: connected and authenticated")
            return
        except RuntimeError as error:
            fail(SERVICE, f"{name}: {error}")
        except (Refused, OSError) as error:
            if time.monotonic() > deadline:
                fail(SERVICE, f"{name}: not reachable, giving up: {error}")
            log(SERVICE, f"{name}: not ready yet ({error}); retrying")
            time.sleep(2)


ROUTES = {
    ("GET", "/"): lambda handler: (200, "Coolify STAND-IN for tests"),
    ("GET", "/api/health"): lambda handler: (200, "OK"),
    ("GET", "/api/v1/health"): lambda handler: (200, "OK"),
}


USERS = Path("/var/www/html/storage/standin-users.json")
RESERVED_TLDS = ("test", "example", "invalid", "localhost", "local", "internal", "lan", "corp", "home", "private", "intranet")


def load_users():
    return json.loads(USERS.read_text()) if USERS.exists() else {"users": [], "registration": True}


def save_users(state):
    USERS.parent.mkdir(parents=True, exist_ok=True)
    USERS.write_text(json.dumps(state))


def digest(password):
    return hashlib.sha256(password.encode()).hexdigest()


def root_user_valid(email, password):
    domain_ok = re.match(r"^[^@\s]+@[^@\s]+\.[A-Za-z0-9-]+$", email) and email.rsplit(".", 1)[-1].lower() not in RESERVED_TLDS
    strong = (len(password) >= 8 and re.search("[a-z]", password) and re.search("[A-Z]", password)
              and re.search("[0-9]", password) and re.search("[^A-Za-z0-9]", password))
    return bool(domain_ok and strong)


def seed_root_user():
    """RootUserSeeder: create user 0 from ROOT_USER_* once, then close registration."""
    state = load_users()
    if any(user["id"] == 0 for user in state["users"]):
        log(SERVICE, "Root user already exists. Skipping creation.")
        return
    email, password = os.environ.get("ROOT_USER_EMAIL", ""), os.environ.get("ROOT_USER_PASSWORD", "")
    if not email or not password:
        return
    if not root_user_valid(email, password):
        log(SERVICE, "ERROR Invalid Root User Environment Variables")
        return
    state["users"].append({"id": 0, "name": os.environ.get("ROOT_USERNAME") or "Root User", "email": email,
                           "password_sha256": digest(password)})
    state["registration"] = False
    save_users(state)
    log(SERVICE, "Root user created from the environment; registration disabled")


def form(handler):
    length = int(handler.headers.get("Content-Length") or 0)
    fields = urllib.parse.parse_qs(handler.rfile.read(length).decode() if length else "")
    return dict((key, values[0]) for key, values in fields.items())


def get_register(_handler):
    if not load_users()["registration"]:
        return 302, "", {"Location": "/login"}
    return 200, "<form method=post action=/register>register (STAND-IN)</form>"


def post_register(handler):
    state = load_users()
    if not state["registration"]:
        return 403, "Forbidden"
    fields = form(handler)
    first = not state["users"]
    state["users"].append({"id": 0 if first else len(state["users"]), "name": fields.get("name", ""),
                           "email": fields.get("email", ""), "password_sha256": digest(fields.get("password", ""))})
    if first:
        state["registration"] = False
    save_users(state)
    return 302, "", {"Location": "/"}


def get_login(_handler):
    if not load_users()["users"]:
        return 302, "", {"Location": "/register"}
    return 200, "<form method=post action=/login>login (STAND-IN)</form>"


def post_login(handler):
    fields = form(handler)
    for user in load_users()["users"]:
        if user["email"] == fields.get("email") and user["password_sha256"] == digest(fields.get("password", "")):
            return 302, "", {"Location": "/", "Set-Cookie": "coolify_session=standin; HttpOnly"}
    return 302, "", {"Location": "/login"}


ROUTES.update({
    ("GET", "/register"): get_register,
    ("POST", "/register"): post_register,
    ("GET", "/login"): get_login,
    ("POST", "/login"): post_login,
})


def main():
    exit_on_signals(SERVICE)
    load_dotenv()
    env = require_env(SERVICE, ("APP_KEY", "DB_PASSWORD", "REDIS_PASSWORD"))
    check_app_key(env["APP_KEY"])
    deadline = time.monotonic() + float(os.environ.get("STANDIN_WAIT_SECONDS") or 60)
    db = (os.environ.get("DB_HOST") or "postgres", int(os.environ.get("DB_PORT") or 5432))
    user, database = os.environ.get("DB_USERNAME") or "coolify", os.environ.get("DB_DATABASE") or "coolify"
    wait_for(f"postgres {db[0]}:{db[1]}", lambda: pg_login(*db, user, env["DB_PASSWORD"], database), deadline)
    redis = (os.environ.get("REDIS_HOST") or "redis", int(os.environ.get("REDIS_PORT") or 6379))
    wait_for(f"redis {redis[0]}:{redis[1]}", lambda: redis_login(*redis, env["REDIS_PASSWORD"]), deadline)
    seed_root_user()
    log(SERVICE, f"STAND-IN coolify {VERSION} ready")
    serve(SERVICE, [("0.0.0.0", 8080, ROUTES)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
