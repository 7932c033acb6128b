"""_endpoints: the one rule for a service's host port and address, which the stacks, the fleet and the ollama role use."""

from __future__ import annotations

import pytest

from ansible_collections.homelab.core.plugins.module_utils import _catalogue
from ansible_collections.homelab.core.plugins.module_utils._endpoints import container_port, service_endpoint, service_port

CATALOGUE = {"ollama": {"port": 11434}, "open-webui": {"port": 3000, "container_port": 8080}, "coolify-db": {}}


@pytest.mark.parametrize(
    "service, ports, expected",
    [
        ("ollama", None, 11434),
        ("ollama", {"ollama": 11435}, 11435),
        ("open-webui", {"open_webui": 3005}, 3005),
        ("open-webui", {"ollama": 11435}, 3000),
        # An override of null publishes no port; a service without one publishes none.
        ("ollama", {"ollama": None}, None),
        ("coolify-db", {}, None),
    ],
    ids=["catalogue", "override", "underscore-spelling", "other-service", "null-override", "no-port"],
)
def test_the_host_port_is_the_override_else_the_catalogues(service, ports, expected):
    assert service_port(service, CATALOGUE, ports) == expected


def test_inside_the_compose_network_a_service_answers_on_its_container_port():
    assert container_port("open-webui", CATALOGUE) == 8080
    assert container_port("ollama", CATALOGUE) == 11434


@pytest.mark.parametrize(
    "bind_address, url",
    [("127.0.0.1", "http://127.0.0.1:3000"), ("0.0.0.0", "http://127.0.0.1:3000"), ("::", "http://127.0.0.1:3000"),
     ("fd00::5", "http://[fd00::5]:3000")],
)
def test_a_client_on_the_host_reaches_a_wildcard_on_loopback(bind_address, url):
    assert service_endpoint("open-webui", CATALOGUE, bind_address)["url"] == url


def test_the_stacks_resolve_their_ports_by_the_same_rule():
    stack = {"services": CATALOGUE, "overrides": {"ports": {"open_webui": 3005, "ollama": None}}}
    services = _catalogue.resolve_services(stack)
    assert [services[name].get("port") for name in ("ollama", "open-webui", "coolify-db")] == [None, 3005, None]
    assert "port" not in services["coolify-db"]
