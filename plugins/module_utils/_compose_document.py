# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The compose project of a stack, as a dict, and the health probes of what it publishes: pure functions, no I/O.

Takes a stack definition (see ``_catalogue``), its services as ``_catalogue.resolve_services``
gives them and its secrets as ``_catalogue.resolve_secrets`` gives them.
"""

from __future__ import annotations

import copy

from ansible_collections.homelab.core.plugins.module_utils._catalogue import (
    enabled_services,
    local_host,
    service_image_ref,
    uses_gpu,
)
from ansible_collections.homelab.core.plugins.module_utils._stack_files import (
    config_file_path,
    config_file_wanted,
    config_hash,
    secret_file_path,
)

LABEL_CONFIG_HASH = "org.homelab.config-hash"
LOGGING = {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}}


def gpu_deploy(gpu_reservation, gpu_device=None):
    """The compose `deploy` that reserves every GPU, or only the one with index ``gpu_device`` (a service split per GPU)."""
    if gpu_reservation == "cdi":
        # compose requires capabilities for every device request, CDI ones too. nvidia-ctk names each GPU's device by
        # its index as well as `all` (its default device-name strategy).
        wanted = "nvidia.com/gpu=%s" % ("all" if gpu_device is None else gpu_device)
        device = {"driver": "cdi", "device_ids": [wanted], "capabilities": ["gpu"]}
    elif gpu_device is not None:
        # compose: count and device_ids exclude each other; the nvidia runtime reads the index as nvidia-smi numbers it.
        device = {"driver": "nvidia", "device_ids": [str(gpu_device)], "capabilities": ["gpu"]}
    else:
        device = {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
    return {"resources": {"reservations": {"devices": [device]}}}


def compose_document(stack, services, values, gpu_reservation="none"):
    """The compose project as a dict, in a stable order."""
    enabled = enabled_services(services)
    document = {"name": stack["project"], "networks": copy.deepcopy(stack.get("networks") or {}), "services": {}}
    for name in enabled:
        entry = services[name]
        service = {"image": service_image_ref(stack, entry, gpu_reservation, name), "restart": "unless-stopped"}
        if entry.get("build"):
            # Built on the host by the engine before compose runs; no registry has it.
            service["pull_policy"] = "never"
        if entry.get("user") is not None:
            service["user"] = str(entry["user"])
        service["networks"] = list(entry.get("networks") or document["networks"])
        ports = []
        if entry.get("port") is not None and not entry.get("publish_via"):
            ports.append("%s:%d:%d" % (stack["bind_address"], entry["port"], entry.get("container_port", entry["port"])))
        # A gateway publishes the ports of the services behind it, on the same port inside.
        ports += [
            "%s:%d:%d" % (stack["bind_address"], services[other]["port"], services[other]["port"])
            for other in enabled
            if services[other].get("publish_via") == name and services[other].get("port") is not None
        ]
        ports += ["%s:%d:%d" % (stack["bind_address"], item["host"], item["container"]) for item in entry.get("extra_ports") or []]
        if entry.get("fleet_port") and entry.get("port") is not None and stack.get("private_address"):
            private = stack["private_address"]
            ports.append("%s:%d:%d" % ("[%s]" % private if ":" in private else private, entry["port"],
                                       entry.get("container_port", entry["port"])))
        if ports:
            service["ports"] = ports
        if entry.get("env"):
            service["env_file"] = ["env/%s.env" % name]
        volumes = [
            "%s/%s:%s" % (stack["data_root"], item["path"], item["target"]) for item in entry.get("data") or [] if item.get("target")
        ]
        volumes += [
            "%s/%s:%s:ro" % (stack["root"], secret_file_path(name, item), item["target"])
            for item in entry.get("secret_files") or []
            if values.get(item["secret"])
        ]
        volumes += [
            "%s:%s:ro" % (config_file_path(stack, item), item["target"])
            for item in entry.get("config_files") or []
            if config_file_wanted(item, services)
        ]
        if volumes:
            service["volumes"] = volumes
        depends_on = {
            other: {"condition": condition} for other, condition in (entry.get("depends_on") or {}).items() if other in enabled
        }
        if depends_on:
            service["depends_on"] = depends_on
        for key, value in (entry.get("compose") or {}).items():
            service[key] = copy.deepcopy(value)
        service["labels"] = dict(service.get("labels") or {}, **{LABEL_CONFIG_HASH: config_hash(stack, name, entry, values, services)})
        if entry.get("gpu") and uses_gpu(gpu_reservation):
            service["deploy"] = gpu_deploy(gpu_reservation, entry.get("gpu_device"))
        service["logging"] = copy.deepcopy(LOGGING)
        document["services"][name] = service
    # Only the networks an enabled service joins: an external one that no service here uses need not exist (the
    # main stack's coolify network on a host without Coolify and cloudflared), and the plan's `networks` says which
    # ones the stack needs.
    used = set(network for service in document["services"].values() for network in service["networks"])
    document["networks"] = dict((key, value) for key, value in document["networks"].items() if key in used)
    return document


def stack_probes(stack, services):
    """stack_health's `services` list: an HTTP probe of the published port where the catalogue has one, and the
    setup page of each service whose admin account the inventory gives (``accounts``), asked as a stranger."""
    host = local_host(stack)
    owned = set(account["service"] for account in stack.get("accounts") or [] if account.get("email"))
    probes = []
    for name in enabled_services(services):
        entry = services[name]
        probe = {"service": name}
        if entry.get("probe") and entry.get("port") is not None:
            probe["url"] = "http://%s:%d%s" % (host, entry["port"], entry["probe"].get("path", "/"))
        if entry.get("setup_page") and name in owned and entry.get("port") is not None:
            probe["setup_page"] = {"url": "http://%s:%d%s" % (host, entry["port"], entry["setup_page"]["path"]),
                                   "rule": entry["setup_page"]["rule"]}
        probes.append(probe)
    return probes
