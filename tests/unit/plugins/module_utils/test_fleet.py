"""homelab.core's fleet: placement by inventory group, Ollama URLs, the firewall's sources, inventory problems."""

from __future__ import annotations

import copy

import yaml

from ansible_collections.homelab.core.plugins.filter.docker_user_bypass import docker_user_bypass
from ansible_collections.homelab.core.plugins.filter.fleet import fleet
from ansible_collections.homelab.core.plugins.filter.stack_plan import stack_plan
from ansible_collections.homelab.core.plugins.module_utils import _catalogue

from test_catalogue import PERSISTED, STACK  # the same small stack (same folder, on sys.path)

FLEET = {
    "homelab": ["control-1", "gpu-1", "gpu-2"],
    "control": ["control-1"],
    "gpu_nodes": ["gpu-1", "gpu-2"],
}
ADDRESSES = {
    "control-1": {"homelab_private_address": "10.0.0.10"},
    "gpu-1": {"homelab_private_address": "10.0.0.11"},
    "gpu-2": {"homelab_private_address": "10.0.0.12", "main_stack_ports": {"ollama": 11435}},
}


def groups(**changes):
    value = copy.deepcopy(FLEET)
    value.update(changes)
    return value


def hostvars(**changes):
    value = copy.deepcopy(ADDRESSES)
    for host, host_vars in changes.items():
        value[host] = host_vars
    return value


def test_an_inventory_without_the_groups_is_single_boxes_that_run_everything():
    view = fleet({"homelab": ["box-1", "box-2"]}, {}, "box-1")
    assert view["fleet"] is False
    assert view["placements"] == ["gpu_nodes", "control"]
    assert view["ollama_urls"] == ["http://ollama:11434"]
    assert view["publishes_privately"] is False
    assert view["problems"] == []


def test_one_host_in_both_groups_is_the_single_box_default():
    single = {"homelab": ["box"], "gpu_nodes": ["box"], "control": ["box"]}
    assert fleet(single, {}, "box") == fleet({"homelab": ["box"]}, {}, "box") | {"gpu_nodes": ["box"], "control": ["box"]}


def test_each_host_of_a_fleet_runs_what_its_groups_place_on_it():
    assert fleet(FLEET, ADDRESSES, "control-1")["placements"] == ["control"]
    assert fleet(FLEET, ADDRESSES, "gpu-1")["placements"] == ["gpu_nodes"]


def test_the_control_host_reaches_every_gpu_node_at_its_private_address_and_port():
    view = fleet(FLEET, ADDRESSES, "control-1")
    assert view["ollama_urls"] == ["http://10.0.0.11:11434", "http://10.0.0.12:11435"]
    assert view["publishes_privately"] is False


def test_a_control_host_that_is_also_a_gpu_node_uses_its_own_ollama_over_the_compose_network():
    both = groups(control=["control-1"], gpu_nodes=["control-1", "gpu-1"])
    assert fleet(both, ADDRESSES, "control-1")["ollama_urls"] == ["http://ollama:11434", "http://10.0.0.11:11434"]
    # Nobody else needs its Ollama: it stays on loopback.
    assert fleet(both, ADDRESSES, "control-1")["publishes_privately"] is False
    assert fleet(both, ADDRESSES, "gpu-1")["publishes_privately"] is True


def test_a_gpu_node_lets_in_only_the_control_hosts_addresses():
    view = fleet(groups(control=["control-1", "gpu-2"], gpu_nodes=["gpu-1", "gpu-2"]), ADDRESSES, "gpu-1")
    assert view["allowed_sources"] == ["10.0.0.10", "10.0.0.12"]
    assert fleet(FLEET, ADDRESSES, "gpu-2")["allowed_sources"] == ["10.0.0.10"]


def test_a_good_fleet_inventory_has_no_problems():
    assert fleet(FLEET, ADDRESSES, "gpu-1")["problems"] == []


def test_a_fleet_without_control_hosts_is_refused_naming_the_group():
    problems = fleet(groups(control=[], homelab=["gpu-1", "gpu-2"]), ADDRESSES, "gpu-1")["problems"]
    assert problems == [
        "The inventory has gpu_nodes but no control group; add the host that runs Open-WebUI and n8n to control "
        "(a single box goes in both groups)."
    ]


def test_a_host_in_neither_group_or_outside_homelab_is_refused():
    problems = fleet(groups(homelab=["control-1", "gpu-1", "stray"], gpu_nodes=["gpu-1", "gpu-2"]), ADDRESSES, "gpu-1")["problems"]
    assert "Host gpu-2 is in gpu_nodes but not in homelab, where homelab.core's plays run; add it to homelab too." in problems
    assert "Host stray is in homelab but in neither gpu_nodes nor control; add it to the group of what it runs." in problems


def test_every_missing_or_unusable_private_address_is_named_with_its_host():
    problems = fleet(
        FLEET,
        hostvars(**{"control-1": {}, "gpu-1": {"homelab_private_address": "127.0.0.1"},
                    "gpu-2": {"homelab_private_address": "8.8.8.8"}}),
        "gpu-1",
    )["problems"]
    assert problems == [
        "homelab_private_address is not set for control-1, a control host; set it to the host's address on the private "
        "network between the homelab hosts (for example 10.0.0.11).",
        "homelab_private_address of gpu-1 (127.0.0.1) must be the host's own address on the private network, not a "
        "loopback, wildcard or multicast one.",
        "homelab_private_address of gpu-2 (8.8.8.8) is a public address; Ollama has no authentication, so give an "
        "address on a private network (RFC 1918, a VPN such as WireGuard or Tailscale).",
    ]


def test_a_private_address_given_twice_or_not_an_address_is_refused():
    problems = fleet(FLEET, hostvars(**{"gpu-1": {"homelab_private_address": "10.0.0.10"},
                                        "gpu-2": {"homelab_private_address": "gpu-2.lan"}}), "gpu-1")["problems"]
    assert problems == [
        "homelab_private_address 10.0.0.10 is given to both control-1 and gpu-1; give each host its own address.",
        "homelab_private_address of gpu-2 (gpu-2.lan) is not an IP address; give the host's address on the private network.",
    ]


def test_docker_settings_that_skip_docker_user_are_refused_on_a_gpu_node_only():
    settings = hostvars(**{
        "gpu-1": dict(ADDRESSES["gpu-1"], docker_daemon_extra_options={"iptables": False}),
        "gpu-2": dict(ADDRESSES["gpu-2"], docker_daemon_options={"firewall-backend": "nftables", "log-driver": "local"}),
        "control-1": dict(ADDRESSES["control-1"], docker_daemon_extra_options={"iptables": False}),
    })
    assert fleet(FLEET, settings, "gpu-1")["problems"] == [
        'docker_daemon_extra_options of gpu-1 sets "iptables": false, so dockerd never passes packets through its '
        "DOCKER-USER chain and homelab_fleet_firewall could not keep other hosts from Ollama; remove that setting "
        "(Docker must manage iptables), or set homelab_fleet_firewall: false and firewall Ollama yourself.",
        'docker_daemon_options of gpu-2 sets "firewall-backend": "nftables", so dockerd never passes packets through its '
        "DOCKER-USER chain and homelab_fleet_firewall could not keep other hosts from Ollama; remove that setting "
        "(Docker must manage iptables), or set homelab_fleet_firewall: false and firewall Ollama yourself.",
    ]
    # The firewall switched off: the user firewalls Ollama, and the settings are theirs.
    settings["gpu-1"]["homelab_fleet_firewall"] = False
    settings["gpu-2"]["homelab_fleet_firewall"] = "false"
    assert fleet(FLEET, settings, "gpu-1")["problems"] == []


# --- The catalogue's placement -----------------------------------------------------------------


def placed(placements, private_address=""):
    definition = copy.deepcopy(STACK)
    definition["services"]["ollama"].update({"placement": "gpu_nodes", "fleet_port": True})
    definition["placements"] = placements
    definition["private_address"] = private_address
    return definition


def compose(definition):
    return yaml.safe_load(stack_plan(definition, persisted=PERSISTED)["compose"])


def test_a_gpu_node_runs_only_the_services_placed_on_gpu_nodes_and_publishes_them_privately():
    document = compose(placed(["gpu_nodes"], "10.0.0.11"))
    assert list(document["services"]) == ["ollama"]
    assert document["services"]["ollama"]["ports"] == ["127.0.0.1:11434:11434", "10.0.0.11:11434:11434"]


def test_a_control_host_runs_the_rest_and_drops_its_dependency_on_ollama():
    document = compose(placed(["control"]))
    assert sorted(document["services"]) == ["db", "open-webui"]
    assert "depends_on" not in document["services"]["open-webui"]
    assert compose(STACK)["services"]["open-webui"]["depends_on"] == {"ollama": {"condition": "service_healthy"}}


def test_a_single_box_keeps_every_service_and_loopback_only():
    assert compose(placed(["gpu_nodes", "control"])) == compose(STACK)
    document = compose(placed(["gpu_nodes", "control"]))
    assert sorted(document["services"]) == ["db", "ollama", "open-webui"]
    assert document["services"]["ollama"]["ports"] == ["127.0.0.1:11434:11434"]


def test_a_null_env_value_leaves_the_variable_out_and_the_config_hash_as_it_was():
    with_null = copy.deepcopy(STACK)
    with_null["services"]["open-webui"]["env"]["OLLAMA_BASE_URLS"] = None
    files = {item["path"]: item for item in stack_plan(with_null, persisted=PERSISTED)["files"]}
    env = files["/opt/homelab/env/open-webui.env"]
    assert "OLLAMA_BASE_URL=http://ollama:11434\n" in env.get("content", env.get("secret_content"))
    assert "OLLAMA_BASE_URLS" not in env.get("content", env.get("secret_content"))
    assert compose(with_null)["services"]["open-webui"]["labels"] == compose(STACK)["services"]["open-webui"]["labels"]


def test_a_service_without_placement_runs_on_the_control_hosts():
    services = _catalogue.resolve_services(placed(["gpu_nodes"]))
    assert [name for name in services if services[name]["enabled"]] == ["ollama"]


def test_the_host_side_check_names_the_same_settings_as_the_first_play():
    """roles/main_stack/tasks/fleet_firewall.yml reads the host's daemon.json through the same check."""
    assert docker_user_bypass({"iptables": False, "firewall-backend": "nftables", "log-driver": "local"}, "10.0.0.11") == [
        '"iptables": false', '"firewall-backend": "nftables"']
    assert docker_user_bypass({"iptables": "false", "ip6tables": False}, "10.0.0.11") == ['"iptables": false']
    assert docker_user_bypass({"ip6tables": False}, "fd00::11") == ['"ip6tables": false']
    assert docker_user_bypass({"iptables": True, "firewall-backend": "iptables"}, "fd00::11") == []


def test_this_hosts_own_ollama_follows_the_one_port_rule_of_the_stacks():
    # The catalogue's port, on loopback; the inventory's override (either spelling of a name would do)
    # and a wildcard bind address, which a client on the host reaches on loopback.
    assert fleet({"homelab": ["box"]}, {}, "box")["ollama"] == {"address": "127.0.0.1", "port": 11434,
                                                                "url": "http://127.0.0.1:11434"}
    moved = {"box": {"main_stack_ports": {"ollama": 11435}, "homelab_bind_address": "0.0.0.0"}}
    assert fleet({"homelab": ["box"]}, moved, "box")["ollama"]["url"] == "http://127.0.0.1:11435"
    on_lan = {"box": {"homelab_bind_address": "192.168.1.20"}}
    assert fleet({"homelab": ["box"]}, on_lan, "box")["ollama"]["url"] == "http://192.168.1.20:11434"
