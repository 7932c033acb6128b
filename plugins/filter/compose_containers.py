# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Containers as compose sees them: name, project, service and mount targets."""

from __future__ import annotations

DOCUMENTATION = r"""
name: compose_containers
short_description: Summarise containers by their compose project, service and mounts
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - Takes the JSON that C(docker container inspect) prints (a list of containers) and returns one mapping per
    container with the compose labels read out, which Jinja's attribute paths cannot reach (the label names
    contain dots).
options:
  _input:
    description: The parsed output of C(docker container inspect).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Names of the containers that belong to no compose project
  ansible.builtin.debug:
    msg: "{{ inspect.stdout | from_json | homelab.core.compose_containers | selectattr('project', 'none') | map(attribute='name') }}"
"""

RETURN = r"""
_value:
  description: >-
    One mapping per container: C(id), C(name) (without the leading slash), C(project) and C(service) (the compose
    labels, or null for a container compose did not make) and C(mount_targets) (the container paths of its mounts).
  type: list
  elements: dict
"""

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


def compose_containers(containers):
    summary = []
    for container in containers or []:
        labels = (container.get("Config") or {}).get("Labels") or {}
        name = container.get("Name")
        summary.append({
            "id": container.get("Id"),
            "name": name.lstrip("/") if name else None,
            "project": labels.get(PROJECT_LABEL),
            "service": labels.get(SERVICE_LABEL),
            "mount_targets": sorted(mount.get("Destination") for mount in container.get("Mounts") or []),
        })
    return summary


class FilterModule:
    def filters(self):
        return {"compose_containers": compose_containers}
