# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Everything wrong with the inventory of the compose stacks, before anything changes."""

from __future__ import annotations

from collections.abc import Mapping

from ansible_collections.homelab.core.plugins.module_utils._catalogue import stack_problems as _stack_problems

DOCUMENTATION = r"""
name: stack_problems
short_description: List what is wrong with the inventory of one or more compose stacks
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - Checks stack definitions (built by each stack role from its catalogue and the inventory) and returns one
    sentence per problem, each naming the variable and what to do about it.
  - Covers absolute paths, the bind address (and its exposure beyond the host), the public domain, per-service
    image and port override shapes, port ranges, host ports published twice across all the stacks, unknown secret
    names, secrets with characters a config file would misread, pinned secrets that the inventory would silently
    rotate or that the host lost over data still using them, and the admin accounts each service needs.
  - Needs no facts and reads nothing from the host; pass the persisted secrets that a read-only task read.
options:
  _input:
    description: The stack definitions.
    type: list
    elements: dict
    required: true
  persisted:
    description: Stack name to the secrets already persisted on the host.
    type: dict
    default: {}
  adopted:
    description:
      - A mapping of absolute path to base64 content of the stacks' C(adopt_secrets) files, as
        M(homelab.core.read_files) returns it in RV(homelab.core.read_files#module:contents).
    type: raw
    default: {}
  nonempty_dirs:
    description:
      - The directories of C(validation_reads) that hold anything, as M(homelab.core.read_files) returns them in
        RV(homelab.core.read_files#module:nonempty_dirs). Omitted, pinned secrets lost over live data are not checked.
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: Fail on any problem with the inventory
  ansible.builtin.assert:
    that: __problems | length == 0
    fail_msg: "{{ __problems | join(' ') }}"
  vars:
    __problems: "{{ [main_stack_definition] | homelab.core.stack_problems(persisted={'main': {}}) }}"
"""

RETURN = r"""
_value:
  description: One sentence per problem; empty when the inventory is fine.
  type: list
  elements: str
"""


def _plain(value):
    """The value as plain dicts and lists, each of Ansible's lazy templated containers read once.

    The checks read the definitions many times over; through the lazy containers that each
    access templates again, that took 3 to 4 s of a 25 s no-op site.yml run (ansible-core 2.19).
    """
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def stack_problems(stacks, persisted=None, adopted=None, nonempty_dirs=None):
    return _stack_problems(_plain(list(stacks)), _plain(dict(persisted or {})), _plain(adopted or {}),
                           None if nonempty_dirs is None else _plain(list(nonempty_dirs)))


class FilterModule:
    def filters(self):
        return {"stack_problems": stack_problems}
