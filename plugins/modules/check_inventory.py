#!/usr/bin/python
# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: check_inventory
short_description: Check the whole inventory once, before anything on the host changes
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - The one check of homelab.core, first in every playbook (the C(check) entry point of homelab.core.homelab). Every
    refusal comes from one Python entry point, C(plugins/module_utils/_inventory_check.py), and names the variable
    and the fix, one sentence each; all of them fail the task together.
  - Reads on the host, read-only, the stacks' persisted secrets files, the files where services keep secrets of
    their own, and whether the data directories that pinned secrets set up hold anything (M(homelab.core.read_files),
    one call). Their content never leaves the plugin.
  - Checks every variable the inventory sets against the collection's role argument specs (types, choices), each
    stack definition (catalogue keys and types by its schema, overrides, ports and their collisions across stacks,
    accounts, secrets and the rules the definition declares for them), the fleet, the model list, and, when asked,
    the backup and restore settings.
  - Needs no facts, runs on the controller but for the one read, changes nothing, and does the same in check mode.
    The stacks' warnings (a service left unclaimed, ports open to anyone, a secret taken from a service's own data)
    are shown as warnings.
options:
  stacks:
    description: The stack definitions (C(main_stack_definition), C(mcp_stack_definition)).
    type: list
    elements: dict
    default: []
  fleet_problems:
    description: The problems of the fleet's groups and addresses (C(homelab_fleet.problems)).
    type: list
    elements: str
    default: []
  ollama_problem:
    description: The problem of C(ollama_models) or C(ollama_gpu_probe_model), or empty (the C(homelab.core.ollama_models_plan) filter).
    type: str
    default: ""
  backup:
    description: The backup settings (C(backup_*), C(homelab_root), C(homelab_data_root)), for a playbook that backs up.
    type: dict
  restore:
    description: The restore settings (C(backup_restore_name), C(backup_destination)), for a playbook that restores.
    type: dict
notes:
  - This file only documents the action plugin of the same name.
"""

EXAMPLES = r"""
- name: Check the inventory of both stacks
  homelab.core.check_inventory:
    stacks: ["{{ main_stack_definition }}", "{{ mcp_stack_definition }}"]
    fleet_problems: "{{ homelab_fleet.problems }}"
"""

RETURN = r"""
problems:
  description: One sentence per problem; the task fails when there is any.
  returned: always
  type: list
  elements: str
  sample: ["main_stack_ports.ollama is 99999, which is not a port; give a whole number from 1 to 65535."]
msg:
  description: The problems joined, or that the inventory is fine.
  returned: always
  type: str
"""
