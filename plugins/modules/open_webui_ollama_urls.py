#!/usr/bin/python
#
# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: open_webui_ollama_urls

short_description: Keep Open-WebUI's Ollama connections in line with the Ollamas the stack runs

version_added: 1.1.0

author:
  - homelab.core maintainers (@homelab-core)

description:
  - Open-WebUI reads C(OLLAMA_BASE_URLS) from its environment only until its config store holds a value (its first
    start, with upstream's default C(ENABLE_PERSISTENT_CONFIG)); later changes of the environment are ignored. This
    module makes the stored list hold every URL of O(urls), through Open-WebUI's admin API at O(url).
  - It signs in as the admin (C(POST /api/v1/auths/signin)), reads the Ollama connections (C(GET /ollama/config)) and
    writes them back once (C(POST /ollama/config/update)) only when a URL must be added or removed.
  - A stored URL that names one of the main stack's own Ollama services (C(http://ollama:11434),
    C(http://ollama-gpu0:11434), ...) but is not in O(urls) is removed; every other stored URL (one an admin added) is
    kept in its place, with its settings. O(urls) missing from the list are appended in order.
  - Written from Open-WebUI 0.12.4 (C(open_webui/routers/ollama.py), C(open_webui/routers/auths.py)).

extends_documentation_fragment:
  - homelab.core.open_webui

attributes:
  check_mode:
    support: full
    description: Signs in and reads the connections, but writes nothing.
  diff_mode:
    support: full
    description: The list of Ollama URLs before and after.
  idempotent:
    support: full
    description: A second run with the same options reports no change and writes nothing.

options:
  urls:
    description:
      - The Ollama URLs Open-WebUI must offer, as its container reaches them (C(main_stack_ollama_urls)).
    type: list
    elements: str
    required: true

notes:
  - The settings an admin gave a kept URL (C(OLLAMA_API_CONFIGS), keyed by the URL's place in the list) follow it when
    the list changes; those of a removed URL go. C(ENABLE_OLLAMA_API) is written back as it is.
"""

EXAMPLES = r"""
- name: Offer every Ollama of the host in Open-WebUI
  homelab.core.open_webui_ollama_urls:
    url: http://127.0.0.1:3000
    admin_email: "{{ main_stack_open_webui_admin_email }}"
    admin_password: "{{ main_stack_open_webui_admin_password }}"
    urls: [http://ollama-gpu0:11434, http://ollama-gpu1:11434]
  no_log: true
"""

RETURN = r"""
urls:
  description: Open-WebUI's Ollama URLs after the run (an admin's own included).
  returned: success
  type: list
  elements: str
  sample: [http://ollama-gpu0:11434, http://ollama-gpu1:11434]
added:
  description: The URLs added.
  returned: success
  type: list
  elements: str
  sample: [http://ollama-gpu0:11434, http://ollama-gpu1:11434]
removed:
  description: The main stack's Ollama URLs removed because no Ollama answers there any more.
  returned: success
  type: list
  elements: str
  sample: [http://ollama:11434]
"""

from ansible_collections.homelab.core.plugins.module_utils._open_webui import ollama_plan
from ansible_collections.homelab.core.plugins.module_utils._open_webui_api import OpenWebUIError, admin_module, signed_in


def run(module):
    params = module.params
    wanted = list(dict.fromkeys(params["urls"]))
    bad = [url for url in wanted if not url.startswith(("http://", "https://"))]
    if bad:
        module.fail_json(msg="urls must start with http:// or https://, not %s." % ", ".join(bad))
    changed = False
    try:
        api = signed_in(module)
        stored = api.read_ollama()
        config, added, removed = ollama_plan(stored, wanted)
        before = list(stored.get("OLLAMA_BASE_URLS") or [])
        changed = config["OLLAMA_BASE_URLS"] != before
        if changed and not module.check_mode:
            api.write_ollama(config)
    except OpenWebUIError as error:
        module.fail_json(msg=str(error))
    result = dict(changed=changed, urls=config["OLLAMA_BASE_URLS"], added=added, removed=removed)
    if module._diff:
        result["diff"] = dict(before=dict(urls=before), after=dict(urls=config["OLLAMA_BASE_URLS"]))
    module.exit_json(**result)


def main():
    run(admin_module(urls=dict(type="list", elements="str", required=True)))


if __name__ == "__main__":
    main()
