# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A host's place in a homelab of several hosts (the gpu_nodes and control groups)."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.module_utils._fleet import fleet_view
from ansible_collections.homelab.core.plugins.plugin_utils._collection_data import default_main_catalogue

DOCUMENTATION = r"""
name: fleet
short_description: Where the services run when the homelab is several hosts
version_added: 1.1.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - Reads the inventory groups C(gpu_nodes) (Ollama and the GPU layer) and C(control) (everything else).
  - With neither group, or with both groups holding the same hosts, every host is a whole homelab on its own
    (the single-box default) and the result says so.
  - Otherwise it gives what the host runs, the Ollama URLs a control host uses, whether the host publishes Ollama
    on its C(homelab_private_address), the addresses its firewall lets in, and the problems of the fleet's inventory.
options:
  _input:
    description: The inventory's C(groups).
    type: dict
    required: true
  hostvars:
    description: The inventory's C(hostvars) (C(homelab_private_address), C(main_stack_ports) of each host).
    type: dict
    required: true
  host:
    description: The host to describe, usually C(inventory_hostname).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Show what this host runs
  ansible.builtin.debug:
    msg: "{{ (groups | homelab.core.fleet(hostvars, inventory_hostname)).placements }}"
"""

RETURN = r"""
_value:
  description: The host's place in the homelab.
  type: dict
  contains:
    fleet:
      description: Whether the inventory is a fleet (some host is in only one of the two groups).
      type: bool
    placements:
      description: The groups whose services run on the host (both for a single box).
      type: list
      elements: str
    gpu_nodes:
      description: The hosts of C(gpu_nodes).
      type: list
      elements: str
    control:
      description: The hosts of C(control).
      type: list
      elements: str
    private_address:
      description: The host's C(homelab_private_address), or an empty string.
      type: str
    publishes_privately:
      description: Whether the host publishes Ollama on its private address for other control hosts.
      type: bool
    ollama_urls:
      description: Every GPU node's Ollama as this host's containers reach it.
      type: list
      elements: str
    ollama:
      description:
        - Where a client on this host itself reaches its Ollama (address, port, url), by the one rule for a service's
          host port (C(main_stack_ports), else the catalogue's port; C(127.0.0.1) for a wildcard C(homelab_bind_address)).
      type: dict
    allowed_sources:
      description: The private addresses of the other control hosts, the only ones let in to this host's Ollama.
      type: list
      elements: str
    problems:
      description: One sentence per problem with the fleet's inventory; empty when it is fine.
      type: list
      elements: str
"""


def fleet(groups, hostvars, host):
    return fleet_view(dict(groups or {}), hostvars, str(host), default_main_catalogue())


class FilterModule:
    def filters(self):
        return {"fleet": fleet}
