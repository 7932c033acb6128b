# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The inventory's values against every role's argument spec, before any role runs."""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping

import yaml

DOCUMENTATION = r"""
name: inventory_problems
short_description: Check the inventory's values against the collection's role argument specs
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - Each role checks its own arguments when it starts, after earlier plays may already have changed the host. This
    filter applies the same C(choices) and basic types (C(bool), C(int), C(list), C(dict), C(str)) to every variable
    the inventory sets, so a bad value fails in the first play, with nothing gathered or changed.
  - Only variables the host has (inventory, extra vars) are checked; role defaults are the roles' own business.
  - Returns one sentence per problem, naming the variable, the role and what to give instead.
options:
  _input:
    description:
      - The collection's C(roles) directory, whose C(*/meta/argument_specs.yml) are read (on the controller), or a
        mapping of role name to the parsed content of its C(meta/argument_specs.yml).
    type: raw
    required: true
  host_vars:
    description: The host's variables, usually C(hostvars[inventory_hostname]); only the names the specs know are read.
    type: raw
    required: true
"""

EXAMPLES = r"""
- name: Check the inventory against every role's argument spec
  ansible.builtin.set_fact:
    problems: "{{ role_path | dirname | homelab.core.inventory_problems(hostvars[inventory_hostname]) }}"
"""

RETURN = r"""
_value:
  description: One sentence per problem; empty when every value fits.
  type: list
  elements: str
"""

_BOOLEANS = ("true", "false", "yes", "no", "on", "off", "1", "0")


def _type_problem(kind, value):
    """What the value should be instead, or None when it fits the spec's type."""
    if kind == "bool" and not (isinstance(value, bool) or str(value).strip().lower() in _BOOLEANS):
        return "true or false"
    if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
        if not (isinstance(value, str) and value.strip().isdigit()):
            return "a whole number"
    if kind == "list" and (isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__")):
        return "a list"
    if kind == "dict" and not isinstance(value, Mapping):
        return "a mapping"
    if kind == "str" and (isinstance(value, (Mapping, list, tuple)) or value is None):
        return "a string"
    return None


def role_specs(roles_dir):
    """Role name -> the parsed meta/argument_specs.yml of each role under ``roles_dir``."""
    specs = {}
    for path in sorted(glob.glob(os.path.join(str(roles_dir), "*", "meta", "argument_specs.yml"))):
        with open(path, encoding="utf-8") as stream:
            specs[os.path.basename(os.path.dirname(os.path.dirname(path)))] = yaml.safe_load(stream)
    return specs


def inventory_problems(roles, host_vars):
    problems, seen = [], set()
    if not isinstance(roles, Mapping):
        roles = role_specs(roles)
    for role, specs in sorted((roles or {}).items()):
        for entry in ((specs or {}).get("argument_specs") or {}).values():
            for name, option in sorted(((entry or {}).get("options") or {}).items()):
                if name in seen or name not in host_vars:
                    continue
                seen.add(name)
                value = host_vars[name]
                wanted = _type_problem(option.get("type", "str"), value)
                if wanted:
                    problems.append("%s must be %s (role %s); see roles/%s/README.md." % (name, wanted, role, role))
                elif option.get("choices") and value not in option["choices"]:
                    problems.append(
                        "%s is %r, which role %s does not know; choose one of %s."
                        % (name, value, role, ", ".join(str(choice) for choice in option["choices"]))
                    )
    return problems


class FilterModule:
    def filters(self):
        return {"inventory_problems": inventory_problems}
