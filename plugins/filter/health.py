# Copyright: homelab.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render homelab.core.stack_health results as a table a person can read."""

from __future__ import annotations

DOCUMENTATION = r"""
name: health_table
short_description: Turn stack_health's services into table lines
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - One line per service with its state, the URL to open and the probe's latency, under a header line.
options:
  _input:
    description: The C(services) list that M(homelab.core.stack_health) returns.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Show the stack
  ansible.builtin.debug:
    msg: "{{ health.services | homelab.core.health_table }}"
"""

RETURN = r"""
_value:
  description: The table, one string per line.
  type: list
  elements: str
"""

_ROW = "%-18s %-9s %-40s %s"


def health_table(services):
    lines = [_ROW % ("SERVICE", "STATE", "URL", "LATENCY")]
    for entry in services:
        probe = entry.get("probe") or {}
        target = probe.get("target") or "-"
        latency = "%d ms" % probe["latency_ms"] if probe.get("latency_ms") is not None else "-"
        state = "healthy" if entry.get("healthy") else "UNHEALTHY"
        lines.append(_ROW % (entry.get("service") or "-", state, target if target.startswith("http") else "-", latency))
    return lines


class FilterModule:
    def filters(self):
        return {"health_table": health_table}
