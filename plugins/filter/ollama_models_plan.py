# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plan of the homelab.core.ollama role: the listed models, checked, and the installed ones to prune."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.module_utils._ollama import parse_name

DOCUMENTATION = r"""
name: ollama_models_plan
short_description: Check and normalise ollama_models, and say which installed models it does not list
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - Each entry of the list is a model name (V(model), V(model:tag), V(namespace/model:tag) or
    V(host/namespace/model:tag)), or a dict with C(name) and optionally C(state) (V(present) or V(absent)) and
    C(update) (a boolean).
  - Names are parsed as Ollama parses them, so a name Ollama would refuse is refused here, before any model changes.
options:
  _input:
    description: The list (the C(ollama_models) variable).
    type: list
    elements: raw
    required: true
  update:
    description: The C(update) of entries that do not set their own.
    type: bool
    default: false
  installed:
    description: The C(models) of Ollama's C(GET /api/tags) answer, to compute RV(_value.prune).
    type: list
    elements: dict
"""

EXAMPLES = r"""
- name: Check the list of models
  ansible.builtin.assert:
    that: (ollama_models | homelab.core.ollama_models_plan).problem == ''
    fail_msg: "{{ (ollama_models | homelab.core.ollama_models_plan).problem }}"
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    problem:
      description: Empty when the list is valid, else one sentence naming the bad entry and the fix.
      type: str
    models:
      description: The entries as dicts with C(name) (as Ollama lists it), C(state) and C(update); empty on a problem.
      type: list
      elements: dict
    prune:
      description: Names of installed models that no entry lists (any state); empty without O(installed).
      type: list
      elements: str
"""

_FIX = "give 'name:tag' or {name: 'name:tag', state: present|absent, update: true|false}"
_KEYS = ("name", "state", "update")


def _entry(index, entry, update):
    """(normalised dict, None) or (None, problem sentence)."""
    where = "ollama_models entry %d (%r)" % (index + 1, entry)
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict):
        return None, "%s is neither a model name nor a dict; %s." % (where, _FIX)
    unknown = sorted(str(key) for key in entry if key not in _KEYS)
    if unknown:
        return None, "%s has unknown key(s) %s; %s." % (where, ", ".join(unknown), _FIX)
    if not isinstance(entry.get("name"), str):
        return None, "%s has no name; %s." % (where, _FIX)
    try:
        name = parse_name(entry["name"])
    except ValueError as error:
        return None, "%s: %s; %s." % (where, error, _FIX)
    state = entry.get("state", "present")
    if state not in ("present", "absent"):
        return None, "%s has state %r; use present or absent." % (where, state)
    entry_update = entry.get("update", update)
    if not isinstance(entry_update, bool):
        return None, "%s has update %r; use true or false." % (where, entry_update)
    return {"name": name.shortest, "state": state, "update": entry_update, "_key": name.key}, None


def ollama_models_plan(models, update=False, installed=None):
    if models is None:
        models = []
    if not isinstance(models, list):
        problem = "ollama_models must be a list of models; %s for each." % _FIX
        return {"problem": problem, "models": [], "prune": []}
    planned, seen = [], {}
    for index, entry in enumerate(models):
        normalised, problem = _entry(index, entry, bool(update))
        if problem:
            return {"problem": problem, "models": [], "prune": []}
        if normalised["_key"] in seen:
            return {"problem": "ollama_models lists %s twice (entries %d and %d); keep one entry per model."
                    % (normalised["name"], seen[normalised["_key"]] + 1, index + 1), "models": [], "prune": []}
        seen[normalised["_key"]] = index
        planned.append(normalised)
    prune = []
    for listed in installed or []:
        try:
            name = parse_name(listed.get("name") or listed.get("model"))
        except (AttributeError, ValueError):
            continue
        if name.key not in seen:
            prune.append(name.shortest)
    return {
        "problem": "",
        "models": [dict((key, value) for key, value in entry.items() if key != "_key") for entry in planned],
        "prune": sorted(prune),
    }


class FilterModule:
    def filters(self):
        return {"ollama_models_plan": ollama_models_plan}
