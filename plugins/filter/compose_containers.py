# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Containers as compose sees them: name, project and service."""

from __future__ import annotations

import json

DOCUMENTATION = r"""
name: compose_containers
short_description: Read the compose project and service of each container out of C(docker container ls)
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - Takes the lines that C(docker container ls --all --no-trunc --format json) prints, one JSON object per
    container, and returns one mapping per container with the compose labels read out of the
    comma-separated C(Labels) field, which Jinja cannot reach.
  - That listing holds no environment variables, so it is safe to log, unlike C(docker container inspect).
options:
  _input:
    description: The lines that C(docker container ls --format json) printed (strings), or those lines parsed.
    type: list
    elements: raw
    required: true
"""

EXAMPLES = r"""
- name: Names of the containers that belong to no compose project
  ansible.builtin.debug:
    msg: "{{ listing.stdout_lines | homelab.core.compose_containers | selectattr('project', 'none') | map(attribute='name') }}"
"""

RETURN = r"""
_value:
  description: >-
    One mapping per container: C(id), C(name) (its first name) and C(project) and C(service) (the compose labels,
    or null for a container that compose did not make).
  type: list
  elements: dict
"""

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


def _labels(field):
    """Docker joins labels as k=v,k=v; a value with a comma (depends_on) spills into items without '='."""
    if isinstance(field, dict):
        return field
    labels = {}
    for item in (field or "").split(","):
        key, sep, value = item.partition("=")
        if sep:
            labels[key] = value
    return labels


def compose_containers(lines):
    summary = []
    for line in lines or []:
        if isinstance(line, str):
            if not line.strip():
                continue
            line = json.loads(line)
        container = line or {}
        labels = _labels(container.get("Labels"))
        names = (container.get("Names") or "").split(",")
        summary.append({
            "id": container.get("ID"),
            "name": names[0] or None,
            "project": labels.get(PROJECT_LABEL),
            "service": labels.get(SERVICE_LABEL),
        })
    return summary


class FilterModule:
    def filters(self):
        return {"compose_containers": compose_containers}
