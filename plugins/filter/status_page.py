# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The status page's view of the whole homelab: what the MCP stack's dashboard probes besides its servers."""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.core.plugins.module_utils import _catalogue
from ansible_collections.homelab.core.plugins.module_utils._endpoints import local_address, url_host
from ansible_collections.homelab.core.plugins.module_utils._plain import plain

DOCUMENTATION = r"""
name: status_page
short_description: The dashboard's view of the main stack (services, GPU decision, backup status) and its networks
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - With O(kind=files), one compose_stack C(config_files) entry (C(/etc/mcp-dashboard/homelab.json), only while the dashboard is
    deployed) that tells the MCP stack's status page what to probe server-side besides the MCP servers.
  - Every main-stack service deployed on this host, with how the page asks it (HTTP GET of the catalogue's C(probe)
    on its container port, or a protocol probe from O(_input.probes)) over the status networks, and its local URL
    (C(http://<bind address>:<port>)). Services placed on other hosts of a fleet are listed as running there;
    disabled ones are left out.
  - The GPU decision as the main stack applied it, with the reason in words; Ollama's API (models installed and
    loaded) when Ollama runs on this host; the MCP gateway's own health URL; where the backup status file is mounted.
  - Holds no secret, only names, ports, paths and the GPU decision. A value that looks like a placeholder is refused.
  - With O(kind=networks), the status networks (keys of O(_input.networks)) that a main-stack service deployed on
    this host joins. The dashboard joins those, and only those exist.
options:
  _input:
    description:
      - The main stack as the page shows it (C(main_stack_status), handed over by the playbook), or C({}) for none.
      - C(definition) the main stack's definition; C(gpu) its mode, reservation, gpu_count, gpu_node and ollama_instances
        (how many Ollamas share the GPUs, one per GPU with the per_gpu layout); C(probes)
        a protocol (postgres or redis) and a port per service that has no HTTP probe; C(networks) the keys
        of the status networks in the definition.
    type: dict
    required: true
  kind:
    description: C(files) for the dashboard's config file, C(networks) for the status networks it joins.
    type: str
    choices: [files, networks]
    required: true
  bind_address:
    description: The address the ports are published on, shown in each local URL.
    type: str
    default: 127.0.0.1
  backup_status:
    description: Where the dashboard finds the backup tool's status file, inside its container.
    type: str
    default: /run/homelab-status/backup.json
"""

EXAMPLES = r"""
- name: The dashboard's view of the main stack
  ansible.builtin.debug:
    msg: "{{ main_stack_status | homelab.core.status_page('files', bind_address=homelab_bind_address) }}"
"""

RETURN = r"""
_value:
  description:
    - O(kind=files) compose_stack C(config_files) entries (path, target, owner, group, mode, content, with_service).
    - O(kind=networks) network keys.
  type: list
  elements: raw
"""

GATEWAY = {"name": "mcp-gateway", "stack": "mcp", "description": "Bearer-key gateway in front of the MCP servers",
           "probe": {"protocol": "http", "url": "http://mcp-gateway:8080/healthz"}, "local_url": None,
           "endpoint": "publishes the servers' ports"}
PROTOCOLS = ("postgres", "redis")


def gpu_line(gpu):
    """{mode, reservation, gpu_count, label, reason}: how containers get the GPU, and why, in words."""
    gpu = dict(gpu or {})
    mode, reservation = str(gpu.get("mode") or "auto"), str(gpu.get("reservation") or "unknown")
    count = int(gpu.get("gpu_count") or 0)
    gpus = "%d GPU%s" % (count, "" if count == 1 else "s") if count else "the GPU"
    if mode == "off":
        label, reason = "CPU-only", "homelab_gpu_mode is off"
    elif not gpu.get("gpu_node", True):
        label, reason = "CPU-only", "this host is not in gpu_nodes: Ollama runs on the fleet's GPU nodes"
    elif reservation == "cdi":
        label, reason = "CDI", "containers get %s as the CDI device nvidia.com/gpu=all (verified by the GPU layer)" % gpus
    elif reservation == "nvidia":
        label, reason = "NVIDIA runtime", "containers get %s through the nvidia runtime (verified by the GPU layer)" % gpus
    elif reservation == "none":
        label, reason = "CPU-only", ("homelab_gpu_mode is auto and no NVIDIA GPU was usable from containers "
                                     "(see the GPU layer's warning in the last run)")
    else:
        label, reason = "unknown", "the GPU decision was not handed to the status page"
    if label in ("CDI", "NVIDIA runtime") and int(gpu.get("ollama_instances") or 0) > 1:
        reason += "; one Ollama per GPU (homelab_ollama_gpu_layout per_gpu), each reserving its GPU alone"
    return {"mode": mode, "reservation": reservation, "gpu_count": count, "label": label, "reason": reason}


def main_services(status, bind_address):
    """The main stack's services as the page lists them, in catalogue order."""
    stack = status.get("definition") or {}
    if not stack.get("services"):
        return [], None
    resolved = _catalogue.resolve_services(stack)
    placements = stack.get("placements")
    protocols = status.get("probes") or {}
    host = url_host(local_address(bind_address))
    services, ollama = [], None
    for name, entry in resolved.items():
        placement = entry.get("placement", _catalogue.DEFAULT_PLACEMENT)
        elsewhere = placements is not None and placement not in placements
        if not entry.get("enabled") and not elsewhere:
            continue
        row = {"name": name, "stack": "main", "description": str(entry.get("description") or ""),
               "local_url": "http://%s:%d" % (host, int(entry["port"])) if entry.get("port") and not elsewhere else None,
               "elsewhere": placement if elsewhere else None, "probe": None}
        inside = int(entry.get("container_port") or entry.get("port") or 0)
        if elsewhere:
            pass
        elif (entry.get("probe") or {}).get("path") and inside:
            row["probe"] = {"protocol": "http", "url": "http://%s:%d%s" % (name, inside, entry["probe"]["path"])}
        elif name in protocols:
            spec = protocols[name]
            if spec.get("protocol") not in PROTOCOLS:
                raise ValueError("probes.%s.protocol must be one of %s" % (name, ", ".join(PROTOCOLS)))
            row["probe"] = {"protocol": spec["protocol"], "host": name, "port": int(spec["port"])}
        # With one Ollama per GPU, the page asks the first one (GPU 0) for its models.
        if (entry.get("instance_of") or name) == "ollama" and not elsewhere and inside and ollama is None:
            ollama = {"url": "http://%s:%d" % (name, inside)}
        services.append(row)
    return services, ollama


def status_networks(status):
    """The status networks that a main-stack service deployed here joins, in the order given."""
    stack = status.get("definition") or {}
    if not stack.get("services"):
        return []
    joined = set()
    for entry in _catalogue.resolve_services(stack).values():
        if entry.get("enabled"):
            joined.update(entry.get("networks") or [])
    return [name for name in status.get("networks") or [] if name in joined]


def status_page(status, kind, bind_address="127.0.0.1", backup_status="/run/homelab-status/backup.json"):
    try:
        status = plain(dict(status or {}))
        if kind == "networks":
            return status_networks(status)
        if kind != "files":
            raise ValueError("kind must be files or networks, not %r" % (kind,))
        services, ollama = main_services(status, bind_address)
        view = {
            "main": {"present": bool(services), "services": services, "ollama": ollama,
                     "gpu": gpu_line(status.get("gpu")) if status.get("definition") else None},
            "mcp": [GATEWAY],
            "backup_status": backup_status,
        }
    except (KeyError, TypeError, ValueError) as error:
        raise AnsibleFilterError("status_page: %s" % error) from error
    content = json.dumps(view, indent=1, sort_keys=True) + "\n"
    # The engine fills placeholders in config files in last, secrets included: none may reach the page.
    if "<<" in content:
        raise AnsibleFilterError("status_page: a value holds a placeholder (<<...>>); the status page takes none")
    return [{"path": "config/mcp-dashboard/homelab.json", "target": "/etc/mcp-dashboard/homelab.json", "owner": 0,
             "group": 0, "mode": "0444", "content": content, "with_service": "dashboard"}]


class FilterModule:
    def filters(self):
        return {"status_page": status_page}
