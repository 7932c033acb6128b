# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The services whose data directory was recreated: their containers still mount the deleted one."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.module_utils._plain import plain
from ansible_collections.homelab.core.plugins.module_utils._stack_files import services_to_restart

# Documented in stack_restarts.yml.


def stack_restarts(plan, created_paths):
    return services_to_restart(plain(plan["data_dirs"]), plain(list(created_paths or [])))


class FilterModule:
    def filters(self):
        return {"stack_restarts": stack_restarts}
