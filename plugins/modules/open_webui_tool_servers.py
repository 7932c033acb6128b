#!/usr/bin/python
#
# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: open_webui_tool_servers

short_description: Wire Open-WebUI to MCP servers through its admin API

version_added: 1.0.0

author:
  - homelab.core maintainers (@homelab-core)

description:
  - Makes Open-WebUI's list of tool-server connections hold exactly one MCP connection (Streamable HTTP, bearer
    key) per entry of O(connections), through Open-WebUI's admin API at O(url). The key goes into Open-WebUI's
    config store (its database), never into the container's environment.
  - It signs in as the admin (C(POST /api/v1/auths/signin)), reads the list (C(GET /api/v1/configs/tool_servers)),
    and writes the whole list back once (C(POST /api/v1/configs/tool_servers)) only when something differs.
  - The connections this module manages are the MCP connections whose id starts with O(id_prefix). Every other
    connection (one an admin added by hand) is written back unchanged and in its place.
  - A managed connection whose URL, name, description or key (a rotated key) differs is updated in place; what an
    admin set on it besides (custom headers, a tool filter, access grants unless O(access_grants) is given) is
    kept. Managed connections no longer in O(connections), and duplicates of one id, are removed.
  - With O(verify=true) Open-WebUI itself connects to each managed server (C(POST
    /api/v1/configs/tool_servers/verify)) and lists its tools; a server it cannot reach fails the task.
  - Written from Open-WebUI 0.12.4 (C(open_webui/routers/configs.py), C(open_webui/routers/auths.py)).

attributes:
  check_mode:
    support: full
    description: Signs in and reads the list, but writes nothing. Verification (O(verify)) still runs.
  diff_mode:
    support: full
    description: The connections before and after, by id, type, URL and name; never a key.
  idempotent:
    support: full
    description: A second run with the same options reports no change and writes nothing.

options:
  url:
    description:
      - Base URL of Open-WebUI, as this host reaches it.
    type: str
    default: http://127.0.0.1:3000
  admin_email:
    description:
      - E-mail of an Open-WebUI admin (the one created from C(WEBUI_ADMIN_EMAIL) at the first start).
    type: str
    required: true
  admin_password:
    description:
      - That admin's password.
    type: str
    required: true
  connections:
    description:
      - The MCP servers Open-WebUI must be connected to. An empty list removes every managed connection.
    type: list
    elements: dict
    required: true
    suboptions:
      id:
        description:
          - Short id of the server; the connection's id in Open-WebUI is O(id_prefix) followed by it.
          - Must not contain V(:) or V(|) (Open-WebUI refuses them).
        type: str
        required: true
      name:
        description: Name shown in Open-WebUI; defaults to the id.
        type: str
      description:
        description: Description shown in Open-WebUI.
        type: str
        default: ""
      url:
        description: URL of the server's Streamable HTTP endpoint as Open-WebUI (its container) reaches it.
        type: str
        required: true
      key:
        description: Bearer key Open-WebUI sends as C(Authorization) to the server; defaults to O(key).
        type: str
  key:
    description:
      - Bearer key of every connection that gives none itself (one access key for all servers behind one gateway).
    type: str
  id_prefix:
    description:
      - Start of the id of every connection this module manages. Connections with other ids are left alone.
    type: str
    default: homelab-
  access_grants:
    description:
      - Who may use the managed connections, as Open-WebUI's C(config.access_grants). For every user give one
        element with C(principal_type=user), C(principal_id=*) and C(permission=read).
      - An empty list means admins only (Open-WebUI's rule). When not given, new connections get an empty list and
        existing ones keep theirs.
    type: list
    elements: dict
  verify:
    description:
      - After the list is written, ask Open-WebUI to connect to each managed server and list its tools; fail when
        it cannot.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for each answer of Open-WebUI.
    type: int
    default: 30
  wait:
    description:
      - Seconds to keep trying to sign in while Open-WebUI does not answer yet (it was just started, or restarted on a
        new data directory, and is still migrating its database).
    type: int
    default: 180
  validate_certs:
    description: Verify TLS certificates when O(url) is C(https).
    type: bool
    default: true

notes:
  - The admin API returns the stored key of each connection, so a rotated key is detected by comparing it; it is
    never shown in results or diffs.
  - Open-WebUI must be able to reach each O(connections[].url) from its own container, for example over a compose
    network it shares with the MCP gateway.
"""

EXAMPLES = r"""
- name: Connect Open-WebUI to the deployed MCP servers
  homelab.core.open_webui_tool_servers:
    url: http://127.0.0.1:3000
    admin_email: "{{ main_stack_open_webui_admin_email }}"
    admin_password: "{{ main_stack_open_webui_admin_password }}"
    connections:
      - id: x-mcp
        name: X
        url: http://mcp-gateway:3302/mcp
      - id: tiktok-mcp
        url: http://mcp-gateway:3300/mcp
    key: "{{ mcp_access_key }}"
    verify: true
  no_log: true
"""

RETURN = r"""
connections:
  description: Every connection after the run (user-added ones included), without keys or headers.
  returned: success
  type: list
  elements: dict
  sample:
    - {id: homelab-x-mcp, name: X, type: mcp, url: "http://mcp-gateway:3302/mcp", auth_type: bearer, enabled: true,
       managed: true}
added:
  description: Ids of the managed connections added.
  returned: success
  type: list
  elements: str
  sample: [homelab-x-mcp]
updated:
  description: Ids of the managed connections updated, with the fields that differed (V(key) for a rotated key).
  returned: success
  type: dict
  sample: {homelab-tiktok-mcp: [key]}
removed:
  description: Ids of the managed connections removed.
  returned: success
  type: list
  elements: str
  sample: [homelab-youtube-mcp]
tools:
  description: With O(verify=true), the names of the tools Open-WebUI listed, per managed connection id.
  returned: when verify is true
  type: dict
  sample: {homelab-x-mcp: [get_user, post_tweet]}
"""

import json
import socket
import time
import urllib.error

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.homelab.core.plugins.module_utils._answers import answer_message
from ansible_collections.homelab.core.plugins.module_utils._open_webui import (
    check_wanted,
    connection_id,
    is_managed,
    plan,
    public_view,
)


def _detail_of(body):
    """FastAPI's \"detail\" of an answer, else its text (short)."""
    return answer_message(body, "detail").rstrip(".")


SIGNIN = "/api/v1/auths/signin"
TOOL_SERVERS = "/api/v1/configs/tool_servers"
VERIFY = "/api/v1/configs/tool_servers/verify"


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

    def sign_in(self, email, password):
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
            break
        if status == 200 and isinstance(body, dict) and body.get("token"):
            if body.get("role") not in (None, "admin"):
                raise OpenWebUIError("Open-WebUI user %s signed in but is not an admin (role %r): admin_email must "
                                     "name an admin." % (email, body.get("role")))
            self.token = body["token"]
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

    def verify(self, connection):
        status, body = self.call("POST", VERIFY, connection)
        if status != 200 or not isinstance(body, dict) or not body.get("status"):
            detail = _detail_of(json.dumps(body) if not isinstance(body, str) else body)
            raise OpenWebUIError("Open-WebUI could not connect to MCP server %s at %s and list its tools: HTTP %s, %s."
                                 % (connection_id(connection), connection.get("url"), status, detail))
        return [spec.get("name") for spec in body.get("specs") or [] if isinstance(spec, dict)]


def run(module):
    params = module.params
    prefix = params["id_prefix"]
    wanted = [dict(entry, key=entry["key"] or params["key"]) for entry in params["connections"]]
    errors = check_wanted(wanted, prefix)
    if errors:
        module.fail_json(msg=" ".join(errors))
    api = OpenWebUI(params["url"], params["timeout"], params["validate_certs"], wait=params["wait"])
    changed = False
    try:
        api.sign_in(params["admin_email"], params["admin_password"])
        existing = api.read()
        new, added, updated, removed = plan(existing, wanted, prefix, params["access_grants"])
        changed = bool(added or updated or removed)
        if changed and not module.check_mode:
            api.write(new)
        result = dict(
            changed=changed,
            connections=[public_view(connection, prefix) for connection in new],
            added=added,
            updated=updated,
            removed=removed,
        )
        if module._diff:
            result["diff"] = dict(
                before=dict(connections=[public_view(connection, prefix) for connection in existing]),
                after=dict(connections=result["connections"]),
            )
        if params["verify"]:
            result["tools"] = dict((connection_id(connection), api.verify(connection))
                                   for connection in new if is_managed(connection, prefix))
    except OpenWebUIError as error:
        # A failed verification after a write still changed Open-WebUI.
        module.fail_json(msg=str(error), changed=changed and not module.check_mode)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", default="http://127.0.0.1:3000"),
            admin_email=dict(type="str", required=True),
            admin_password=dict(type="str", required=True, no_log=True),
            connections=dict(type="list", elements="dict", required=True, options=dict(
                id=dict(type="str", required=True),
                name=dict(type="str"),
                description=dict(type="str", default=""),
                url=dict(type="str", required=True),
                key=dict(type="str", no_log=True),
            )),
            key=dict(type="str", no_log=True),
            id_prefix=dict(type="str", default="homelab-"),
            access_grants=dict(type="list", elements="dict"),
            verify=dict(type="bool", default=False),
            timeout=dict(type="int", default=30),
            wait=dict(type="int", default=180),
            validate_certs=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if module.params["timeout"] <= 0:
        module.fail_json(msg="timeout must be a positive number of seconds.")
    run(module)


if __name__ == "__main__":
    main()
