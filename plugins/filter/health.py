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
  - Given a mapping of host to services instead (a fleet, as C(playbooks/health.yml) collects it), one table for
    every host, with a HOST column first. A host whose value is not a list gets one line saying it has no report.
options:
  _input:
    description:
      - The C(services) list that M(homelab.core.stack_health) returns, or a mapping of inventory host name to such a list.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Show the stack
  ansible.builtin.debug:
    msg: "{{ health.services | homelab.core.health_table }}"

- name: Show the fleet
  ansible.builtin.debug:
    msg: "{{ {'gpu-1': gpu_1_services, 'control': control_services} | homelab.core.health_table }}"
"""

RETURN = r"""
_value:
  description: The table, one string per line.
  type: list
  elements: str
"""

_ROW = "%-18s %-9s %-40s %s"
_HOST_WIDTH = 20
_HEADER = ("SERVICE", "STATE", "URL", "LATENCY")


def _row(entry):
    probe = entry.get("probe") or {}
    target = probe.get("target") or "-"
    latency = "%d ms" % probe["latency_ms"] if probe.get("latency_ms") is not None else "-"
    state = "healthy" if entry.get("healthy") else "UNHEALTHY"
    return (entry.get("service") or "-", state, target if target.startswith("http") else "-", latency)


def health_table(services):
    if isinstance(services, dict):
        # As wide as the longest host name, so the columns line up.
        column = "%%-%ds " % max([_HOST_WIDTH] + [len(str(host)) for host in services])
        lines = [(column % "HOST") + _ROW % _HEADER]
        for host in services:
            if not isinstance(services[host], list):
                lines.append((column % host) + _ROW % ("-", "NO REPORT", "-", "-"))
                continue
            lines.extend((column % host) + _ROW % _row(entry) for entry in services[host])
        return lines
    return [_ROW % _HEADER] + [_ROW % _row(entry) for entry in services]


class FilterModule:
    def filters(self):
        return {"health_table": health_table}
