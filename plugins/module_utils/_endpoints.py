# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a service answers: the one rule for "service S's host port and address on host H".

The stacks (``_catalogue.resolve_services``), the fleet (``_fleet``: the Ollama URLs of the GPU
nodes) and the ollama role (``service_endpoint`` filter) all ask here. A service's host port is the
inventory's override (``main_stack_ports``, with ``open_webui`` accepted for ``open-webui``), else
its catalogue entry's ``port``; inside the compose network it answers on ``container_port`` (else
``port``). Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

ANY_ADDRESSES = ("0.0.0.0", "::")


def canonical_name(name, services):
    """The catalogue's service name for an override key: `open_webui` is accepted for `open-webui`."""
    if name in services:
        return name
    dashed = str(name).replace("_", "-")
    return dashed if dashed in services else None


def service_port(service, catalogue, ports=None):
    """The host port ``service`` publishes: the override in ``ports`` (either spelling), else the catalogue's."""
    if isinstance(ports, Mapping):
        for key, port in ports.items():
            # An override of null publishes no port, as a catalogue entry without one.
            if canonical_name(key, catalogue) == service:
                return port
    return (catalogue.get(service) or {}).get("port")


def container_port(service, catalogue):
    """The port ``service`` listens on inside the compose network."""
    entry = catalogue.get(service) or {}
    return entry.get("container_port", entry.get("port"))


def local_address(bind_address):
    """The address a client on the host itself uses for ports published on ``bind_address``."""
    return "127.0.0.1" if str(bind_address) in ANY_ADDRESSES or not bind_address else str(bind_address)


def url_host(address):
    """``address`` as the host part of a URL (IPv6 in brackets)."""
    return "[%s]" % address if ":" in str(address) else str(address)


def service_endpoint(service, catalogue, bind_address="127.0.0.1", ports=None):
    """{address, port, url}: where a client on the host reaches ``service``'s published port."""
    address, port = local_address(bind_address), service_port(service, catalogue, ports)
    return {"address": address, "port": port, "url": "http://%s:%s" % (url_host(address), port)}
