# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The part of a fake Open-WebUI 0.12.4 that the Open-WebUI modules' tests share: JSON answers, and the bearer
check with the token and the 401 answer recorded from the real one (fixtures/open_webui/signin_ok.json,
get_unauthenticated.json). Each test's handler adds the routes it serves; ``state`` holds what it records."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


# What _posted returns for the sign-in, which it answers itself.
SIGNED_IN = object()


class RecordedOpenWebUIHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None
    # The admin's password that the sign-in accepts (with admin@homelab.test).
    password = None

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass

    def _answer(self, status, body):
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def _got(self):
        """Record a GET; True when it was the session check (GET /api/v1/auths/), which is answered here."""
        self.state.requests.append(("GET", self.path, None))
        if self.path != "/api/v1/auths/":
            return False
        if self._authorised():
            self._answer(200, {"id": "recorded-admin", "email": "admin@homelab.test", "role": "admin"})
        return True

    def _posted(self):
        """The body of a POST, recorded; SIGNED_IN when it was the sign-in, which is answered here."""
        body = self._body()
        self.state.requests.append(("POST", self.path, body))
        if self.path != "/api/v1/auths/signin":
            return body
        good = body == {"email": "admin@homelab.test", "password": self.password}
        answer = self.state.recorded("signin_ok.json" if good else "signin_bad_password.json")
        self._answer(answer["status"], answer["body"])
        return SIGNED_IN

    def _authorised(self):
        token = self.state.recorded("signin_ok.json")["body"]["token"]
        if self.headers.get("Authorization") != "Bearer " + token:
            answer = self.state.recorded("get_unauthenticated.json")
            self._answer(answer["status"], answer["body"])
            return False
        return True


def serve(handler, state):
    """Serve ``handler`` bound to ``state`` on 127.0.0.1 (``state.url`` says where) until the generator resumes."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("BoundHandler", (handler,), {"state": state}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = "http://127.0.0.1:%d" % server.server_address[1]
    yield state
    server.shutdown()
    server.server_close()
