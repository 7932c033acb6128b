# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure helpers for the open_webui_tool_servers module: the plan that turns Open-WebUI's list of
tool-server connections into the wanted one.

Private to homelab.core. Written from Open-WebUI 0.12.4 (the PyPI wheel is the source):
- open_webui/routers/configs.py: ``ToolServerConnection`` (url, path, type, auth_type, headers, key, config,
  info; extra keys allowed), ``GET /api/v1/configs/tool_servers`` and ``POST /api/v1/configs/tool_servers``,
  which replaces the whole list (``Config.upsert({'tool_server.connections': ...})``).
- open_webui/routers/tools.py and utils/tools.py: an MCP connection is used when ``type == 'mcp'`` and
  ``config.enable`` is true, and is found by ``info.id``; utils/access_control: an empty
  ``config.access_grants`` means admin-only, ``{'principal_type': 'user', 'principal_id': '*'}`` public.
- the admin UI (AddToolServerModal) refuses ids with ``:`` or ``|`` and sends
  ``{type, url, spec_type, spec, path, auth_type, headers, key, config: {enable, function_name_filter_list,
  access_grants}, info: {id, name, description}}``.
"""

from __future__ import annotations

import copy
import re

FORBIDDEN_ID_CHARACTERS = (":", "|")


def connection_id(connection):
    """info.id of a stored connection ('' when it has none)."""
    info = connection.get("info") if isinstance(connection, dict) else None
    value = info.get("id") if isinstance(info, dict) else None
    return value if isinstance(value, str) else ""


def is_managed(connection, prefix):
    """A connection this collection manages: an MCP connection whose info.id starts with the prefix."""
    return (isinstance(connection, dict) and connection.get("type") == "mcp"
            and connection_id(connection).startswith(prefix))


def check_wanted(wanted, prefix):
    """Error sentences for the wanted connections (empty when they are fine)."""
    errors = []
    if not prefix:
        errors.append("id_prefix must not be empty: it tells this module's connections from the ones users add.")
    for character in FORBIDDEN_ID_CHARACTERS:
        if character in prefix:
            errors.append("id_prefix %r must not contain %r (Open-WebUI refuses it in a connection id)."
                          % (prefix, character))
    seen = set()
    for entry in wanted:
        full = prefix + entry["id"]
        if not entry["id"]:
            errors.append("A connection has an empty id.")
        for character in FORBIDDEN_ID_CHARACTERS:
            if character in entry["id"]:
                errors.append("Connection id %r must not contain %r (Open-WebUI refuses it)." % (entry["id"], character))
        if full in seen:
            errors.append("Connection id %r is given twice." % entry["id"])
        seen.add(full)
        if not entry.get("url", "").startswith(("http://", "https://")):
            errors.append("Connection %r: url must start with http:// or https://." % entry["id"])
        if not entry.get("key"):
            errors.append("Connection %r has no key: give its key or the module's key option." % entry["id"])
    return errors


def build(entry, prefix, access_grants, existing=None):
    """The stored form of one wanted connection, keeping what the admin set on an existing one
    (headers, function_name_filter_list, access_grants unless given, any other key)."""
    result = copy.deepcopy(existing) if existing else {
        "type": "mcp",
        "url": "",
        "spec_type": "url",
        "spec": "",
        "path": "",
        "auth_type": "bearer",
        "headers": None,
        "key": "",
        "config": {"enable": True, "function_name_filter_list": "", "access_grants": []},
        "info": {},
    }
    result["type"] = "mcp"
    result["url"] = entry["url"]
    result["auth_type"] = "bearer"
    result["key"] = entry["key"]
    config = result.get("config") if isinstance(result.get("config"), dict) else {}
    config["enable"] = True
    if access_grants is not None:
        config["access_grants"] = copy.deepcopy(access_grants)
    config.setdefault("access_grants", [])
    result["config"] = config
    info = result.get("info") if isinstance(result.get("info"), dict) else {}
    info["id"] = prefix + entry["id"]
    info["name"] = entry.get("name") or entry["id"]
    info["description"] = entry.get("description") or ""
    result["info"] = info
    return result


def _owned_fields(connection):
    """What this module sets on a connection, for the comparison (the key included, never shown)."""
    config = connection.get("config") if isinstance(connection.get("config"), dict) else {}
    info = connection.get("info") if isinstance(connection.get("info"), dict) else {}
    return (connection.get("type"), connection.get("url"), connection.get("auth_type"), connection.get("key"),
            bool(config.get("enable")), config.get("access_grants") or [],
            info.get("id"), info.get("name"), info.get("description") or "")


def changed_fields(before, after):
    """Names of the owned fields that differ (the key only as the word 'key')."""
    names = ("type", "url", "auth_type", "key", "enable", "access_grants", "id", "name", "description")
    return [name for name, old, new in zip(names, _owned_fields(before), _owned_fields(after)) if old != new]


def plan(existing, wanted, prefix, access_grants=None):
    """(new list, added ids, updated {id: [fields]}, removed ids).

    Connections that are not managed stay as they are and where they are; a managed one is updated in
    place; duplicates of a managed id and managed ids no longer wanted are removed; new ones are
    appended in the order given.
    """
    wanted_by_id = dict((prefix + entry["id"], entry) for entry in wanted)
    result, added, updated, removed = [], [], {}, []
    placed = set()
    for connection in existing:
        if not is_managed(connection, prefix):
            result.append(connection)
            continue
        cid = connection_id(connection)
        if cid not in wanted_by_id or cid in placed:
            removed.append(cid)
            continue
        new = build(wanted_by_id[cid], prefix, access_grants, connection)
        fields = changed_fields(connection, new)
        if fields:
            updated[cid] = fields
        result.append(new)
        placed.add(cid)
    for cid, entry in wanted_by_id.items():
        if cid not in placed:
            result.append(build(entry, prefix, access_grants))
            added.append(cid)
    return result, added, updated, removed


def public_view(connection, prefix):
    """A connection without its secrets: what results and diffs show."""
    config = connection.get("config") if isinstance(connection.get("config"), dict) else {}
    info = connection.get("info") if isinstance(connection.get("info"), dict) else {}
    return {
        "id": connection_id(connection),
        "name": info.get("name") if isinstance(info.get("name"), str) else "",
        "type": connection.get("type") or "openapi",
        "url": connection.get("url") or "",
        "auth_type": connection.get("auth_type"),
        "enabled": bool(config.get("enable")),
        "managed": is_managed(connection, prefix),
    }


# --- Ollama connections (routers/ollama.py at 0.12.4: GET /ollama/config, POST /ollama/config/update) -------------

# The URL of an Ollama service of the main stack, as Open-WebUI's container reaches it on the compose network: the
# shared one (ollama) or one GPU's (ollama-gpu0, ...). Open-WebUI's other Ollama connections are the admin's own.
STACK_OLLAMA_URL = re.compile(r"^https?://ollama(-gpu(0|[1-9][0-9]*))?(:[0-9]+)?/?$")


def ollama_plan(stored, wanted):
    """(config to write, added URLs, removed URLs) that make Open-WebUI's Ollama connections hold the ``wanted`` URLs.

    ``stored`` is what ``GET /ollama/config`` answers. A stored URL that names one of the main stack's Ollama services
    but is not wanted (``http://ollama:11434`` after the switch to one Ollama per GPU) is removed; every other stored
    URL stays where it is; wanted URLs missing are appended in order. Each kept URL keeps its settings
    (``OLLAMA_API_CONFIGS`` is keyed by the URL's index, so the keys follow the URLs). ``ENABLE_OLLAMA_API`` is
    written back as stored: the update stores whatever it is given, null included.
    """
    stored = stored if isinstance(stored, dict) else {}
    urls = [url for url in stored.get("OLLAMA_BASE_URLS") or [] if isinstance(url, str)]
    configs = stored.get("OLLAMA_API_CONFIGS") if isinstance(stored.get("OLLAMA_API_CONFIGS"), dict) else {}
    kept, removed = [], []
    for index, url in enumerate(urls):
        if url in wanted or not STACK_OLLAMA_URL.match(url):
            if url not in [item[1] for item in kept]:
                kept.append((index, url))
                continue
        removed.append(url)
    added = [url for url in wanted if url not in [item[1] for item in kept]]
    new_urls = [url for _index, url in kept] + added
    new_configs = {}
    for position, (index, _url) in enumerate(kept):
        if str(index) in configs:
            new_configs[str(position)] = copy.deepcopy(configs[str(index)])
    enable = stored.get("ENABLE_OLLAMA_API")
    config = {"ENABLE_OLLAMA_API": enable if isinstance(enable, bool) else True, "OLLAMA_BASE_URLS": new_urls,
              "OLLAMA_API_CONFIGS": new_configs}
    return config, added, removed
