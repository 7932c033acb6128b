#!/usr/bin/python
# Copyright: homelab.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: warn
short_description: Show a warning in the play output
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - Adds a message to the run's warnings (shown as C([WARNING]) and counted by callbacks), for
    conditions a user must see but that should not fail the run, such as remote access being off.
  - Runs on the controller; never changes anything.
options:
  msg:
    description: The warning, one sentence.
    type: str
    required: true
attributes:
  action:
    support: full
    description: Implemented as an action plugin that runs on the controller.
  check_mode:
    support: full
    description: Only reports; identical in check mode.
  diff_mode:
    support: none
    description: Nothing to diff.
  idempotent:
    support: full
    description: Never reports a change.
notes:
  - This file only documents the action plugin of the same name.
"""

EXAMPLES = r"""
- name: Say that remote access is off
  homelab.core.warn:
    msg: No tunnel token is set, so remote access is off.
"""

RETURN = r"""
msg:
  description: The warning that was shown.
  returned: always
  type: str
  sample: No tunnel token is set, so remote access is off.
"""
