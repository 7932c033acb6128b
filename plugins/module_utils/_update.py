# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an update of a stack's pulled images would do: pure functions, no I/O.

``running`` describes the containers as they are: service -> {image (the reference the container
was created from), id (the image id it runs), digests (RepoDigests of that image)}.
"""

from __future__ import annotations

import re

from ansible_collections.homelab.core.plugins.module_utils import _catalogue

REFERENCE = re.compile(r"^(?:(?P<registry>[^/]+\.[^/]+|[^/]+:[0-9]+|localhost)/)?(?P<repository>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>.+))?$")


def parse_reference(reference):
    """{registry, repository, tag, digest} of an image reference (docker.io/library when not named)."""
    match = REFERENCE.match(reference or "")
    if match is None:
        raise ValueError("%r is not an image reference" % reference)
    registry = match.group("registry") or "docker.io"
    repository = match.group("repository")
    if registry == "docker.io" and "/" not in repository:
        repository = "library/" + repository
    return {"registry": registry, "repository": repository, "tag": match.group("tag") or "latest",
            "digest": match.group("digest") or ""}


def _major(tag):
    version = _catalogue.version_tuple(tag)
    return version[0] if version else None


def update_plan(stack, running, gpu_reservation="none"):
    """One row per enabled service whose image is pulled (built images are the stack role's).

    A row: service, current (reference or ''), current_id, digest, target, action (recreate, keep
    or new), old_version, new_version, data_paths, database (postgres, redis or ''), and
    postgres_major ([old, new] when a PostgreSQL service would change major version), and
    rollback_image (the catalogue image that pins the service back to what runs now).
    """
    services = _catalogue.resolve_services(stack)
    rows = []
    for name in _catalogue.enabled_services(services):
        entry = services[name]
        if entry.get("build"):
            continue
        target = _catalogue.service_image_ref(stack, entry, gpu_reservation, name)
        now = (running or {}).get(name) or {}
        current = now.get("image", "")
        backup = entry.get("backup") or {}
        row = {
            "service": name,
            "current": current,
            "current_id": now.get("id", ""),
            "digest": (now.get("digests") or [now.get("id", "")])[0].rpartition("@")[2] if now else "",
            "target": target,
            "action": "new" if not current else ("keep" if current == target else "recreate"),
            "old_version": parse_reference(current)["tag"] if current else "",
            "new_version": parse_reference(target)["tag"],
            "image": parse_reference(current) if current else None,
            "target_image": parse_reference(target),
            "tags_url": registry_url(parse_reference(target)),
            # One GPU's Ollama (split_per_gpu) rolls back its own directory, not the one of every instance.
            "data_paths": [item["path"] for item in entry.get("data") or [] if not item.get("instances_parent")],
            "database": "postgres" if "postgres" in backup else ("redis" if "redis" in backup else ""),
            "postgres_major": None,
        }
        if row["database"] == "postgres" and current:
            old, new = _major(row["old_version"]), _major(row["new_version"])
            if old is not None and new is not None and old != new:
                row["postgres_major"] = [old, new]
        if current:
            # Pinned back through the catalogue, which appends the GPU suffix again itself.
            suffix = entry.get("gpu_image_tag_suffix", "")
            back = dict(row["image"])
            if suffix and back["tag"].endswith(suffix) and target.endswith(suffix):
                back["tag"] = back["tag"][: -len(suffix)]
            row["rollback_image"] = back
        rows.append(row)
    return rows


def newer_tags(current_tag, tags):
    """Tags in ``tags`` that are newer versions than ``current_tag`` with the same suffix, newest first."""
    found = _catalogue.version_tuple(current_tag)
    if found is None:
        return []
    suffix = re.sub(r"^v?[0-9]+(?:\.[0-9]+)*", "", current_tag)
    newer = []
    for tag in tags or []:
        version = _catalogue.version_tuple(tag)
        if version is None or re.sub(r"^v?[0-9]+(?:\.[0-9]+)*", "", tag) != suffix:
            continue
        width = max(len(version), len(found))
        if version + (0,) * (width - len(version)) > found + (0,) * (width - len(found)):
            newer.append((version, tag))
    return [tag for _version, tag in sorted(newer, reverse=True)]


def table(headers, rows):
    """Plain text columns, as the other reports of the collection print them."""
    cells = [list(map(str, headers))] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    return ["  ".join(cell.ljust(widths[index]) for index, cell in enumerate(row)).rstrip() for row in cells]


def registry_url(image):
    """The registry API base for an image: Docker Hub's is registry-1.docker.io; loopback mirrors speak HTTP."""
    host = image["registry"]
    if host == "docker.io":
        host = "registry-1.docker.io"
    scheme = "http" if re.match(r"^(localhost|127\.0\.0\.1)(:[0-9]+)?$", host) else "https"
    return "%s://%s/v2/%s/tags/list" % (scheme, host, image["repository"])


def _short(digest):
    return digest.split(":", 1)[-1][:12] if digest else "-"


def preview(rows, tag_results=None):
    """The table update.yml --check shows: what runs, what is pinned, and what would happen."""
    answers = {}
    for result in tag_results or []:
        row = result.get("item") or {}
        if result.get("skipped"):
            continue
        tags = (result.get("json") or {}).get("tags") if result.get("status") == 200 else None
        answers[row.get("service")] = (", ".join(newer_tags(row.get("new_version", ""), tags)[:3]) or "none") if tags is not None else "no answer"
    lines = table(
        ["service", "running", "digest", "pinned", "action", "newer upstream"],
        [[row["service"], row["old_version"] or "-", _short(row["digest"]), row["new_version"],
          row["action"] + (" (PostgreSQL %s -> %s)" % tuple(row["postgres_major"]) if row["postgres_major"] else ""),
          answers.get(row["service"], "not asked")] for row in rows],
    )
    return lines


def report(rows, outcome):
    """The table update.yml ends with: service, old version, new version, result.

    ``outcome`` maps services to their result, or is one result for every service that changed.
    """
    if isinstance(outcome, str):
        outcome = {row["service"]: outcome for row in rows if row["action"] != "keep"}
    return table(["service", "old version", "new version", "result"],
                 [[row["service"], row["old_version"] or "-", row["new_version"], outcome.get(row["service"], "unchanged")]
                  for row in rows if row["action"] != "keep" or row["service"] in outcome])
