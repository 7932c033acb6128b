# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one check of the inventory, run first by every playbook, before anything on a host changes.

``check`` gathers every refusal in one list, each a sentence that names the variable and the fix:

- the fleet's groups and addresses (``_fleet.problems``, computed by the ``fleet`` filter);
- each variable the inventory sets against the choices and types of the role argument specs;
- ``ollama_models`` (the ``ollama_models_plan`` filter's problem);
- every stack definition: its catalogue, overrides, accounts, secrets, and the secrets already
  persisted on the host or kept by the services (``_catalogue.stack_problems``), plus the secret
  rules a definition declares as data (``format``, ``pattern``, ``secret_groups``, below);
- the backup and restore settings, when the playbook backs up or restores.

Pure functions, no I/O: the action plugin ``homelab.core.check_inventory`` reads the host and
the argument specs, then calls ``check``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ansible_collections.homelab.core.plugins.module_utils._catalogue import persisted_values, stack_problems, stack_warnings
from ansible_collections.homelab.core.plugins.module_utils._cloudflared import token_problem

# Secret formats a secret catalogue entry may name (``format: cloudflared_tunnel_token``): the
# function returns '' or a phrase that follows the variable's name.
SECRET_FORMATS = {"cloudflared_tunnel_token": token_problem}
AGE_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")
RESTORE_NAME = re.compile(r"^(latest|[0-9]{8}T[0-9]{6}Z)$")
_BOOLEANS = ("true", "false", "yes", "no", "on", "off", "1", "0")


# --- The inventory against the role argument specs ----------------------------------------------


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


def argument_spec_problems(role_specs, host_vars):
    """Each variable the host has (inventory, extra vars) against the choices and type of the first role spec naming it.

    ``role_specs`` maps a role name to its parsed ``meta/argument_specs.yml``; role defaults are not
    in ``host_vars``, so only what the user set is checked.
    """
    problems, seen = [], set()
    for role, specs in sorted((role_specs or {}).items()):
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


# --- Secret rules a stack definition declares as data -------------------------------------------


def _given(stack):
    inventory = stack.get("inventory_secrets")
    return inventory if isinstance(inventory, Mapping) else {}


def secret_rule_problems(stack):
    """The rules of the stack's secret catalogue and ``secret_groups``.

    - ``format: NAME`` on a secret with a value from the inventory (``variable`` names it): the
      value, when given, must have that format (``SECRET_FORMATS``).
    - ``pattern`` and ``pattern_rule`` on a secret the inventory may give: a given value must match.
    - ``secret_groups: [{secrets: [...], reason: ...}]``: the inventory gives all of a group or none.
    """
    problems = []
    secrets_variable = (stack.get("variables") or {}).get("secrets", "secrets")
    given = _given(stack)
    for name, spec in sorted((stack.get("secrets") or {}).items()):
        variable = spec.get("variable") or "%s.%s" % (secrets_variable, name)
        value = spec["value"] if "value" in spec else given.get(name)
        if not isinstance(value, str) or not value:
            continue
        if spec.get("format"):
            problem = SECRET_FORMATS[spec["format"]](value)
            if problem:
                problems.append("%s %s." % (variable, problem))
        if spec.get("pattern") and not re.match(spec["pattern"], value):
            problems.append("%s must be %s; leave it out to have one generated." % (variable, spec["pattern_rule"]))
    for group in stack.get("secret_groups") or []:
        present = [name for name in group["secrets"] if given.get(name)]
        if 0 < len(present) < len(group["secrets"]):
            missing = [name for name in group["secrets"] if name not in present]
            problems.append(
                "%s gives %s but not %s; %s: add the missing ones, or remove these."
                % (secrets_variable, ", ".join(present), ", ".join(missing), group["reason"])
            )
    return problems


# --- Backups and restores -------------------------------------------------------------------------


def _stripped(path):
    return str(path).rstrip("/")


def backup_problems(settings):
    """The backup settings (``backup_*`` and the two roots the backup must stay out of)."""
    problems = []
    recipients = settings.get("backup_age_recipients") or []
    root = _stripped(settings.get("homelab_root", ""))
    destination = str(settings.get("backup_destination", ""))
    if not recipients:
        problems.append(
            "backup_age_recipients is empty: secrets go into a backup only encrypted, so give at least one age public "
            "key (age1..., from age-keygen) and keep its identity off this host."
        )
    not_keys = [str(recipient) for recipient in recipients if not AGE_RECIPIENT.match(str(recipient))]
    if not_keys:
        problems.append(
            "backup_age_recipients has %s, which is not an age public key; give keys as age-keygen prints them "
            "(age1 and 58 more characters)." % ", ".join(not_keys)
        )
    if int(settings.get("backup_keep", 1)) < 1:
        problems.append("backup_keep must be 1 or more, not %s." % settings.get("backup_keep"))
    if int(settings.get("backup_lock_timeout", 0)) < 0:
        problems.append("backup_lock_timeout must be 0 or more seconds, not %s." % settings.get("backup_lock_timeout"))
    inside = (_stripped(destination) + "/").startswith(root + "/")
    if (not destination.startswith("/") or _stripped(destination) in ("", root, _stripped(settings.get("homelab_data_root", "")))
            or inside):
        problems.append(
            "backup_destination must be an absolute path outside homelab_root (%s), not %s: a backup inside the tree it "
            "backs up would hold itself, and a container could reach it." % (settings.get("homelab_root"), destination)
        )
    return problems


def restore_problems(settings):
    """The restore settings: which backup, from where."""
    name, destination = str(settings.get("backup_restore_name", "")), str(settings.get("backup_destination", ""))
    if RESTORE_NAME.match(name) and destination.startswith("/"):
        return []
    return [
        "backup_restore_name must be latest or a backup's directory name such as 20261203T051500Z, and backup_destination "
        "an absolute path; got %s and %s." % (name, destination)
    ]


# --- The one check ------------------------------------------------------------------------------


def persisted_secrets(stacks, reads):
    """Stack name -> the secrets persisted on the host, from ``reads`` (read_files' result); {} where none yet."""
    contents = (reads or {}).get("contents") or {}
    return {stack["name"]: persisted_values(stack, contents) for stack in stacks}


def check(stacks, reads=None, fleet_problems=(), role_specs=None, host_vars=None, ollama_problem="", backup=None,
          restore=None):
    """Every problem with the inventory ({problems, warnings}), one sentence each, in the order a user fixes them.

    ``reads`` is what read_files returned for ``_catalogue.validation_reads(stacks)`` (None: nothing read, as in a
    unit test of the inventory alone). ``backup`` and ``restore`` are the settings of a playbook that
    backs up or restores (None: not checked).
    """
    problems = list(fleet_problems or [])
    problems += argument_spec_problems(role_specs, host_vars or {})
    if ollama_problem:
        problems.append(ollama_problem)
    for stack in stacks:
        problems += secret_rule_problems(stack)
    reads = reads or {}
    persisted = persisted_secrets(stacks, reads)
    problems += stack_problems(stacks, persisted=persisted, adopted=reads.get("contents") or {},
                               nonempty_dirs=reads.get("nonempty_dirs") if reads else None)
    if backup is not None:
        problems += backup_problems(backup)
    if restore is not None:
        problems += restore_problems(restore)
    return {"problems": list(dict.fromkeys(problems)),
            "warnings": stack_warnings(stacks, persisted=persisted, contents=reads.get("contents"))}
