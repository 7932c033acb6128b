# -*- coding: utf-8 -*-
# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """How the Open-WebUI modules reach Open-WebUI and sign in as its admin (module_utils/_open_webui_api.py)."""

    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of Open-WebUI, as this host reaches it.
    type: str
    default: http://127.0.0.1:3000
  admin_email:
    description:
      - E-mail of an Open-WebUI admin (the one created from C(WEBUI_ADMIN_EMAIL) at the first start).
    type: str
    required: true
  admin_password:
    description:
      - That admin's password.
    type: str
    required: true
  timeout:
    description: Seconds to wait for each answer of Open-WebUI.
    type: int
    default: 30
  wait:
    description:
      - Seconds to keep trying to sign in while Open-WebUI does not answer yet (it was just started, or restarted on a
        new data directory, and is still migrating its database).
    type: int
    default: 180
  validate_certs:
    description: Verify TLS certificates when O(url) is C(https).
    type: bool
    default: true
  session_file:
    description:
      - A root-only file (mode 0600, written without following a link) where the admin's session token is kept and
        reused while Open-WebUI accepts it, so that runs do not spend Open-WebUI's sign-ins (15 per email in 3
        minutes). Check mode reads it but writes none. Without it every run signs in.
    type: path
"""
