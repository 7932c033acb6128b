# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The MCP servers a stack deploys on this host, as its clients (Open-WebUI, n8n) reach them."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.module_utils._catalogue import enabled_services, resolve_services
from ansible_collections.homelab.core.plugins.module_utils._plain import plain

# Documented in mcp_client_connections.yml.


def mcp_client_connections(stack):
    services = resolve_services(plain(stack))
    connections = []
    for name in enabled_services(services):
        entry = services[name]
        gateway = entry.get("publish_via")
        if not gateway or entry.get("port") is None or gateway not in enabled_services(services):
            continue
        connections.append({
            "id": name,
            "name": name,
            "description": entry.get("description") or name,
            "url": "http://%s:%d/mcp" % (gateway, int(entry["port"])),
        })
    return connections


class FilterModule:
    def filters(self):
        return {"mcp_client_connections": mcp_client_connections}
