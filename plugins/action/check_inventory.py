# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin for homelab.core.check_inventory: the one check of the inventory, first in every playbook."""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.homelab.core.plugins.module_utils._catalogue import validation_reads
from ansible_collections.homelab.core.plugins.module_utils._inventory_check import check
from ansible_collections.homelab.core.plugins.module_utils._plain import plain
from ansible_collections.homelab.core.plugins.plugin_utils._collection_data import role_defaults, role_specs


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("stacks", "fleet_problems", "ollama_problem", "backup", "restore"))

    @staticmethod
    def _with_backup_defaults(settings):
        """The backup settings, each one the play has not set taken from the backup role's defaults."""
        if settings is None:
            return None
        given = dict((name, value) for name, value in plain(settings).items() if value is not None)
        return dict(role_defaults("backup"), **given)

    def _inventory_values(self, specs, task_vars):
        """The value of each variable of the role specs that the inventory (or -e) sets for this host.

        Which ones it sets comes from hostvars (no role default is there); each value is templated
        here, in the task's context, since an inventory value may name a role default (a catalogue
        copied from the role's defaults names main_stack_ollama_urls), which hostvars cannot resolve.
        """
        host_vars = task_vars["hostvars"][task_vars["inventory_hostname"]]
        names = set(name for spec in specs.values() for entry in ((spec or {}).get("argument_specs") or {}).values()
                    for name in ((entry or {}).get("options") or {}))
        return dict((name, self._templar.template(task_vars[name])) for name in sorted(names)
                    if name in host_vars and name in task_vars)

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validated, args = self.validate_argument_spec(argument_spec={
            "stacks": {"type": "list", "elements": "dict", "default": []},
            "fleet_problems": {"type": "list", "elements": "str", "default": []},
            "ollama_problem": {"type": "str", "default": ""},
            "backup": {"type": "dict"},
            "restore": {"type": "dict"},
        })
        stacks = plain(args["stacks"])
        reads = None
        wanted = validation_reads(stacks)
        if wanted["files"] or wanted["dirs"]:
            # Read-only, so it runs in check mode too; its result (secrets) never leaves this plugin.
            reads = self._execute_module(
                module_name="homelab.core.read_files", module_args={"paths": wanted["files"], "dirs": wanted["dirs"]},
                task_vars=task_vars,
            )
            if reads.get("failed"):
                raise AnsibleActionFail("Reading the stacks' secrets files failed: %s" % reads.get("msg", ""))
        specs = role_specs()
        found = check(
            stacks, reads=reads, fleet_problems=args["fleet_problems"], role_specs=specs,
            host_vars=self._inventory_values(specs, task_vars),
            ollama_problem=args["ollama_problem"], backup=self._with_backup_defaults(args["backup"]),
            restore=self._with_backup_defaults(args["restore"]),
        )
        result.update(changed=False, warnings=found["warnings"], problems=found["problems"])
        if found["problems"]:
            result.update(failed=True, msg=" ".join(found["problems"]))
        else:
            result["msg"] = "The inventory is fine."
        return result
