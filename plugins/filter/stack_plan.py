# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Turn a stack definition into everything the compose_stack engine writes and checks."""

from __future__ import annotations

import yaml

from ansible_collections.homelab.core.plugins.module_utils import _catalogue
from ansible_collections.homelab.core.plugins.module_utils._compose_document import compose_document, stack_probes
from ansible_collections.homelab.core.plugins.module_utils._plain import plain
from ansible_collections.homelab.core.plugins.module_utils._stack_files import compose_file, data_dirs, stack_files

DOCUMENTATION = r"""
name: stack_plan
short_description: Plan a compose stack from its catalogue (files, compose file, probes)
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - Applies the inventory's per-service overrides to the catalogue, resolves every secret (explicit value,
    inventory, persisted, or newly generated) and returns the file tree, the compose file and the health probes.
  - Each service carries a C(org.homelab.config-hash) label, an HMAC-SHA256 keyed with a per-host secret over its
    env file, secret files and config files, so a change recreates exactly the services it affects and the label
    reveals nothing about the values.
  - Generates secrets, so call it once per run and keep the result with C(set_fact) and C(no_log).
options:
  _input:
    description: The stack definition.
    type: dict
    required: true
  read:
    description:
      - What M(homelab.core.read_files) returned for the stack's secrets file and its C(adopt_secrets) files (the
        persisted secrets and the ones services keep, in one). Overrides O(persisted) and O(adopted).
    type: dict
  persisted:
    description: The secrets already persisted on the host for this stack.
    type: dict
    default: {}
  adopted:
    description:
      - A mapping of absolute path to base64 content of the stack's C(adopt_secrets) files, as
        M(homelab.core.read_files) returns it in RV(homelab.core.read_files#module:contents) (missing files are left
        out).
    type: raw
    default: {}
  gpu_reservation:
    description: How containers get the GPU on this host.
    type: str
    choices: [nvidia, cdi, none]
    default: none
"""

EXAMPLES = r"""
- name: Plan the main stack
  ansible.builtin.set_fact:
    __plan: "{{ main_stack_definition | homelab.core.stack_plan(read=__read, gpu_reservation='none') }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    services:
      description: The catalogue with overrides applied; C(enabled) and C(gpu) are booleans.
      type: dict
    enabled:
      description: Names of the services that are deployed.
      type: list
      elements: str
    files:
      description: M(homelab.core.file_tree) entries, the compose file last.
      type: list
      elements: dict
    compose:
      description: The compose file's text.
      type: str
    probes:
      description: The C(services) list for M(homelab.core.stack_health).
      type: list
      elements: dict
    data_dirs:
      description: Absolute data directory path to the services that declare it.
      type: dict
    images:
      description: Service name to the image reference deployed.
      type: dict
    builds:
      description:
        - The images to build on the host before compose runs, one per enabled service with a C(build)
          (service, tag, context, args with C(BASE_IMAGE)). The tag is a hash of the build's inputs, so
          an image is built again only when an input changed.
      type: list
      elements: dict
    container_names:
      description: The container names (compose C(container_name)) that the enabled services need.
      type: list
      elements: str
    networks:
      description: The stack's networks (keys of the definition's C(networks)) that an enabled service joins; the compose
        file declares only these.
      type: list
      elements: str
    adopt_files:
      description: The files where services keep secrets of their own (stack, secret, path, json_key).
      type: list
      elements: dict
    adopted:
      description: Names of the secrets taken from such a file because they differ from the persisted ones.
      type: list
      elements: str
"""

HEADER = "# Managed by homelab.core (stack %s): edits are overwritten on the next run of site.yml.\n"


def stack_plan(stack, persisted=None, gpu_reservation="none", adopted=None, read=None):
    # Ansible's lazy containers and tagged strings as plain data, which the YAML dumper can represent.
    stack = plain(stack)
    if read is not None:
        adopted = plain(read.get("contents") or {})
        persisted = _catalogue.persisted_values(stack, adopted)
    persisted = plain(persisted or {})
    services = _catalogue.resolve_services(stack)
    kept = _catalogue.adopted_values(stack, plain(adopted or {}))
    values = _catalogue.resolve_secrets(stack, persisted, kept)
    document = compose_document(stack, services, values, gpu_reservation)
    compose = HEADER % stack["name"] + yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=4096)
    return {
        "services": services,
        "enabled": _catalogue.enabled_services(services),
        "networks": list(document["networks"]),
        "files": stack_files(stack, services, values) + [compose_file(stack, compose)],
        "compose": compose,
        "probes": stack_probes(stack, services),
        "data_dirs": data_dirs(stack, services),
        "builds": _catalogue.builds(stack, services),
        "container_names": [services[name]["compose"]["container_name"] for name in _catalogue.enabled_services(services)
                            if "container_name" in (services[name].get("compose") or {})],
        "adopt_files": _catalogue.adopt_files(stack),
        "adopted": _catalogue.adopted_changes(stack, persisted, kept),
        "images": {
            name: _catalogue.service_image_ref(stack, services[name], gpu_reservation, name) for name in _catalogue.enabled_services(services)
        },
    }


class FilterModule:
    def filters(self):
        return {"stack_plan": stack_plan}
