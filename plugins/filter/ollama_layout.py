# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How many Ollamas this host runs (one per GPU, or one for all of them), and where each answers."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.module_utils._ollama_server import layout_view
from ansible_collections.homelab.core.plugins.module_utils._plain import plain

# Documented in ollama_layout.yml.


def ollama_layout(decision, layout="shared", gpu_off=False, fleet=None, url="", models_path="", ports=None,
                  data_root=""):
    return layout_view(plain(decision) if isinstance(decision, dict) else {}, layout=str(layout), gpu_off=plain(gpu_off),
                       fleet=plain(fleet) if fleet else {}, url=str(url or ""), models_path=str(models_path or ""),
                       ports=plain(ports) if ports else {}, data_root=str(data_root or ""))


class FilterModule:
    def filters(self):
        return {"ollama_layout": ollama_layout}
