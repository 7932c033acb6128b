# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What an HTTP API's error answer says, for the modules' one-sentence errors."""

from __future__ import annotations

import json


def answer_message(body, field, limit=300):
    """The ``field`` of a JSON answer (Ollama's "error", FastAPI's "detail"), else the text itself, at most ``limit``
    characters; "no message" for an empty answer."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get(field):
        return str(data[field])[:limit]
    return text.strip()[:limit] or "no message"
