# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a backup of the stacks holds."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.core.plugins.module_utils import _backup
from ansible_collections.homelab.core.plugins.module_utils._plain import plain

DOCUMENTATION = r"""
name: backup_plan
short_description: The backup tool's plan (databases, exclusions, secret paths) for the stack definitions
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - Reads the C(backup) keys of the stacks' catalogues. PostgreSQL services are dumped through their running
    container and Redis services saved with C(BGSAVE); the live data directories of both, the model paths (unless
    O(include_models)), and the data-tree files the role writes from secrets are left out of the file archive.
  - Files where a service keeps a secret of its own are listed in C(secret_paths), with C(secrets/), for the
    encrypted archive.
  - The plan names secrets only by their file, never by value.
options:
  _input:
    description: The stack definitions (C(main_stack_definition), C(mcp_stack_definition)).
    type: list
    elements: dict
    required: true
  include_models:
    description: Keep the model paths in the file archive.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Plan the backup of both stacks
  ansible.builtin.set_fact:
    __backup_plan: "{{ [main_stack_definition, mcp_stack_definition] | homelab.core.backup_plan(include_models=false) }}"
"""

RETURN = r"""
_value:
  description: >-
    C(root), C(data_root), C(postgres) (project, service, user, password_file), C(redis) (project, service,
    data_path, config), C(exclude) (paths under the data root), C(secret_paths) (paths under the root),
    C(sqlite) (SQLite databases under the data root, snapshotted instead of copied) and
    C(stacks) (project, compose_file, services_with_data).
  type: dict
"""


def backup_plan(stacks, include_models=False):
    try:
        # Plain data first: the definitions arrive as Ansible's lazy containers, which the plan reads many times.
        return _backup.backup_plan(plain(list(stacks or [])), include_models=bool(include_models))
    except (KeyError, ValueError) as error:
        raise AnsibleFilterError("backup_plan: %s" % error) from error


class FilterModule:
    def filters(self):
        return {"backup_plan": backup_plan}
