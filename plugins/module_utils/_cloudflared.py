# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The shape of a Cloudflare tunnel token, checked without ever printing it."""

from __future__ import annotations

import base64
import binascii
import json
import uuid


def _b64decode(text):
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_" if ("-" in text or "_" in text) else None, validate=True)
    except (binascii.Error, ValueError):
        return None


def token_problem(token):
    """'' for a well-formed tunnel token, else a phrase that names the problem (never the token).

    A token is base64 of a JSON object with the account tag (a), the tunnel id (t, a UUID) and the
    tunnel secret (s, base64), as the Cloudflare dashboard shows it.
    """
    if not isinstance(token, str) or not token.strip():
        return "is empty"
    raw = _b64decode(token.strip())
    if raw is None:
        return "is not base64; copy the whole token from the Cloudflare dashboard (Zero Trust > Networks > Tunnels)"
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "does not decode to JSON; copy the whole token from the Cloudflare dashboard"
    if not isinstance(payload, dict):
        return "does not decode to a JSON object; copy the whole token from the Cloudflare dashboard"
    missing = [key for key in ("a", "t", "s") if not payload.get(key)]
    if missing:
        return "lacks the field(s) %s; copy the whole token from the Cloudflare dashboard" % ", ".join(missing)
    try:
        uuid.UUID(str(payload["t"]))
    except ValueError:
        return "has a tunnel id (t) that is not a UUID; copy the whole token from the Cloudflare dashboard"
    if _b64decode(str(payload["s"])) is None:
        return "has a secret (s) that is not base64; copy the whole token from the Cloudflare dashboard"
    return ""
