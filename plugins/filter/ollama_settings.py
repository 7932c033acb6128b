# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The Ollama service's memory settings, checked, as its environment."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.module_utils._ollama_server import settings
from ansible_collections.homelab.core.plugins.module_utils._plain import plain

# Documented in ollama_settings.yml.


def ollama_settings(values, layout="shared", fleet=False):
    return settings(plain(values) if isinstance(values, dict) else {}, layout=plain(layout), fleet=plain(fleet))


class FilterModule:
    def filters(self):
        return {"ollama_settings": ollama_settings}
