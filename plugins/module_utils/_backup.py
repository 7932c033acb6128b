# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a backup of the stacks holds, read from their catalogues: pure functions, no I/O.

A catalogue entry may carry ``backup``:

``{postgres: {user, password_secret}}``   dump every database with pg_dump through the running
                                          container; its data directories are live and left out
``{redis: {config}}``                     BGSAVE, then copy the RDB (and the AOF directory);
                                          its data directories are left out of the file archive
``{models: [path, ...]}``                 data paths (under the data root) that are re-pulled,
                                          so left out unless models are asked for
``{sqlite: [path, ...]}``                 SQLite databases (files under the data root) that the
                                          service writes while it runs: the backup holds an
                                          online-backup-API snapshot of each, not the live files

Files under the data root that the role writes from secrets (config files with ``base: data``)
are left out of the file archive: the converge writes them again. Files where a service keeps a
secret of its own (``adopt_secrets``) go, with ``secrets/``, only into the encrypted archive.
"""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.module_utils import _catalogue
from ansible_collections.homelab.core.plugins.module_utils._stack_files import secret_file_path


def _relative(path, base):
    prefix = base.rstrip("/") + "/"
    return path[len(prefix):] if path.startswith(prefix) else None


def _secret_file(name, entry, secret):
    for item in entry.get("secret_files") or []:
        if item.get("secret") == secret:
            return secret_file_path(name, item)
    return None


def backup_plan(stacks, include_models=False):
    """The backup tool's plan for the given stack definitions (no secret values in it).

    Every path in ``exclude`` is relative to the data root, every path in ``secret_paths``
    relative to the project root (the stacks share both roots).
    """
    if not stacks:
        raise ValueError("backup_plan needs at least one stack definition")
    root = stacks[0]["root"]
    data_root = stacks[0]["data_root"]
    plan = {
        "root": root,
        "data_root": data_root,
        "postgres": [],
        "redis": [],
        "exclude": [],
        "secret_paths": ["secrets"],
        "sqlite": [],
        "stacks": [],
    }

    def add(key, value):
        if value is not None and value not in plan[key]:
            plan[key].append(value)

    for stack in stacks:
        if stack["root"] != root or stack["data_root"] != data_root:
            raise ValueError("stack %s lives outside %s; one backup covers one project root" % (stack["name"], root))
        services = _catalogue.resolve_services(stack)
        with_data = []
        for name in sorted(services):
            entry = services[name]
            backup = entry.get("backup") or {}
            live = "postgres" in backup or "redis" in backup
            for item in entry.get("data") or []:
                if live:
                    add("exclude", item["path"])
            for path in backup.get("models") or []:
                if not include_models:
                    add("exclude", path)
            for item in entry.get("config_files") or []:
                if item.get("base") == "data":
                    add("exclude", item["path"])
            if not entry.get("enabled"):
                continue
            for path in backup.get("sqlite") or []:
                add("sqlite", path)
            if "postgres" in backup:
                spec = backup["postgres"]
                password_file = _secret_file(name, entry, spec.get("password_secret"))
                plan["postgres"].append({
                    "project": stack["project"],
                    "service": name,
                    "user": spec["user"],
                    "password_file": password_file,
                })
            if "redis" in backup:
                data = (entry.get("data") or [{}])[0]
                plan["redis"].append({
                    "project": stack["project"],
                    "service": name,
                    "data_path": data.get("path"),
                    "config": backup["redis"].get("config", ""),
                })
            if entry.get("data") and "postgres" not in backup:
                with_data.append(name)
        for spec in (stack.get("adopt_secrets") or {}).values():
            relative = _relative(spec["path"], data_root)
            if relative is not None:
                add("exclude", relative)
            add("secret_paths", _relative(spec["path"], root))
        plan["stacks"].append({
            "project": stack["project"],
            "compose_file": stack["compose_file"],
            "services_with_data": with_data,
        })
    return plan
