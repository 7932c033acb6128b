# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible's templated values as plain Python data, for the pure code that reads them many times."""

from __future__ import annotations

from collections.abc import Mapping


def plain(value):
    """``value`` as plain dicts, lists, str, int, float, bool and None, each lazy container read once.

    Ansible (2.19) hands plugins lazy containers that template an item again on each access, and
    tagged subclasses of str and int that the YAML dumper cannot represent. The checks and the plan
    read a definition many times over (through the lazy containers that took 3 to 4 s of a no-op
    run), and the plan dumps it as YAML.
    """
    if isinstance(value, Mapping):
        return {plain(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value
