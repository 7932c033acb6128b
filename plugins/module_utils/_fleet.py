# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the services of a homelab run when it is several hosts: pure functions, no I/O.

Two inventory groups inside ``homelab`` place the services:

``gpu_nodes``  each runs Ollama and the GPU layer
``control``    runs everything else: Open-WebUI, n8n, Coolify, cloudflared, the MCP stack

An inventory with neither group, or whose two groups hold the same hosts, is one or more
single boxes: every host runs every service, exactly as before there were groups. Otherwise it
is a *fleet*: each host runs what its groups place on it, every GPU node publishes Ollama on its
``homelab_private_address`` as well as on loopback, and a firewall lets only the control hosts'
private addresses reach it there.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.homelab.core.plugins.module_utils._endpoints import container_port, service_endpoint, service_port, url_host

GPU_NODES = "gpu_nodes"
CONTROL = "control"
PLACEMENTS = (GPU_NODES, CONTROL)
HOMELAB = "homelab"
ADDRESS_VARIABLE = "homelab_private_address"
OLLAMA = "ollama"


def _members(groups, name):
    return list((groups or {}).get(name) or [])


def is_fleet(groups):
    """True when some host is in exactly one of gpu_nodes and control."""
    return set(_members(groups, GPU_NODES)) != set(_members(groups, CONTROL))


def placements(groups, host):
    """The groups whose services run on ``host``: both of them for a single box."""
    if not is_fleet(groups):
        return list(PLACEMENTS)
    return [name for name in PLACEMENTS if host in _members(groups, name)]


def _host_value(hostvars, host, name, default=None):
    try:
        value = hostvars[host][name]
    except (KeyError, TypeError):
        return default
    return default if value is None else value


def private_address(hostvars, host):
    return str(_host_value(hostvars, host, ADDRESS_VARIABLE, "") or "").strip()


def ollama_port(hostvars, host, catalogue):
    """The host port of a node's Ollama (``_endpoints.service_port``), from the node's own inventory.

    ``catalogue`` is the collection's main stack catalogue, for a node whose inventory has none.
    """
    return service_port(OLLAMA, _host_value(hostvars, host, "main_stack_catalogue", None) or catalogue,
                        _host_value(hostvars, host, "main_stack_ports", {}))


def local_ollama(hostvars, host, catalogue):
    """Where a client on ``host`` itself reaches its Ollama ({address, port, url}; ``_endpoints.service_endpoint``)."""
    return service_endpoint(OLLAMA, _host_value(hostvars, host, "main_stack_catalogue", None) or catalogue,
                            _host_value(hostvars, host, "homelab_bind_address", "127.0.0.1"),
                            _host_value(hostvars, host, "main_stack_ports", {}))


def publishes_privately(groups, host):
    """A GPU node publishes Ollama on its private address when some other host is a control host."""
    return is_fleet(groups) and host in _members(groups, GPU_NODES) and any(
        other != host for other in _members(groups, CONTROL)
    )


def ollama_urls(groups, hostvars, host, catalogue):
    """Every GPU node's Ollama as ``host`` reaches it: its own through the compose network."""
    local_url = "http://%s:%s" % (OLLAMA, container_port(OLLAMA, catalogue))
    if not is_fleet(groups):
        return [local_url]
    urls = []
    for node in _members(groups, GPU_NODES):
        if node == host:
            urls.append(local_url)
            continue
        urls.append("http://%s:%s" % (url_host(private_address(hostvars, node)), ollama_port(hostvars, node, catalogue)))
    return urls


def allowed_sources(groups, hostvars, host):
    """The private addresses that may reach ``host``'s Ollama: every other control host's."""
    return [
        private_address(hostvars, other) for other in _members(groups, CONTROL) if other != host and private_address(hostvars, other)
    ]


def _address_problem(host, value, role):
    if not value:
        return (
            "%s is not set for %s, a %s host; set it to the host's address on the private network between "
            "the homelab hosts (for example 10.0.0.11)." % (ADDRESS_VARIABLE, host, role)
        )
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return "%s of %s (%s) is not an IP address; give the host's address on the private network." % (
            ADDRESS_VARIABLE,
            host,
            value,
        )
    if address.is_loopback or address.is_unspecified or address.is_multicast:
        return (
            "%s of %s (%s) must be the host's own address on the private network, not a loopback, wildcard "
            "or multicast one." % (ADDRESS_VARIABLE, host, value)
        )
    if address.is_global:
        return (
            "%s of %s (%s) is a public address; Ollama has no authentication, so give an address on a private "
            "network (RFC 1918, a VPN such as WireGuard or Tailscale)." % (ADDRESS_VARIABLE, host, value)
        )
    return ""


def docker_user_bypass(options, address=""):
    """The settings among Docker daemon ``options`` with which dockerd never passes packets through its DOCKER-USER
    chain, where the fleet firewall lives (moby v26.1.5 libnetwork/controller_linux.go enabledIptablesVersions), as
    they read in daemon.json; ``address``, the published one, brings ip6tables in when it is IPv6."""
    checks = [("iptables", "false", '"iptables": false'), ("firewall-backend", "nftables", '"firewall-backend": "nftables"')]
    if ":" in str(address):
        checks.append(("ip6tables", "false", '"ip6tables": false'))
    return [text for key, bad, text in checks if options.get(key) is not None and str(options[key]).lower() == bad]


def _firewall_problems(hostvars, host):
    """The inventory's Docker settings that would leave a GPU node's fleet firewall untraversed."""
    if str(_host_value(hostvars, host, "homelab_fleet_firewall", True)).lower() in ("false", "no", "0", "off"):
        return []
    found = []
    for variable in ("docker_daemon_options", "docker_daemon_extra_options"):
        options = _host_value(hostvars, host, variable, {})
        if not isinstance(options, dict):
            continue
        for text in docker_user_bypass(options, private_address(hostvars, host)):
            found.append(
                "%s of %s sets %s, so dockerd never passes packets through its DOCKER-USER chain and "
                "homelab_fleet_firewall could not keep other hosts from Ollama; remove that setting (Docker must "
                "manage iptables), or set homelab_fleet_firewall: false and firewall Ollama yourself." % (variable, host, text)
            )
    return found


def problems(groups, hostvars):
    """Every problem with the fleet's inventory, one sentence each naming the host, the group or variable and the fix."""
    if not is_fleet(groups):
        return []
    found = []
    homelab = _members(groups, HOMELAB)
    gpu_nodes, control = _members(groups, GPU_NODES), _members(groups, CONTROL)
    if not control:
        found.append(
            "The inventory has gpu_nodes but no control group; add the host that runs Open-WebUI and n8n to control "
            "(a single box goes in both groups)."
        )
    if not gpu_nodes:
        found.append(
            "The inventory has a control group but no gpu_nodes; add each host that runs Ollama to gpu_nodes "
            "(a single box goes in both groups)."
        )
    for group, members in ((GPU_NODES, gpu_nodes), (CONTROL, control)):
        for host in members:
            if host not in homelab:
                found.append(
                    "Host %s is in %s but not in homelab, where homelab.core's plays run; add it to homelab too."
                    % (host, group)
                )
    for host in homelab:
        if host not in gpu_nodes and host not in control:
            found.append(
                "Host %s is in homelab but in neither gpu_nodes nor control; add it to the group of what it runs." % host
            )
    seen = {}
    for host in [h for h in homelab if h in gpu_nodes or h in control]:
        # Only a node that others reach, or a control host that the nodes let in, needs the address.
        role = "gpu_nodes" if publishes_privately(groups, host) else "control" if host in control else ""
        if not role:
            continue
        if role == "gpu_nodes":
            found.extend(_firewall_problems(hostvars, host))
        value = private_address(hostvars, host)
        problem = _address_problem(host, value, role)
        if problem:
            found.append(problem)
        elif value in seen:
            found.append(
                "%s %s is given to both %s and %s; give each host its own address." % (ADDRESS_VARIABLE, value, seen[value], host)
            )
        else:
            seen[value] = host
    return found


def fleet_view(groups, hostvars, host, catalogue):
    """What the roles read about ``host``'s place in the homelab, in one mapping (``catalogue``: see ollama_port)."""
    return {
        "fleet": is_fleet(groups),
        "placements": placements(groups, host),
        "gpu_nodes": _members(groups, GPU_NODES),
        "control": _members(groups, CONTROL),
        "private_address": private_address(hostvars, host),
        "publishes_privately": publishes_privately(groups, host),
        "ollama_urls": ollama_urls(groups, hostvars, host, catalogue),
        "ollama": local_ollama(hostvars, host, catalogue),
        "allowed_sources": allowed_sources(groups, hostvars, host),
        "problems": problems(groups, hostvars),
    }
