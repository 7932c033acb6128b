# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The MCP stack's per-server files: the gateway's route and the dashboard's entry."""

from __future__ import annotations

import json

from ansible_collections.homelab.core.plugins.module_utils._endpoints import local_address

DOCUMENTATION = r"""
name: mcp_gateway_files
short_description: Config files of the MCP gateway's routes and the dashboard's server list
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - For each MCP server, one nginx C(server) block for the gateway (listening on the server's published port,
    answering 401 with C(WWW-Authenticate) unless C(Authorization) is exactly C(Bearer <mcp_access_key>), and
    streaming to the server) and one JSON entry for the dashboard.
  - Every file carries C(with_service), so the compose_stack engine writes and mounts it only while that server
    is deployed.
options:
  _input:
    description: The routes, each C(service), C(port) (the port inside its container) and C(passes_key).
    type: list
    elements: dict
    required: true
  kind:
    description: C(gateway) for the nginx routes, C(dashboard) for the status page's server list.
    type: str
    choices: [gateway, dashboard]
    required: true
  bind_address:
    description: The address the ports are published on, shown as each server's endpoint.
    type: str
    default: 127.0.0.1
"""

EXAMPLES = r"""
- name: The gateway's routes
  ansible.builtin.debug:
    msg: "{{ [{'service': 'x-mcp', 'port': 8000, 'passes_key': false}] | homelab.core.mcp_gateway_files('gateway') }}"
"""

RETURN = r"""
_value:
  description: compose_stack C(config_files) entries (path, target, owner, group, mode, content, with_service).
  type: list
  elements: dict
"""

ROUTE = """# Managed by homelab.core.mcp_stack: the route to %(service)s. Edits are overwritten.
server {
    listen <<port:%(service)s>>;

    location / {
        if ($mcp_authorized = 0) {
            return 401;
        }
        set $mcp_upstream http://%(service)s:%(port)d;
        proxy_pass $mcp_upstream;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        # What a server bound to loopback inside its container accepts (DNS-rebinding guards).
        proxy_set_header Host 127.0.0.1:%(port)d;
        # The client's own address, replacing any it sent: a server trusting one proxy hop (n8n-mcp,
        # TRUST_PROXY=1) counts its failed-request limit per client, not for everyone behind the gateway.
        proxy_set_header X-Forwarded-For $remote_addr;
%(authorization)s
        # Streamable HTTP and SSE: stream both ways, and keep long-lived streams open.
        proxy_buffering off;
        proxy_cache off;
        proxy_request_buffering off;
        proxy_read_timeout 1h;
        proxy_send_timeout 1h;
    }

    error_page 401 = @unauthorized;
    location @unauthorized {
        add_header WWW-Authenticate 'Bearer realm="homelab-mcp"' always;
        default_type application/json;
        return 401 '{"jsonrpc": "2.0", "id": null, "error": {"code": -32001, "message": "Unauthorized: send Authorization: Bearer <mcp_access_key>"}}\\n';
    }
}
"""
# The scheme as "Bearer": the gateway takes it in any case (RFC 7235), n8n-mcp only as "Bearer ".
PASS_KEY = ("        # This server checks the same key itself.\n"
            "        proxy_set_header Authorization $mcp_bearer_authorization;")
DROP_KEY = '        proxy_set_header Authorization "";'


def mcp_gateway_files(routes, kind, bind_address="127.0.0.1"):
    files = []
    host = local_address(bind_address)
    for route in routes or []:
        service = route["service"]
        if kind == "gateway":
            content = ROUTE % {"service": service, "port": int(route["port"]),
                               "authorization": PASS_KEY if route.get("passes_key") else DROP_KEY}
            files.append({"path": "config/mcp-gateway/mcp.d/%s.conf" % service, "target": "/etc/nginx/mcp.d/%s.conf" % service,
                          "owner": 0, "group": 0, "mode": "0444", "content": content, "with_service": service})
        else:
            entry = {"name": service, "url": "http://mcp-gateway:<<port:%s>>/mcp" % service,
                     "endpoint": "http://%s:<<port:%s>>/mcp" % (host, service)}
            files.append({"path": "config/mcp-dashboard/%s.json" % service, "target": "/etc/mcp-dashboard/servers.d/%s.json" % service,
                          "owner": 0, "group": 0, "mode": "0444", "content": json.dumps(entry, sort_keys=True) + "\n",
                          "with_service": service})
    return files


class FilterModule:
    def filters(self):
        return {"mcp_gateway_files": mcp_gateway_files}
