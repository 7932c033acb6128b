# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a run of the stacks should warn about, before anything changes."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.filter.stack_problems import _plain
from ansible_collections.homelab.core.plugins.module_utils._catalogue import stack_warnings as _stack_warnings

DOCUMENTATION = r"""
name: stack_warnings
short_description: List what a run of one or more compose stacks should warn about
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - One sentence per warning. A service whose admin account the inventory does not give, when no tunnel routes to
    it, is named with its local URL (behind a tunnel that is a problem of M(homelab.core.stack_problems#filter)
    instead). Stacks published beyond the host (C(homelab_expose_on_lan)) name every port that answers without a
    login of its own (the catalogue's C(unauthenticated) key).
  - Needs no facts and reads nothing from the host.
options:
  _input:
    description: The stack definitions.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Warn about what the inventory leaves open
  homelab.core.warn:
    msg: "{{ item }}"
  loop: "{{ [main_stack_definition] | homelab.core.stack_warnings }}"
"""

RETURN = r"""
_value:
  description: One sentence per warning; empty when there is nothing to warn about.
  type: list
  elements: str
"""


def stack_warnings(stacks):
    return _stack_warnings(_plain(list(stacks)))


class FilterModule:
    def filters(self):
        return {"stack_warnings": stack_warnings}
