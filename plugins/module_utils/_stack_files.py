# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The files of a compose stack, as homelab.core.file_tree entries: pure functions, no I/O.

Takes a stack definition (see ``_catalogue``), its services as ``_catalogue.resolve_services``
gives them and its secrets as ``_catalogue.resolve_secrets`` gives them. Every entry carries
``owner_service``: the service the path belongs to ('' for the stack's own paths).
"""

from __future__ import annotations

import hashlib
import hmac
import json

from ansible_collections.homelab.core.plugins.module_utils._catalogue import (
    HASH_KEY_SECRET,
    PLACEHOLDER,
    build_context,
    enabled_services,
    file_mode,
)

ENV_HEADER = "# Managed by homelab.core (stack %s). Edits are overwritten.\n"


def persisted_secrets(stack, values):
    """What the host keeps in the secrets file: the generated or inventory-given ones, not explicit values,
    credentials or derived hashes."""
    specs = dict(stack.get("secrets") or {})
    specs.setdefault(HASH_KEY_SECRET, {})
    derived = ("value", "bcrypt_of")
    return {
        name: values[name]
        for name in sorted(specs)
        if not any(key in specs[name] for key in derived) and specs[name].get("persist", True) and not specs[name].get("credential")
    }


def expand(text, values, services):
    """Fill in <<secret:NAME>> and <<port:SERVICE>> placeholders."""

    def _fill(match):
        kind, name = match.groups()
        if kind == "secret":
            return str(values[name])
        return str(services[name]["port"])

    return PLACEHOLDER.sub(_fill, str(text))


def references_secret(text):
    return any(kind == "secret" for kind, _name in PLACEHOLDER.findall(str(text)))


def _env_text(stack, name, entry, values, services):
    lines = [ENV_HEADER % stack["name"]]
    for key, value in (entry.get("env") or {}).items():
        if value is None:
            # A null value leaves the variable out (OLLAMA_BASE_URLS on a single box).
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        lines.append("%s=%s\n" % (key, expand(value, values, services)))
    return "".join(lines)


def secret_file_path(name, secret_file):
    return secret_file.get("path") or "secrets/%s/%s" % (name, secret_file["secret"])


def config_hash(stack, name, entry, values, services):
    """HMAC-SHA256 (per-host key) over everything a service reads besides its image.

    Keyed, so the label in `docker inspect` reveals nothing about secret values.
    """
    material = {
        "env": _env_text(stack, name, entry, values, services) if entry.get("env") else "",
        "secret_files": [values[item["secret"]] for item in entry.get("secret_files") or []],
        "config_files": [
            expand(item["content"], values, services) for item in entry.get("config_files") or [] if config_file_wanted(item, services)
        ],
    }
    digest = hmac.new(values[HASH_KEY_SECRET].encode(), json.dumps(material, sort_keys=True).encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def config_file_wanted(item, services):
    """A config file with `with_service` exists only while that service is deployed (a gateway's route to it)."""
    other = item.get("with_service")
    return not other or bool((services.get(other) or {}).get("enabled"))


def config_file_path(stack, item):
    """Config files live under the stack root, or under the data root with `base: data`."""
    base = stack["data_root"] if item.get("base") == "data" else stack["root"]
    return "%s/%s" % (base, item["path"])


# --- The entries, one builder a kind ----------------------------------------------------


def _directory(path, mode, owner_service, owner="0", group="0"):
    return {"path": path, "state": "directory", "owner": owner, "group": group, "mode": mode, "owner_service": owner_service}


def _file(path, mode, key, text, owner_service, owner="0", group="0", **more):
    """A file entry; ``key`` is ``secret_content`` for text that no output may show, else ``content``."""
    entry = {"path": path, "state": "file", "owner": owner, "group": group, "mode": mode, key: text}
    entry.update(more)
    entry["owner_service"] = owner_service
    return entry


def _absent(path, owner_service):
    return {"path": path, "state": "absent", "owner_service": owner_service}


def _parent(path):
    return path.rsplit("/", 1)[0]


def _parent_once(entries, made, directory):
    """Append ``directory``, the parent of a file, unless an earlier entry of the tree made that path."""
    if directory["path"] not in made:
        made.add(directory["path"])
        entries.append(directory)


def _stack_entries(stack, values):
    """The stack's own directories and its persisted secrets file."""
    root = stack["root"]
    return [
        _directory(root, "0755", ""),
        _directory(root + "/env", "0700", ""),
        _directory(root + "/config", "0755", ""),
        _directory(root + "/secrets", "0700", ""),
        _file("%s/%s" % (root, stack["secrets_file"]), "0600", "secret_content",
              json.dumps(persisted_secrets(stack, values), indent=2, sort_keys=True) + "\n", ""),
        _directory(stack["data_root"], "0755", ""),
    ]


def _data_tree(stack, services):
    """Every enabled service's data directories, once each (two services may mount one), parents before children."""
    data = {}
    for name in enabled_services(services):
        for item in services[name].get("data") or []:
            data.setdefault(item["path"], (name, item))
    return [
        _directory("%s/%s" % (stack["data_root"], path), file_mode(item.get("mode"), "0755"), name,
                   owner=str(item.get("owner", 0)), group=str(item.get("group", 0)))
        for path, (name, item) in sorted(data.items(), key=lambda pair: pair[0].split("/"))
    ]


def _env_file(stack, name, entry, values, services):
    path = "%s/env/%s.env" % (stack["root"], name)
    if not (entry.get("enabled") and entry.get("env")):
        return _absent(path, name)
    key = "secret_content" if any(references_secret(value) for value in entry["env"].values()) else "content"
    return _file(path, "0600", key, _env_text(stack, name, entry, values, services), name)


def _secret_files(stack, name, entry, values, made):
    entries = []
    for item in entry.get("secret_files") or []:
        path = "%s/%s" % (stack["root"], secret_file_path(name, item))
        if not entry.get("enabled") or not values.get(item["secret"]):
            entries.append(_absent(path, name))
            continue
        _parent_once(entries, made, _directory(_parent(path), "0700", name))
        # No trailing newline: not every image strips one.
        entries.append(_file(path, "0400", "secret_content", str(values[item["secret"]]), name, owner=str(item.get("owner", 0))))
    return entries


def _build_files(stack, name, entry, made):
    """The build context of a service built on the host: its Dockerfile and the files it copies."""
    if not entry.get("build"):
        return []
    enabled = entry.get("enabled")
    context = build_context(stack, name)
    files = [{"path": "Dockerfile", "content": entry["build"]["dockerfile"], "mode": "0644"}]
    files += list(entry["build"].get("files") or [])
    entries = []
    if enabled:
        _parent_once(entries, made, _directory(stack["root"] + "/build", "0755", ""))
        entries.append(_directory(context, "0755", name))
    for item in files:
        path = "%s/%s" % (context, item["path"])
        entries.append(_file(path, file_mode(item.get("mode"), "0644"), "content", item["content"], name) if enabled else _absent(path, name))
    return entries


def _config_files(stack, name, entry, values, services, made, data_paths):
    entries = []
    for item in entry.get("config_files") or []:
        path = config_file_path(stack, item)
        if not entry.get("enabled") or not config_file_wanted(item, services):
            entries.append(_absent(path, name))
            continue
        # Config files inside a data directory (Coolify's source/.env) need no directory of their own.
        if _parent(path) not in data_paths:
            _parent_once(entries, made, _directory(_parent(path), "0750", name, group=str(item.get("dir_group", 0))))
        key = "secret_content" if references_secret(item["content"]) else "content"
        entries.append(_file(path, file_mode(item.get("mode"), "0444"), key, expand(item["content"], values, services), name,
                             owner=str(item.get("owner", 0)), group=str(item.get("group", 0))))
    return entries


def stack_files(stack, services, values):
    """The file_tree entries of a stack: directories, data tree, env, secret, build and config files.

    Paths of services that are switched off are removed (files only: data directories stay).
    """
    entries = _stack_entries(stack, values)
    made = set(entry["path"] for entry in entries)
    data = _data_tree(stack, services)
    entries += data
    data_paths = set(entry["path"] for entry in data)
    for name, entry in services.items():
        entries.append(_env_file(stack, name, entry, values, services))
        entries += _secret_files(stack, name, entry, values, made)
        entries += _build_files(stack, name, entry, made)
        entries += _config_files(stack, name, entry, values, services, made, data_paths)
    return entries


def compose_file(stack, text):
    """The compose file's entry, validated by compose before it replaces the old one."""
    root = stack["root"]
    return _file("%s/%s" % (root, stack["compose_file"]), "0644", "content", text, "",
                 validate="docker compose --project-directory %s --file %%s config --quiet" % root)


def data_dirs(stack, services):
    """Absolute data directory -> the enabled services that declare it."""
    found = {}
    for name in enabled_services(services):
        for item in services[name].get("data") or []:
            users = found.setdefault("%s/%s" % (stack["data_root"], item["path"]), [])
            if name not in users:
                users.append(name)
    return found


def services_to_restart(data_dir_owners, created_paths):
    """Services whose data directory was (re)created: their containers still mount the deleted one.

    ``data_dir_owners`` is ``data_dirs``' mapping (the plan's ``data_dirs``), ``created_paths`` what
    file_tree created.
    """
    found = []
    for path in created_paths or []:
        for name in data_dir_owners.get(path, []):
            if name not in found:
                found.append(name)
    return found
