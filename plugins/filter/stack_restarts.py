# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The services whose data directory was recreated: their containers still mount the deleted one."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.module_utils._plain import plain
from ansible_collections.homelab.core.plugins.module_utils._stack_files import services_to_restart

DOCUMENTATION = r"""
name: stack_restarts
short_description: The services to restart after their data directory was recreated
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - A data directory that went missing is created again by M(homelab.core.file_tree), but a running container keeps
    the deleted one mounted until it restarts. Returns the enabled services that declare one of the created paths.
options:
  _input:
    description: The plan of M(homelab.core.stack_plan) (its C(data_dirs)).
    type: dict
    required: true
  created_paths:
    description: RV(homelab.core.file_tree#module:created_paths) of the run that wrote the plan's files.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Name the services to restart
  ansible.builtin.debug:
    msg: "{{ plan | homelab.core.stack_restarts(files.created_paths) }}"
"""

RETURN = r"""
_value:
  description: Service names, each once, in the order of the created paths.
  type: list
  elements: str
"""


def stack_restarts(plan, created_paths):
    return services_to_restart(plain(plan["data_dirs"]), plain(list(created_paths or [])))


class FilterModule:
    def filters(self):
        return {"stack_restarts": stack_restarts}
