# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Whether a service still offers its setup page to an anonymous visitor, asked as a stranger would.

A catalogue entry's ``setup_page: {path, rule}`` names the page and how the upstream answer tells
an owned service from an unclaimed one; stack_health asks it after the service is healthy, for the
services whose admin account the inventory gives. The rules, read at the pinned upstream tags:

``n8n``         ``GET /rest/settings`` (n8n 2.41.1 frontend.service.js) is open while
                ``data.userManagement.showSetupOnFirstLoad`` is true.
``open-webui``  ``GET /api/config`` (Open-WebUI 0.12.4 main.py) is open while it has the
                ``onboarding`` key (no user yet) or ``features.enable_signup`` is true.
``coolify``     ``GET /register`` (Coolify 4.3.10 FortifyServiceProvider.php) is open while it
                answers 200 with the form; closed, it redirects (302) to ``/login``.

An answer that cannot be read counts as open.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http.client import HTTPException
from urllib.error import HTTPError
from urllib.request import HTTPRedirectHandler, ProxyHandler, Request, build_opener

RULES = ("n8n", "open-webui", "coolify")
ANSWER_LIMIT = 256 * 1024


def _get(data, *keys):
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def is_open(rule, status, answer):
    """True when the answer (``status``, the parsed JSON or None) shows a setup page anyone may use."""
    if rule == "n8n":
        return _get(answer, "data", "userManagement", "showSetupOnFirstLoad") is not False
    if rule == "open-webui":
        return not isinstance(answer, Mapping) or "onboarding" in answer or _get(answer, "features", "enable_signup") is not False
    if rule == "coolify":
        return status != 302
    raise ValueError("no setup-page rule %r; the rules are %s" % (rule, ", ".join(RULES)))


class _Stay(HTTPRedirectHandler):
    """A redirect is the answer (Coolify's 302 to /login), not something to follow."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def ask(url, timeout):
    """(status, parsed JSON or None) of one anonymous GET of ``url``, redirects not followed; (None, None) when unreachable."""
    try:
        try:
            response = build_opener(_Stay, ProxyHandler({})).open(Request(url), timeout=timeout)
        except HTTPError as exc:
            response = exc
        try:
            status, body = response.getcode(), response.read(ANSWER_LIMIT)
        finally:
            response.close()
    except (OSError, HTTPException):
        return None, None
    try:
        return status, json.loads(body.decode("utf-8"))
    except ValueError:
        return status, None
