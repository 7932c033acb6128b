# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The services a stack deploys on this host, without planning the whole stack."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.module_utils._catalogue import enabled_services, resolve_services
from ansible_collections.homelab.core.plugins.module_utils._plain import plain

# Documented in stack_services.yml.


def stack_services(stack):
    return enabled_services(resolve_services(plain(stack)))


class FilterModule:
    def filters(self):
        return {"stack_services": stack_services}
