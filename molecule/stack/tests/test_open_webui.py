"""The REAL Open-WebUI 0.12.4 (the test image built from PyPI) as the role deployed it.

Each check reads what Open-WebUI itself answers on 127.0.0.1:3000 (from inside the target), so a
stand-in, another release, or a wiring the role got wrong fails here. Upstream lines: the
"Open WebUI" section of docs/upstream-evidence.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "integration"))
import target_http  # noqa: E402

ROOT = "/opt/homelab"
BASE = "http://127.0.0.1:3000"
CONTAINER = "homelab-open-webui-1"
VERSION = "0.12.4"
ADMIN = {"email": "admin@homelab.test", "password": "Molecule-Admin-Pass-1"}
# sha256 of backend/start.sh in the open-webui 0.12.4 sdist on PyPI (tests/stand-ins/stack/README.md).
START_SH_SHA256 = "40fef6f5b49405e27e3367b1a119469c10aba35c1f342632e59726198c195f2a"


def call(host, method, path, body=None, token=None):
    return target_http.call(host, method, BASE + path, body, token)


def sign_in(host, credentials=None):
    return call(host, "POST", "/api/v1/auths/signin", credentials or ADMIN)


def admin_token(host):
    status, body = sign_in(host)
    assert status == 200, body
    return body["token"]


def container_env(host):
    config = json.loads(host.check_output("docker inspect %s" % CONTAINER))[0]["Config"]
    return dict(entry.split("=", 1) for entry in config["Env"])


def b64url(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_the_image_is_the_real_open_webui_release(host):
    image = json.loads(host.check_output("docker inspect %s" % CONTAINER))[0]["Config"]["Image"]
    assert image == "127.0.0.1:5000/open-webui/open-webui:v%s" % VERSION
    label = host.check_output("docker image inspect -f '{{index .Config.Labels \"org.homelab.test-image\"}}' %s" % image)
    assert label.startswith("real Open-WebUI %s from PyPI" % VERSION), label
    # Open-WebUI's own answer (env.py VERSION, from /app/package.json as in upstream's image).
    status, body = call(host, "GET", "/api/version")
    assert status == 200 and body["version"] == VERSION
    # The installed distribution, and upstream's start.sh unchanged.
    installed = host.check_output("docker exec %s python3 -c 'import importlib.metadata as m; print(m.version(\"open-webui\"))'"
                                  % CONTAINER)
    assert installed == VERSION
    assert host.check_output("docker exec %s sha256sum /app/backend/start.sh" % CONTAINER).split()[0] == START_SH_SHA256


def test_health_answers_status_true(host):
    status, body = call(host, "GET", "/health")
    assert (status, body) == (200, {"status": True})


def test_the_key_from_the_secret_file_signs_the_sessions(host):
    key = json.loads(host.file(ROOT + "/secrets/main-stack.json").content_string)["open_webui_secret_key"]
    # start.sh reads WEBUI_SECRET_KEY_FILE because the key is not in the environment.
    env = container_env(host)
    assert env["WEBUI_SECRET_KEY_FILE"] == "/run/secrets/open_webui_secret_key"
    assert env.get("WEBUI_SECRET_KEY", "") == "" and key not in json.dumps(env)
    assert host.check_output("docker exec %s cat /run/secrets/open_webui_secret_key" % CONTAINER) == key
    token = admin_token(host)
    header, payload, signature = token.split(".")
    assert json.loads(b64url(header)) == {"alg": "HS256", "typ": "JWT"}
    expected = hmac.new(key.encode(), ("%s.%s" % (header, payload)).encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(b64url(signature), expected), "the session JWT is not signed with open_webui_secret_key"
    # No key was generated beside start.sh (its default .webui_secret_key).
    assert host.run("docker exec %s test -e /app/backend/.webui_secret_key" % CONTAINER).rc == 1
    # Open-WebUI accepts its own token and rejects one signed with another key.
    status, me = call(host, "GET", "/api/v1/auths/", token=token)
    assert status == 200 and me["email"] == ADMIN["email"] and me["role"] == "admin"
    forged = hmac.new(b"not-the-key", ("%s.%s" % (header, payload)).encode(), hashlib.sha256).digest()
    forged_token = "%s.%s.%s" % (header, payload, base64.urlsafe_b64encode(forged).decode().rstrip("="))
    assert call(host, "GET", "/api/v1/auths/", token=forged_token)[0] == 401


def test_open_webui_uses_the_ollama_urls_the_role_passes(host):
    env = container_env(host)
    # Two backends in this scenario (its inventory's main_stack_ollama_urls): the role passes OLLAMA_BASE_URLS.
    urls = env["OLLAMA_BASE_URLS"].split(";")
    assert urls == ["http://ollama:11434", "http://homelab-ollama-1:11434"]
    token = admin_token(host)
    status, config = call(host, "GET", "/ollama/config", token=token)
    assert status == 200 and config["ENABLE_OLLAMA_API"] is True
    assert config["OLLAMA_BASE_URLS"] == urls
    # Open-WebUI reaches that Ollama over the compose network (upstream proxies /api/version/<index>).
    for index in range(len(urls)):
        status, version = call(host, "GET", "/ollama/api/version/%d" % index, token=token)
        assert status == 200 and version.get("version"), (index, version)
    # The Ollama configuration is the admin's: anonymous callers get 401.
    assert call(host, "GET", "/ollama/config")[0] == 401


def test_only_the_admin_exists_and_signup_is_refused(host):
    status, body = sign_in(host)
    assert status == 200 and body["role"] == "admin" and body["email"] == ADMIN["email"]
    assert sign_in(host, {"email": ADMIN["email"], "password": "Wrong-Password-1"})[0] == 400
    config = call(host, "GET", "/api/config")[1]
    assert "onboarding" not in config and config["features"]["enable_signup"] is False
    stranger = {"name": "S", "email": "stranger@evil.test", "password": "Stranger-Pass-1"}
    status, body = call(host, "POST", "/api/v1/auths/signup", stranger)
    assert status == 403, body
    assert sign_in(host, {"email": stranger["email"], "password": stranger["password"]})[0] == 400
    # The admin's password reached Open-WebUI only through the entrypoint, never the environment.
    assert "WEBUI_ADMIN_PASSWORD" not in container_env(host)
    status, users = call(host, "GET", "/api/v1/users/all", token=admin_token(host))
    assert status == 200
    assert [user["email"] for user in users["users"]] == [ADMIN["email"]]
