# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plan of the homelab.core.ollama role: the listed models, checked, and the installed ones to prune."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.module_utils._ollama import parse_name
from ansible_collections.homelab.core.plugins.module_utils._ollama_server import INSTANCE
from ansible_collections.homelab.core.plugins.module_utils._plain import plain

DOCUMENTATION = r"""
name: ollama_models_plan
short_description: Check and normalise ollama_models, and say which installed models it does not list
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - Each entry of the list is a model name (V(model), V(model:tag), V(namespace/model:tag) or
    V(host/namespace/model:tag)), or a dict with C(name) and optionally C(state) (V(present) or V(absent)),
    C(update) (a boolean) and C(instances) (the Ollamas that hold it, V(gpu0), V(gpu1), ..., with
    C(homelab_ollama_gpu_layout) per_gpu; default every one).
  - Names are parsed as Ollama parses them, so a name Ollama would refuse is refused here, before any model changes.
  - With O(probe_model), that model must be one of the present entries, on every Ollama (no C(instances)).
  - With O(instances), each entry is planned on each Ollama it names, and an entry naming one this host does not run
    is refused; where the host runs one Ollama (the shared layout), it holds every entry and RV(_value.notes) says so.
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
  probe_model:
    description: C(ollama_gpu_probe_model); empty for none.
    type: str
    default: ""
  instances:
    description:
      - The Ollamas of this host, as the C(instances) of M(homelab.core.ollama_layout) gives them (C(name), C(url),
        C(models_path)), to compute RV(_value.pulls).
    type: list
    elements: dict
  installed_on:
    description:
      - The results of a loop of C(ansible.builtin.uri) over O(instances) asking each C(GET /api/tags), to compute
        RV(_value.removals).
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
      description:
        - The entries as dicts with C(name) (as Ollama lists it), C(state), C(update), and C(instances) where the entry
          names them; empty on a problem.
      type: list
      elements: dict
    prune:
      description: Names of installed models that no entry lists (any state); empty without O(installed).
      type: list
      elements: str
    pulls:
      description:
        - With O(instances), one entry per model and Ollama that holds it, C(name), C(state), C(update), C(instance),
          C(url) and C(models_path), model by model.
      type: list
      elements: dict
    notes:
      description: With O(instances), what the run should warn about (instances named where one Ollama runs).
      type: list
      elements: str
    removals:
      description:
        - With O(installed_on), C(name), C(instance) and C(url) of each installed model that no entry lists for that
          Ollama.
      type: list
      elements: dict
"""

_FIX = "give 'name:tag' or {name: 'name:tag', state: present|absent, update: true|false, instances: [gpu0, ...]}"
_KEYS = ("name", "state", "update", "instances")


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
    planned = {"name": name.shortest, "state": state, "update": entry_update, "_key": name.key}
    if "instances" in entry:
        instances = entry["instances"]
        if (not isinstance(instances, list) or not instances
                or not all(isinstance(item, str) and INSTANCE.match(item) for item in instances)):
            return None, ("%s has instances %r; list the Ollamas that hold the model as gpu0, gpu1, ... (one per GPU index "
                          "with homelab_ollama_gpu_layout per_gpu), or leave instances out for every one." % (where, instances))
        if len(set(instances)) != len(instances):
            return None, "%s names an instance twice in %r; list each once." % (where, instances)
        planned["instances"] = list(instances)
    return planned, None


def _probe_problem(probe_model, planned):
    """The sentence when ollama_gpu_probe_model is not a present entry that every Ollama holds, else ''."""
    try:
        key = parse_name(probe_model).key
    except ValueError as error:
        return "ollama_gpu_probe_model (%r): %s; give a model name that ollama_models lists." % (probe_model, error)
    present = [entry for entry in planned if entry["state"] == "present"]
    found = [entry for entry in present if entry["_key"] == key]
    if not found:
        listed = ", ".join(entry["name"] for entry in present) or "none"
        return ("ollama_gpu_probe_model (%s) is not one of ollama_models' present entries (%s), and the inference gate "
                "loads it but never pulls it; add it to ollama_models, or set ollama_gpu_probe_model to one of those."
                % (probe_model, listed))
    if found[0].get("instances"):
        return ("ollama_gpu_probe_model (%s) is listed in ollama_models only for %s, but the inference gate loads it on "
                "every Ollama of the host; remove that entry's instances." % (probe_model, ", ".join(found[0]["instances"])))
    return ""


def _targets(planned, instances):
    """(pulls, problem, notes): each entry on each of this host's Ollamas that holds it."""
    instances = [item for item in instances or [] if isinstance(item, dict)]
    names = [str(item.get("name")) for item in instances]
    split = len(instances) > 1 or any(INSTANCE.match(name) for name in names)
    pulls, notes = [], []
    for index, entry in enumerate(planned):
        wanted = entry.get("instances")
        if wanted and split:
            unknown = [name for name in wanted if name not in names]
            if unknown:
                problem = ("ollama_models entry %d (%s) names %s, which this host does not run: its Ollamas are %s; "
                           "name only those, or leave instances out." % (index + 1, entry["name"], ", ".join(unknown),
                                                                         ", ".join(names)))
                return [], problem, []
        elif wanted:
            notes.append("ollama_models entry %d (%s) names instances %s, but this host runs one Ollama, which holds every "
                         "listed model." % (index + 1, entry["name"], ", ".join(wanted)))
        for instance in instances:
            if wanted and split and instance.get("name") not in wanted:
                continue
            pulls.append({"name": entry["name"], "state": entry["state"], "update": entry["update"],
                          "instance": instance.get("name"), "url": instance.get("url"),
                          "models_path": instance.get("models_path") or ""})
    return pulls, "", notes


def _removals(planned, answers):
    """Each model installed on one of this host's Ollamas that no entry lists for it (any state)."""
    answers = [answer for answer in answers or [] if isinstance(answer, dict) and not answer.get("skipped")]
    names = [str((answer.get("item") or {}).get("name")) for answer in answers]
    split = len(answers) > 1 or any(INSTANCE.match(name) for name in names)
    removals = []
    for answer in answers:
        instance = answer.get("item") or {}
        listed = set(entry["_key"] for entry in planned
                     if not split or not entry.get("instances") or instance.get("name") in entry["instances"])
        for model in (answer.get("json") or {}).get("models") or []:
            try:
                name = parse_name(model.get("name") or model.get("model"))
            except (AttributeError, ValueError):
                continue
            if name.key not in listed:
                removals.append({"name": name.shortest, "instance": instance.get("name"), "url": instance.get("url")})
    return removals


def ollama_models_plan(models, update=False, installed=None, probe_model="", instances=None, installed_on=None):
    models = plain(models)
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
    if probe_model:
        problem = _probe_problem(str(probe_model), planned)
        if problem:
            return {"problem": problem, "models": [], "prune": []}
    prune = []
    for listed in plain(installed) or []:
        try:
            name = parse_name(listed.get("name") or listed.get("model"))
        except (AttributeError, ValueError):
            continue
        if name.key not in seen:
            prune.append(name.shortest)
    plan = {
        "problem": "",
        "models": [dict((key, value) for key, value in entry.items() if key != "_key") for entry in planned],
        "prune": sorted(prune),
    }
    if instances is not None:
        pulls, problem, notes = _targets(planned, plain(instances))
        if problem:
            return {"problem": problem, "models": [], "prune": [], "pulls": [], "notes": []}
        plan.update(pulls=pulls, notes=notes)
    if installed_on is not None:
        plan["removals"] = _removals(planned, plain(installed_on))
    return plan


class FilterModule:
    def filters(self):
        return {"ollama_models_plan": ollama_models_plan}
