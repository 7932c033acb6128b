# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an update of a stack's pulled images would do."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.homelab.core.plugins.module_utils import _update
from ansible_collections.homelab.core.plugins.module_utils._plain import plain

DOCUMENTATION = r"""
name: update_plan
short_description: Compare the images a stack's containers run with the images its catalogue pins
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - One row per enabled service whose image is pulled; images built on the host are left to the stack role.
  - C(action) is V(recreate) when the reference differs, V(keep) when it is the same and V(new) when no container
    runs. C(postgres_major) names the old and new major version when a PostgreSQL service would change it.
options:
  _input:
    description: The stack definition (C(main_stack_definition)).
    type: dict
    required: true
  running:
    description: Service name to C({image, id, digests}) of its container now.
    type: dict
    default: {}
  gpu_reservation:
    description: How containers get the GPU on this host (it picks Open-WebUI's tag suffix).
    type: str
    choices: [nvidia, cdi, none]
    default: none
"""

EXAMPLES = r"""
- name: Plan the update of the main stack
  ansible.builtin.set_fact:
    __rows: "{{ main_stack_definition | homelab.core.update_plan(running=__running, gpu_reservation='none') }}"
"""

RETURN = r"""
_value:
  description: >-
    Rows with C(service), C(current), C(current_id), C(digest), C(target), C(action), C(old_version), C(new_version),
    C(image) and C(target_image) (the references as registry, repository, tag and digest), C(tags_url) (the
    registry's tag list), C(rollback_image), C(data_paths), C(database) and C(postgres_major).
  type: list
  elements: dict
"""


def update_plan(stack, running=None, gpu_reservation="none"):
    try:
        # Plain data first: the definition arrives as Ansible's lazy containers.
        return _update.update_plan(plain(stack), plain(running or {}), str(gpu_reservation))
    except (KeyError, ValueError) as error:
        raise AnsibleFilterError("update_plan: %s" % error) from error


class FilterModule:
    def filters(self):
        return {"update_plan": update_plan}
