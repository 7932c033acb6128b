# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure helpers for the ollama_model module: model names, pull progress, manifest sizes.

Private to homelab.core. Written from the behaviour of Ollama v0.32.15
(types/model/name.go, server/download.go, manifest/manifest.go); see
docs/upstream-evidence.md, section "Ollama".
"""

from __future__ import annotations

import string

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

_ALNUM_ = frozenset(string.ascii_letters + string.digits + "_")
# Characters allowed after the first one, per part (the first must be alphanumeric or "_").
_REST = {
    "host": _ALNUM_ | frozenset("-_.:"),
    "namespace": _ALNUM_ | frozenset("-_"),
    "model": _ALNUM_ | frozenset("-_."),
    "tag": _ALNUM_ | frozenset("-_."),
}
_EXTRAS = {"host": "'_-.:'", "namespace": "'_-'", "model": "'_-.'", "tag": "'_-.'"}
_MAX_LEN = {"host": 350, "namespace": 80, "model": 80, "tag": 80}
MILESTONES = (0, 25, 50, 75, 100)


class ModelName(tuple):
    """(host, namespace, model, tag) of one model, as Ollama fills in the defaults."""

    __slots__ = ()

    def __new__(cls, host, namespace, model, tag):
        return super().__new__(cls, (host, namespace, model, tag))

    host = property(lambda self: self[0])
    namespace = property(lambda self: self[1])
    model = property(lambda self: self[2])
    tag = property(lambda self: self[3])

    @property
    def key(self):
        """What two names are compared by: Ollama matches every part case-insensitively."""
        return tuple(part.lower() for part in self)

    @property
    def shortest(self):
        """The name as /api/tags lists it: defaults left out, but the tag always there."""
        if self.host.lower() != DEFAULT_HOST:
            prefix = "%s/%s/" % (self.host, self.namespace)
        elif self.namespace.lower() != DEFAULT_NAMESPACE:
            prefix = "%s/" % self.namespace
        else:
            prefix = ""
        return "%s%s:%s" % (prefix, self.model, self.tag)

    @property
    def repository(self):
        """namespace/model, the repository path of the registry's manifest URL."""
        return "%s/%s" % (self.namespace, self.model)


def _invalid_part(kind, value):
    if not 1 <= len(value) <= _MAX_LEN[kind]:
        return True
    if value[0] not in _ALNUM_:
        return True
    return any(char not in _REST[kind] for char in value[1:])


def parse_name(text):
    """Parse model, model:tag, namespace/model:tag or host/namespace/model:tag.

    Returns a ModelName with Ollama's defaults filled in. Raises ValueError with a
    sentence that says what is wrong.
    """
    text = (text or "").strip()
    if not text:
        raise ValueError("the model name is empty")
    if "@" in text:
        raise ValueError("model name %r has a digest (@...); give a tag instead" % text)
    if "://" in text:
        raise ValueError("model name %r has a URL scheme; give host/namespace/model:tag" % text)
    rest, tag = text, DEFAULT_TAG
    # A ":" after the last "/" starts the tag; one before it belongs to a host:port.
    if text.rfind(":") > text.rfind("/"):
        rest, tag = text.rsplit(":", 1)
    parts = rest.split("/")
    if len(parts) > 3:
        raise ValueError("model name %r has more than host/namespace/model before the tag" % text)
    parts = [DEFAULT_HOST, DEFAULT_NAMESPACE][: 3 - len(parts)] + parts
    name = ModelName(parts[0], parts[1], parts[2], tag)
    for kind, value in zip(("host", "namespace", "model", "tag"), name):
        if _invalid_part(kind, value):
            raise ValueError(
                "model name %r has an invalid %s %r: it may hold letters, digits and %s, starting with a letter, "
                "a digit or '_', at most %d characters" % (text, kind, value, _EXTRAS[kind], _MAX_LEN[kind])
            )
    return name


def find_installed(name, models):
    """The /api/tags entry of `name` (a ModelName), or None. Entries that do not parse are skipped."""
    for entry in models or []:
        listed = entry.get("name") or entry.get("model")
        try:
            if parse_name(listed).key == name.key:
                return entry
        except ValueError:
            continue
    return None


def manifest_size(manifest):
    """Bytes a registry manifest says the model needs: config plus every layer. None when unknown."""
    try:
        layers = list(manifest.get("layers") or [])
        config = manifest.get("config") or {}
        sizes = [int(layer["size"]) for layer in layers]
        if config:
            sizes.append(int(config.get("size") or 0))
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return sum(sizes) if layers else None


def manifest_blobs(manifest):
    """[(digest, size)] of the config and layers of a registry manifest."""
    blobs = []
    for blob in list(manifest.get("layers") or []) + [manifest.get("config") or {}]:
        if blob.get("digest"):
            blobs.append((blob["digest"], int(blob.get("size") or 0)))
    return blobs


def human_size(size):
    """1234567890 -> '1.1 GiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return ("%d %s" % (value, unit)) if unit == "B" else ("%.1f %s" % (value, unit))
        value /= 1024
    return "%d B" % size  # pragma: no cover


class PullProgress:
    """Keeps a compact record of a pull: each status once, each layer at 0/25/50/75/100 %.

    `add(line)` takes one decoded NDJSON object and returns the milestone it
    recorded (a dict), or None when the line added nothing new.
    """

    def __init__(self):
        self.milestones = []
        self.success = False
        self._seen_status = set()
        self._layer_marks = {}

    def add(self, line):
        status = str(line.get("status") or "")
        digest = line.get("digest")
        if digest and line.get("total"):
            total = int(line.get("total") or 0)
            completed = min(int(line.get("completed") or 0), total)
            percent = completed * 100 // total if total else 0
            reached = [mark for mark in MILESTONES if mark <= percent]
            mark = reached[-1] if reached else 0
            if mark in self._layer_marks.setdefault(digest, set()):
                return None
            self._layer_marks[digest].add(mark)
            entry = {"status": status, "digest": digest, "percent": mark, "completed": completed, "total": total}
        else:
            if not status or status in self._seen_status:
                return None
            self._seen_status.add(status)
            entry = {"status": status}
        if status == "success":
            self.success = True
        self.milestones.append(entry)
        return entry
