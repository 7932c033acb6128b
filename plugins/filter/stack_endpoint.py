# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a client on the host reaches one service of a stack (the one port rule, _endpoints)."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.module_utils._endpoints import service_endpoint
from ansible_collections.homelab.core.plugins.module_utils._plain import plain

# Documented in stack_endpoint.yml.


def stack_endpoint(stack, service):
    stack = plain(stack)
    return service_endpoint(service, stack.get("services") or {}, stack.get("bind_address") or "127.0.0.1",
                            (stack.get("overrides") or {}).get("ports"))


class FilterModule:
    def filters(self):
        return {"stack_endpoint": stack_endpoint}
