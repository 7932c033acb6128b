#!/usr/bin/python
#
# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: read_files

short_description: Read several files from the managed host in one call

version_added: 1.0.0

author:
  - homelab.core maintainers (@homelab-core)

description:
  - Returns the base64-encoded content of each of O(paths) that exists, like M(ansible.builtin.slurp) does for one
    file, in a single module run. Each M(ansible.builtin.slurp) is a round trip of its own.
  - A path that does not exist is listed in RV(missing) and is not an error, since a file that is not there yet
    (before a first deploy) is the usual case.
  - A path that exists but cannot be read (a directory, an I/O error) fails the task, naming the path; taking it for
    missing could, for a secrets file, make the caller generate new secrets over the old ones.
  - Use C(no_log) on the task when the files hold secrets; the module itself never logs their content.

attributes:
  check_mode:
    support: full
    description: Only reads, in check mode as in a normal run.
  diff_mode:
    support: none
    description: Changes nothing, so there is no diff.
  idempotent:
    support: full
    description: Never changes anything.

options:
  paths:
    description:
      - Absolute paths of the files to read.
    type: list
    elements: path
    required: true
  dirs:
    description:
      - Absolute paths of directories to look into, without reading them, in the same call. Each one that holds
        anything is listed in RV(nonempty_dirs); one that is missing or empty is not.
      - A symbolic link or other non-directory at such a path counts as holding something, and is not followed.
    type: list
    elements: path
    default: []
"""

EXAMPLES = r"""
- name: Read the persisted secrets and n8n's own settings file
  homelab.core.read_files:
    paths:
      - /opt/homelab/secrets/homelab.json
      - /opt/homelab/data/n8n/.n8n/config
  register: read
  no_log: true

- name: Use a file's content if it exists
  ansible.builtin.set_fact:
    persisted: "{{ read.contents[path] | b64decode | from_json if path in read.contents else {} }}"
  vars:
    path: /opt/homelab/secrets/homelab.json
  no_log: true
"""

RETURN = r"""
contents:
  description: The base64 content of each path that exists, by path.
  returned: always
  type: dict
  sample: {/opt/homelab/secrets/homelab.json: e30K}
missing:
  description: The paths of O(paths) that do not exist, in their order.
  returned: always
  type: list
  elements: str
  sample: [/opt/homelab/data/n8n/.n8n/config]
nonempty_dirs:
  description: The paths of O(dirs) that hold anything (or are not a directory), in their order.
  returned: always
  type: list
  elements: str
  sample: [/opt/homelab/data/coolify-db]
"""

import base64
import os
import stat

from ansible.module_utils.basic import AnsibleModule


def read_all(paths):
    """Return (contents, missing, unreadable) for ``paths``: base64 text by path, the paths that do not exist, and
    the reason by path for those that exist but cannot be read."""
    contents, missing, unreadable = {}, [], {}
    for path in dict.fromkeys(paths):
        try:
            with open(path, "rb") as handle:
                contents[path] = base64.b64encode(handle.read()).decode("ascii")
        except FileNotFoundError:
            missing.append(path)
        except OSError as exc:
            unreadable[path] = str(exc)
    return contents, missing, unreadable


def nonempty(dirs):
    """The paths of ``dirs`` that hold anything; a path that is there but is no directory (a link) counts, unfollowed."""
    found = []
    for path in dict.fromkeys(dirs):
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(mode):
            found.append(path)
            continue
        with os.scandir(path) as entries:
            if next(entries, None) is not None:
                found.append(path)
    return found


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", required=True),
            dirs=dict(type="list", elements="path", default=[]),
        ),
        supports_check_mode=True,
    )
    contents, missing, unreadable = read_all(module.params["paths"])
    if unreadable:
        module.fail_json(msg="Cannot read %s." % "; ".join("%s (%s)" % item for item in sorted(unreadable.items())))
    module.exit_json(changed=False, contents=contents, missing=missing, nonempty_dirs=nonempty(module.params["dirs"]))


if __name__ == "__main__":
    main()
