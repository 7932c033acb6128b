# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The few admin API calls the Open-WebUI modules make (open_webui_tool_servers, open_webui_ollama_urls).

Private to homelab.core. Written from Open-WebUI 0.12.4 (the PyPI wheel is the source): routers/auths.py (sign-in),
routers/configs.py (tool servers), routers/ollama.py (``GET /ollama/config`` and ``POST /ollama/config/update``, both
admin only). The requests never carry a secret in a URL, and the errors name none.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.homelab.core.plugins.module_utils._answers import answer_message
from ansible_collections.homelab.core.plugins.module_utils._open_webui import connection_id
from ansible_collections.homelab.core.plugins.module_utils._safe_read import Refused
from ansible_collections.homelab.core.plugins.module_utils._state_file import StateFile


def _detail_of(body):
    """FastAPI's \"detail\" of an answer, else its text (short)."""
    return answer_message(body, "detail").rstrip(".")


SIGNIN = "/api/v1/auths/signin"
# The signed-in user (routers/auths.py get_session_user): 200 while a token is valid.
SESSION_USER = "/api/v1/auths/"
TOOL_SERVERS = "/api/v1/configs/tool_servers"
VERIFY = "/api/v1/configs/tool_servers/verify"
OLLAMA_CONFIG = "/ollama/config"
OLLAMA_CONFIG_UPDATE = "/ollama/config/update"


def admin_module(**more):
    """The AnsibleModule of an Open-WebUI module: the shared options (admin_argument_spec) and its own ``more``,
    with check mode, and the timeout checked."""
    module = AnsibleModule(argument_spec=admin_argument_spec(**more), supports_check_mode=True)
    if module.params["timeout"] <= 0:
        module.fail_json(msg="timeout must be a positive number of seconds.")
    return module


def admin_argument_spec(**more):
    """The options every Open-WebUI module takes to reach it and sign in (doc fragment homelab.core.open_webui),
    with the module's own ``more``."""
    spec = dict(
        url=dict(type="str", default="http://127.0.0.1:3000"),
        admin_email=dict(type="str", required=True),
        admin_password=dict(type="str", required=True, no_log=True),
        timeout=dict(type="int", default=30),
        wait=dict(type="int", default=180),
        validate_certs=dict(type="bool", default=True),
        session_file=dict(type="path"),
    )
    spec.update(more)
    return spec


def signed_in(module):
    """An OpenWebUI client for the module's options, signed in as the admin (reusing the session_file's token)."""
    params = module.params
    api = OpenWebUI(params["url"], params["timeout"], params["validate_certs"], wait=params["wait"])
    session = StateFile(params["session_file"]) if params["session_file"] else None
    api.sign_in(params["admin_email"], params["admin_password"], session=session, keep=not module.check_mode)
    return api


class OpenWebUIError(Exception):
    """A request to Open-WebUI failed; the message says which and why (no secrets)."""


class OpenWebUI:
    """The few admin API calls this module makes."""

    def __init__(self, url, timeout, validate_certs, wait=0, sleep=time.sleep, clock=time.monotonic):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.token = None
        self.wait = wait
        self.sleep = sleep
        self.clock = clock

    def call(self, method, path, payload=None):
        """(status, parsed JSON or raw text) of one request; raises OpenWebUIError when Open-WebUI cannot be reached."""
        headers = {"Accept": "application/json"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        try:
            with open_url(self.url + path, data=data, headers=headers, method=method, timeout=self.timeout,
                          validate_certs=self.validate_certs, follow_redirects="none") as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read() if error.fp else b""
        except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise OpenWebUIError("Cannot reach Open-WebUI at %s (%s %s): %s. Check url and that Open-WebUI is up."
                                 % (self.url, method, path, reason))
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def _reuse(self, email, session):
        """Whether the token kept in ``session`` (a _state_file.StateFile) for this URL and admin still signs in."""
        try:
            saved = session.read() or {}
        except (OSError, Refused) as error:
            raise OpenWebUIError("Cannot read Open-WebUI's session file %s: %s." % (session.path, error))
        if saved.get("signed_in_as") != {"url": self.url, "email": email.lower()} or not isinstance(saved.get("token"), str):
            return False
        self.token = saved["token"]
        try:
            status, body = self.call("GET", SESSION_USER)
        except OpenWebUIError:
            status, body = None, None
        if status == 200 and isinstance(body, dict) and body.get("role") == "admin":
            return True
        self.token = None
        return False

    def sign_in(self, email, password, session=None, keep=True):
        """Sign in as the admin. With ``session``, reuse the token kept there while Open-WebUI accepts it, and keep a
        new one there (unless ``keep`` is false: check mode): Open-WebUI 0.12.4 allows 15 sign-ins per email in 3
        minutes (routers/auths.py signin_rate_limiter), and each run would spend one per module."""
        if session is not None and self._reuse(email, session):
            return
        deadline = self.clock() + self.wait
        while True:
            try:
                status, body = self.call("POST", SIGNIN, {"email": email, "password": password})
            except OpenWebUIError:
                if self.clock() >= deadline:
                    raise
                self.sleep(2)
                continue
            if status in (502, 503) and self.clock() < deadline:
                self.sleep(2)
                continue
            # Too many sign-ins for this email: the oldest leave the rolling window a minute at a time.
            if status == 429 and self.clock() < deadline:
                self.sleep(10)
                continue
            break
        if status == 200 and isinstance(body, dict) and body.get("token"):
            if body.get("role") not in (None, "admin"):
                raise OpenWebUIError("Open-WebUI user %s signed in but is not an admin (role %r): admin_email must "
                                     "name an admin." % (email, body.get("role")))
            self.token = body["token"]
            if session is not None and keep:
                try:
                    session.write({"token": self.token, "signed_in_as": {"url": self.url, "email": email.lower()}})
                except (OSError, Refused) as error:
                    raise OpenWebUIError("Cannot keep Open-WebUI's session in %s: %s." % (session.path, error))
            return
        raise OpenWebUIError("Cannot sign in to Open-WebUI at %s as %s: HTTP %s, %s. Check admin_email and "
                             "admin_password (the Open-WebUI admin created from WEBUI_ADMIN_EMAIL / "
                             "WEBUI_ADMIN_PASSWORD at its first start)." % (self.url, email, status, _detail_of(
                                 json.dumps(body) if not isinstance(body, str) else body)))

    def _expect(self, status, body, what):
        if status != 200:
            detail = _detail_of(json.dumps(body) if not isinstance(body, str) else body)
            raise OpenWebUIError("Open-WebUI refused to %s: HTTP %s, %s." % (what, status, detail))
        return body

    def read(self):
        status, body = self.call("GET", TOOL_SERVERS)
        body = self._expect(status, body, "list its tool servers (GET %s)" % TOOL_SERVERS)
        connections = body.get("TOOL_SERVER_CONNECTIONS") if isinstance(body, dict) else None
        if connections is None:
            connections = []
        if not isinstance(connections, list):
            raise OpenWebUIError("Open-WebUI's %s answered no list of connections." % TOOL_SERVERS)
        return connections

    def write(self, connections):
        status, body = self.call("POST", TOOL_SERVERS, {"TOOL_SERVER_CONNECTIONS": connections})
        self._expect(status, body, "save its tool servers (POST %s)" % TOOL_SERVERS)

    def read_ollama(self):
        """Open-WebUI's Ollama connections as its config store holds them (GET /ollama/config, admin)."""
        status, body = self.call("GET", OLLAMA_CONFIG)
        body = self._expect(status, body, "show its Ollama connections (GET %s)" % OLLAMA_CONFIG)
        if not isinstance(body, dict) or not isinstance(body.get("OLLAMA_BASE_URLS", []), list):
            raise OpenWebUIError("Open-WebUI's %s answered no list of Ollama URLs." % OLLAMA_CONFIG)
        return body

    def write_ollama(self, config):
        """Replace the Ollama connections (POST /ollama/config/update: every field is written, so give them all)."""
        status, body = self.call("POST", OLLAMA_CONFIG_UPDATE, config)
        return self._expect(status, body, "save its Ollama connections (POST %s)" % OLLAMA_CONFIG_UPDATE)

    def verify(self, connection):
        status, body = self.call("POST", VERIFY, connection)
        if status != 200 or not isinstance(body, dict) or not body.get("status"):
            detail = _detail_of(json.dumps(body) if not isinstance(body, str) else body)
            raise OpenWebUIError("Open-WebUI could not connect to MCP server %s at %s and list its tools: HTTP %s, %s."
                                 % (connection_id(connection), connection.get("url"), status, detail))
        return [spec.get("name") for spec in body.get("specs") or [] if isinstance(spec, dict)]
