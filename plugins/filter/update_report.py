# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tables that playbooks/update.yml prints."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.module_utils import _update

DOCUMENTATION = r"""
name: update_report
short_description: The preview or the result of an update, as a table
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - Without O(outcome), the preview of C(update.yml --check). Each service gets its running version and digest, the
    pinned one, whether it would be recreated, and the newer tags its registry lists. A registry that does not
    answer is reported as V(no answer).
  - With O(outcome), the final table of service, old version, new version and result.
options:
  _input:
    description: The rows of M(homelab.core.update_plan).
    type: list
    elements: dict
    required: true
  tag_results:
    description: The C(results) of M(ansible.builtin.uri) over the rows, against each registry's C(tags/list).
    type: list
    elements: dict
    default: []
  outcome:
    description:
      - Service name to its result (V(updated), V(rolled back), ...), for the final table; or one result (a string)
        for every service the update changes.
    type: raw
"""

EXAMPLES = r"""
- name: Show the preview
  ansible.builtin.debug:
    msg: "{{ update_rows | homelab.core.update_report(tag_results=tags.results) }}"
"""

RETURN = r"""
_value:
  description: One line per service, the headings first.
  type: list
  elements: str
"""


def update_report(rows, tag_results=None, outcome=None):
    if outcome is not None:
        return _update.report(rows, outcome)
    return _update.preview(rows, tag_results)


class FilterModule:
    def filters(self):
        return {"update_report": update_report}
