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

extends_documentation_fragment:
  - homelab.core.open_webui

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

from ansible_collections.homelab.core.plugins.module_utils._open_webui import (
    check_wanted,
    connection_id,
    is_managed,
    plan,
    public_view,
)
from ansible_collections.homelab.core.plugins.module_utils._open_webui_api import OpenWebUIError, admin_module, signed_in


def run(module):
    params = module.params
    prefix = params["id_prefix"]
    wanted = [dict(entry, key=entry["key"] or params["key"]) for entry in params["connections"]]
    errors = check_wanted(wanted, prefix)
    if errors:
        module.fail_json(msg=" ".join(errors))
    changed = False
    try:
        api = signed_in(module)
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
    run(admin_module(
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
    ))


if __name__ == "__main__":
    main()
