"""homelab.core.mcp_client_connections: where Open-WebUI and n8n reach each deployed MCP server."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.filter.mcp_client_connections import mcp_client_connections


def stack(**overrides):
    services = {
        "n8n-mcp": {"description": "n8n", "credentials": ["n8n_api_key"], "port": 3303, "publish_via": "mcp-gateway"},
        "x-mcp": {"description": "X", "credentials": ["x_bearer_token"], "port": 3302, "publish_via": "mcp-gateway"},
        "mcp-gateway": {"description": "gateway"},
        "dashboard": {"description": "status page", "port": 3304},
    }
    definition = {"name": "mcp", "services": services, "inventory_secrets": {"x_bearer_token": "token"},
                  "overrides": {"ports": {}}}
    definition.update(overrides)
    return definition


def test_only_deployed_servers_behind_the_gateway_are_listed_at_the_gateway_port():
    assert mcp_client_connections(stack()) == [
        {"id": "x-mcp", "name": "x-mcp", "description": "X", "url": "http://mcp-gateway:3302/mcp"}]


def test_a_given_credential_adds_its_server_and_a_port_override_moves_its_url():
    both = stack(inventory_secrets={"x_bearer_token": "token", "n8n_api_key": "key"}, overrides={"ports": {"x-mcp": 4400}})
    assert [(item["id"], item["url"]) for item in mcp_client_connections(both)] == [
        ("n8n-mcp", "http://mcp-gateway:3303/mcp"), ("x-mcp", "http://mcp-gateway:4400/mcp")]


def test_no_gateway_no_connection():
    definition = stack()
    definition["services"]["mcp-gateway"]["enabled"] = False
    assert mcp_client_connections(definition) == []


def test_stack_endpoint_follows_the_port_override_and_reaches_an_any_address_bind_on_loopback():
    from ansible_collections.homelab.core.plugins.filter.stack_endpoint import stack_endpoint

    definition = {"services": {"n8n": {"port": 5678}}, "bind_address": "0.0.0.0", "overrides": {"ports": {"n8n": 5700}}}
    assert stack_endpoint(definition, "n8n") == {"address": "127.0.0.1", "port": 5700, "url": "http://127.0.0.1:5700"}
    definition["bind_address"] = "fd00::5"
    assert stack_endpoint(definition, "n8n")["url"] == "http://[fd00::5]:5700"
