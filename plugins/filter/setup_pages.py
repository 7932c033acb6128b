# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Which services still offer their setup page to an anonymous visitor, from their own answers."""

from __future__ import annotations

from collections.abc import Mapping

DOCUMENTATION = r"""
name: setup_pages
short_description: Name the services whose setup page is still open to anyone
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - Reads the answers of anonymous requests, one per service, as M(ansible.builtin.uri) returns them in a loop whose
    item has C(service), and returns the services that would still let a stranger create the first admin account.
  - C(n8n), C(GET /rest/settings) (n8n 2.41.1 C(frontend.service.js)) is open while
    C(data.userManagement.showSetupOnFirstLoad) is true.
  - C(open-webui), C(GET /api/config) (Open-WebUI 0.12.4 C(main.py)) is open while it has the C(onboarding) key (no
    user yet) or C(features.enable_signup) is true.
  - C(coolify), C(GET /register) (Coolify 4.3.10 C(FortifyServiceProvider.php)) is open while it answers 200 with
    the form; closed, it redirects (302) to C(/login).
  - An answer that cannot be read counts as open.
options:
  _input:
    description: The C(results) of the looped M(ansible.builtin.uri) task (C(follow_redirects=none), C(return_content)).
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Fail when a service still offers its setup page
  ansible.builtin.fail:
    msg: "{{ open | join(', ') }} still offer their setup page."
  when: open | length > 0
  vars:
    open: "{{ probes.results | homelab.core.setup_pages }}"
"""

RETURN = r"""
_value:
  description: The services whose setup page is open, in the order of the results.
  type: list
  elements: str
"""


def _get(data, *keys):
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def is_open(service, status, answer):
    if service == "n8n":
        return _get(answer, "data", "userManagement", "showSetupOnFirstLoad") is not False
    if service == "open-webui":
        return not isinstance(answer, Mapping) or "onboarding" in answer or _get(answer, "features", "enable_signup") is not False
    if service == "coolify":
        return status != 302
    raise ValueError("no setup-page rule for service %r" % service)


def setup_pages(results):
    found = []
    for result in results or []:
        item = result.get(result.get("ansible_loop_var", "item")) or {}
        if is_open(item["service"], result.get("status"), result.get("json")):
            found.append(item["service"])
    return found


class FilterModule:
    def filters(self):
        return {"setup_pages": setup_pages}
