"""homelab.core.status_page: the dashboard's view of the main stack (services, probes, GPU line) and its networks."""

from __future__ import annotations

import copy
import json
import os

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.core.plugins.filter.status_page import gpu_line, status_page

REPOSITORY = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def _yaml(path):
    with open(os.path.join(REPOSITORY, path), encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def _untemplated(value):
    """The catalogue with every Jinja value replaced: switches on, anything else "x"."""
    if isinstance(value, dict):
        return {key: (True if key == "enabled" else _untemplated(item)) for key, item in value.items()}
    if isinstance(value, list):
        return [_untemplated(item) for item in value]
    return "x" if isinstance(value, str) and "{{" in value else value


DEFAULTS = _yaml("roles/main_stack/defaults/main.yml")
VARIABLES = _yaml("roles/main_stack/vars/main.yml")
CATALOGUE = _untemplated(DEFAULTS["main_stack_catalogue"])
STATUS = VARIABLES["main_stack_status"]


def main_status(placements=("gpu_nodes", "control"), ports=None, disabled=(), gpu=None):
    services = copy.deepcopy(CATALOGUE)
    for name in disabled:
        services[name]["enabled"] = False
    definition = {"name": "main", "project": "homelab", "services": services, "placements": list(placements),
                  "overrides": {"images": {}, "ports": ports or {}}, "inventory_secrets": {},
                  "networks": VARIABLES["main_stack_definition"]["networks"]}
    return {"definition": definition, "probes": STATUS["probes"], "networks": STATUS["networks"],
            "gpu": gpu or {"mode": "auto", "gpu_node": True, "reservation": "cdi", "gpu_count": 1}}


def view(status, **kwargs):
    [entry] = status_page(status, "files", **kwargs)
    assert (entry["path"], entry["target"], entry["with_service"]) == \
        ("config/mcp-dashboard/homelab.json", "/etc/mcp-dashboard/homelab.json", "dashboard")
    assert entry["mode"] == "0444" and entry["owner"] == 0
    return json.loads(entry["content"])


def test_a_single_box_shows_every_service_with_its_probe_over_the_status_networks_and_its_local_url():
    shown = view(main_status(ports={"n8n": 5679}), bind_address="0.0.0.0")
    services = {service["name"]: service for service in shown["main"]["services"]}
    assert list(services) == list(CATALOGUE)
    assert {name: service["probe"] for name, service in services.items()} == {
        "ollama": {"protocol": "http", "url": "http://ollama:11434/api/version"},
        "open-webui": {"protocol": "http", "url": "http://open-webui:8080/health"},
        "n8n": {"protocol": "http", "url": "http://n8n:5678/healthz"},
        "coolify-db": {"protocol": "postgres", "host": "coolify-db", "port": 5432},
        "coolify-redis": {"protocol": "redis", "host": "coolify-redis", "port": 6379},
        "coolify-realtime": {"protocol": "http", "url": "http://coolify-realtime:6001/ready"},
        "coolify": {"protocol": "http", "url": "http://coolify:8080/api/health"},
        # Its metrics listen on its own loopback: no server-side probe.
        "cloudflared": None,
    }
    # The host port (an override too) on the address a client on the host uses; none where nothing is published.
    assert services["n8n"]["local_url"] == "http://127.0.0.1:5679"
    assert services["open-webui"]["local_url"] == "http://127.0.0.1:3000"
    assert services["coolify-db"]["local_url"] is None and services["cloudflared"]["local_url"] is None
    assert shown["main"]["ollama"] == {"url": "http://ollama:11434"}
    assert shown["main"]["gpu"]["label"] == "CDI"
    assert shown["mcp"][0]["name"] == "mcp-gateway" and shown["backup_status"] == "/run/homelab-status/backup.json"
    assert status_page(main_status(), "networks") == ["status", "status-coolify"]


def test_every_probed_main_stack_service_joins_a_status_network_and_only_the_dashboard_crosses_them():
    networks = VARIABLES["main_stack_definition"]["networks"]
    for key in STATUS["networks"]:
        assert networks[key]["internal"] is True and networks[key]["name"].startswith("homelab-status")
    intranet = {name for name, entry in CATALOGUE.items() if "intranet" in entry["networks"]}
    coolify = {name for name, entry in CATALOGUE.items() if "coolify" in entry["networks"]}
    for name, service in {service["name"]: service for service in view(main_status())["main"]["services"]}.items():
        joined = set(CATALOGUE[name]["networks"]) & set(STATUS["networks"])
        assert bool(joined) == (service["probe"] is not None), name
    # No status network joins a service to one it could not reach before.
    for key in STATUS["networks"]:
        members = {name for name, entry in CATALOGUE.items() if key in entry["networks"]}
        assert members <= intranet or members <= coolify, (key, members)
    mcp = _yaml("roles/mcp_stack/vars/main.yml")["mcp_stack_definition"]["networks"]
    assert {key: mcp[key] for key in STATUS["networks"]} == \
        {key: {"name": networks[key]["name"], "external": True} for key in STATUS["networks"]}


def test_a_fleets_control_host_shows_ollama_as_running_on_the_gpu_nodes_without_a_probe():
    status = main_status(placements=["control"], gpu={"mode": "auto", "gpu_node": False, "reservation": "none"})
    shown = view(status)
    ollama = shown["main"]["services"][0]
    assert (ollama["name"], ollama["elsewhere"], ollama["probe"], ollama["local_url"]) == ("ollama", "gpu_nodes", None, None)
    assert shown["main"]["ollama"] is None
    assert shown["main"]["gpu"]["reason"] == "this host is not in gpu_nodes: Ollama runs on the fleet's GPU nodes"
    assert status_page(status, "networks") == ["status", "status-coolify"]


def test_disabled_services_are_left_out_and_so_is_a_status_network_nobody_joins():
    status = main_status(disabled=["coolify", "coolify-db", "coolify-redis", "coolify-realtime", "cloudflared"])
    assert [service["name"] for service in view(status)["main"]["services"]] == ["ollama", "open-webui", "n8n"]
    assert status_page(status, "networks") == ["status"]


@pytest.mark.parametrize("gpu, label, reason", [
    ({"mode": "auto", "reservation": "cdi", "gpu_count": 2}, "CDI", "2 GPUs as the CDI device nvidia.com/gpu=all"),
    ({"mode": "required", "reservation": "nvidia", "gpu_count": 1}, "NVIDIA runtime", "1 GPU through the nvidia runtime"),
    ({"mode": "auto", "reservation": "none"}, "CPU-only", "no NVIDIA GPU was usable"),
    ({"mode": "off", "reservation": "none"}, "CPU-only", "homelab_gpu_mode is off"),
    ({"mode": "auto", "reservation": "none", "gpu_node": False}, "CPU-only", "not in gpu_nodes"),
    ({"mode": "auto", "reservation": "unknown"}, "unknown", "not handed"),
])
def test_the_gpu_line_says_how_containers_get_the_gpu_and_why(gpu, label, reason):
    line = gpu_line(gpu)
    assert line["label"] == label and reason in line["reason"]


def test_without_the_main_stack_the_page_shows_the_mcp_stack_and_the_backup_only():
    shown = view({})
    assert shown["main"] == {"present": False, "services": [], "ollama": None, "gpu": None}
    assert [entry["name"] for entry in shown["mcp"]] == ["mcp-gateway"]
    assert status_page({}, "networks") == []


def test_no_placeholder_and_so_no_secret_can_reach_the_page():
    content = status_page(main_status(), "files")[0]["content"]
    assert "<<" not in content and "secret" not in content
    status = main_status()
    status["definition"]["services"]["n8n"]["description"] = "key <<secret:n8n_encryption_key>>"
    with pytest.raises(AnsibleFilterError, match="placeholder"):
        status_page(status, "files")
    with pytest.raises(AnsibleFilterError, match="protocol"):
        status_page(dict(main_status(), probes={"coolify-db": {"protocol": "mysql", "port": 3306}}), "files")
