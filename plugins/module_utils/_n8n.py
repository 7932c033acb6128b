# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""n8n's REST API (signed in as the owner) and public API (an API key), as n8n 2.41.1 serves them.

Upstream, package ``n8n`` 2.41.1 (``dist/``):
- ``controllers/auth.controller.js`` ``AuthController.login``: ``POST /rest/login`` with ``emailOrLdapLoginId`` and
  ``password`` sets the ``n8n-auth`` cookie (``constants.js`` ``AUTH_COOKIE_NAME``); at most 5 tries a minute per
  login id (``keyedRateLimit``), answered 429 beyond.
- ``auth/auth.service.js`` ``validateBrowserId``: a session is bound to a ``browser-id`` header only when the login
  sent one; none is sent here.
- ``services/api-key-auth.strategy.js``: the public API (``/api/v1``) reads the key from ``X-N8N-API-KEY``; an unknown,
  deleted or expired key is 401, a key without the route's scope 403.
"""

from __future__ import annotations

import json
import time

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import open_url

COOKIE = "n8n-auth"
# n8n 2.41.1 login DTO (@n8n/api-types dto/auth/login-request.dto.js LoginRequestDto).
LOGIN_PATH = "/rest/login"


class N8nError(Exception):
    """A request n8n refused or could not answer; the text is one sentence for the user."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def _message(body):
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:200]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("error") or "")[:200]
    return ""


class Client:
    """A signed-in session with n8n at ``url`` (as reached from the managed host)."""

    def __init__(self, url, timeout=30, wait=60, sleep=time.sleep, clock=time.monotonic):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.wait = wait
        self.sleep = sleep
        self.clock = clock
        self.cookie = None

    def _send(self, method, url, headers, data):
        """(status, {lower-case header: [values]}, body text) of one request; URLError when n8n is unreachable."""
        try:
            response = open_url(url, data=data, headers=headers, method=method, timeout=self.timeout,
                                follow_redirects="none", validate_certs=True)
        except HTTPError as error:
            response = error
        headers_out = {}
        for name, value in response.headers.items():
            headers_out.setdefault(name.lower(), []).append(value)
        if hasattr(response.headers, "get_all"):
            headers_out["set-cookie"] = response.headers.get_all("Set-Cookie") or []
        return response.getcode() if hasattr(response, "getcode") else response.code, headers_out, \
            response.read().decode("utf-8", "replace")

    def request(self, method, path, body=None, api_key=None, query=None):
        """(status, decoded JSON or None, headers) of ``method path``; retries while n8n is unreachable or starting."""
        url = self.url + path + ("?" + query if query else "")
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if api_key is not None:
            headers["X-N8N-API-KEY"] = api_key
        elif self.cookie:
            headers["Cookie"] = "%s=%s" % (COOKIE, self.cookie)
        deadline = self.clock() + self.wait
        while True:
            try:
                status, response_headers, text = self._send(method, url, headers, data)
            except (URLError, OSError) as error:
                if self.clock() >= deadline:
                    raise N8nError("cannot reach n8n at %s: %s" % (self.url, getattr(error, "reason", error))) from None
                self.sleep(2)
                continue
            if status in (502, 503) and self.clock() < deadline:
                self.sleep(2)
                continue
            if status == 429 and self.clock() < deadline + 60:
                # The login limit (5 a minute per login id) counts the other plays and tests too.
                self.sleep(10)
                continue
            try:
                decoded = json.loads(text) if text else None
            except ValueError:
                decoded = None
            return status, decoded, response_headers, text

    def call(self, method, path, body=None, query=None, expect=(200,)):
        """The ``data`` of n8n's answer to a signed-in REST call; N8nError naming the call otherwise."""
        status, decoded, _headers, text = self.request(method, path, body, query=query)
        if status not in expect:
            raise N8nError("n8n answered %s %s with %d: %s" % (method, path, status, _message(text)), status)
        return decoded.get("data") if isinstance(decoded, dict) else decoded

    def login(self, email, password):
        """Sign in as the owner; N8nError with ``status`` 401 when n8n refuses the email or password."""
        status, _decoded, headers, text = self.request(
            "POST", LOGIN_PATH, {"emailOrLdapLoginId": email, "password": password})
        if status != 200:
            raise N8nError(_message(text) or "status %d" % status, status)
        for cookie in headers.get("set-cookie", []):
            name, _sep, rest = cookie.partition("=")
            if name.strip() == COOKIE:
                self.cookie = rest.split(";", 1)[0]
        if not self.cookie:
            raise N8nError("n8n signed the owner in but set no %s cookie" % COOKIE)

    def key_status(self, api_key):
        """The public API's status for ``api_key`` on ``GET /api/v1/workflows?limit=1`` (scope workflow:list)."""
        return self.request("GET", "/api/v1/workflows", api_key=api_key, query="limit=1")[0]
