# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a client on the host reaches a service of the main stack (the one rule, _endpoints)."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.module_utils._endpoints import service_endpoint as _service_endpoint
from ansible_collections.homelab.core.plugins.module_utils._plain import plain
from ansible_collections.homelab.core.plugins.plugin_utils._collection_data import default_main_catalogue

DOCUMENTATION = r"""
name: service_endpoint
short_description: The address, host port and URL of a main stack service on this host
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - The host port is the inventory's override (O(ports), C(main_stack_ports); C(open_webui) is accepted for
    C(open-webui)), else the catalogue entry's C(port). The same rule places the stacks' ports and the fleet's Ollama
    URLs.
  - The address is O(bind_address), or C(127.0.0.1) when that is C(0.0.0.0) or C(::).
options:
  _input:
    description: The service's name in the catalogue, such as C(ollama).
    type: str
    required: true
  bind_address:
    description: Where the stacks publish their ports (C(homelab_bind_address)).
    type: str
    default: 127.0.0.1
  ports:
    description: The inventory's port overrides (C(main_stack_ports)).
    type: dict
    default: {}
  catalogue:
    description: The main stack's catalogue (C(main_stack_catalogue)); omitted, the collection's own.
    type: dict
"""

EXAMPLES = r"""
- name: Ask Ollama for its version
  ansible.builtin.uri:
    url: "{{ ('ollama' | homelab.core.service_endpoint(homelab_bind_address, main_stack_ports | default({}))).url }}/api/version"
"""

RETURN = r"""
_value:
  description: Where the service answers.
  type: dict
  contains:
    address:
      description: The address a client on the host uses.
      type: str
    port:
      description: The host port.
      type: int
    url:
      description: C(http://address:port).
      type: str
"""


def service_endpoint(service, bind_address="127.0.0.1", ports=None, catalogue=None):
    return _service_endpoint(str(service), plain(catalogue) if catalogue else default_main_catalogue(), str(bind_address),
                             plain(ports or {}))


class FilterModule:
    def filters(self):
        return {"service_endpoint": service_endpoint}
