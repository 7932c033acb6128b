# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The files and directories the validation step reads on the host before it checks the stacks."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.filter.stack_problems import _plain
from ansible_collections.homelab.core.plugins.module_utils._catalogue import validation_reads as _validation_reads

DOCUMENTATION = r"""
name: validation_reads
short_description: What the validation step reads on the host, for one or more compose stacks
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - C(files) are every stack's persisted secrets file and the files where services keep secrets of their own
    (C(adopt_secrets)). C(dirs) are the data directories of the services that read a pinned secret, so that a host
    whose secrets file went missing over live data is told from a new host.
  - Give both to M(homelab.core.read_files) (O(homelab.core.read_files#module:paths) and
    O(homelab.core.read_files#module:dirs)) in one read-only call.
options:
  _input:
    description: The stack definitions.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Read the secrets and look at the data directories, read-only
  homelab.core.read_files:
    paths: "{{ (definitions | homelab.core.validation_reads).files }}"
    dirs: "{{ (definitions | homelab.core.validation_reads).dirs }}"
  register: read
  no_log: true
"""

RETURN = r"""
_value:
  description: The absolute paths to read.
  type: dict
  contains:
    files:
      description: Files whose content the checks need.
      type: list
      elements: str
    dirs:
      description: Directories of which the checks need to know whether they hold anything.
      type: list
      elements: str
"""


def validation_reads(stacks):
    return _validation_reads(_plain(list(stacks)))


class FilterModule:
    def filters(self):
        return {"validation_reads": validation_reads}
