"""homelab.core.mcp_gateway_files: the gateway's route and the dashboard's entry for each MCP server."""

from __future__ import annotations

import json

from ansible_collections.homelab.core.plugins.filter.mcp_gateway import mcp_gateway_files

ROUTES = [{"service": "n8n-mcp", "port": 3000, "passes_key": True}, {"service": "x-mcp", "port": 8000, "passes_key": False}]


def test_each_route_checks_the_key_streams_and_exists_only_with_its_server():
    n8n, x = mcp_gateway_files(ROUTES, "gateway")
    assert (x["path"], x["target"], x["with_service"]) == ("config/mcp-gateway/mcp.d/x-mcp.conf", "/etc/nginx/mcp.d/x-mcp.conf", "x-mcp")
    assert "listen <<port:x-mcp>>;" in x["content"]
    assert "if ($mcp_authorized = 0) {\n            return 401;" in x["content"]
    assert "add_header WWW-Authenticate 'Bearer realm=\"homelab-mcp\"' always;" in x["content"]
    assert "set $mcp_upstream http://x-mcp:8000;" in x["content"] and "proxy_buffering off;" in x["content"]
    # A server without a check of its own never sees the key; n8n-mcp checks the same key itself.
    assert 'proxy_set_header Authorization "";' in x["content"]
    assert 'proxy_set_header Authorization "";' not in n8n["content"]


def test_the_dashboard_probes_through_the_gateway_and_shows_the_published_endpoint():
    entry = mcp_gateway_files(ROUTES[1:], "dashboard", bind_address="0.0.0.0")[0]
    assert entry["with_service"] == "x-mcp" and entry["target"] == "/etc/mcp-dashboard/servers.d/x-mcp.json"
    assert json.loads(entry["content"]) == {"name": "x-mcp", "url": "http://mcp-gateway:<<port:x-mcp>>/mcp",
                                            "endpoint": "http://127.0.0.1:<<port:x-mcp>>/mcp"}
