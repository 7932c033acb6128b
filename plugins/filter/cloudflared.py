# Copyright: homelab.core contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters for Cloudflare tunnel tokens (they never echo the token)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid

DOCUMENTATION = r"""
name: cloudflared_token_problem
short_description: Say what is wrong with a Cloudflare tunnel token, without echoing it
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - Checks that a token is base64 of a JSON object with C(a) (account tag), C(t) (tunnel UUID) and
    C(s) (base64 secret), as C(cloudflared tunnel run --token) expects.
  - Returns an empty string for a well-formed token, otherwise one phrase saying what is wrong.
    The phrase never contains the token or any part of it.
options:
  _input:
    description: The token.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Fail on a malformed token
  ansible.builtin.assert:
    that: homelab_cloudflared_tunnel_token | homelab.core.cloudflared_token_problem == ''
    fail_msg: "homelab_cloudflared_tunnel_token {{ homelab_cloudflared_tunnel_token | homelab.core.cloudflared_token_problem }}."
"""

RETURN = r"""
_value:
  description: Empty when the token is well formed, else what is wrong with it.
  type: str
"""


def _b64decode(text):
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, altchars=b"-_" if ("-" in text or "_" in text) else None, validate=True)
    except (binascii.Error, ValueError):
        return None


def cloudflared_token_problem(token):
    """Return '' for a well-formed tunnel token, else a phrase that names the problem (never the token)."""
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


class FilterModule:
    def filters(self):
        return {"cloudflared_token_problem": cloudflared_token_problem}
