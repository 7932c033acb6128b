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
  - Only regular files are read, since some of the files are in data directories that containers can write. A symbolic
    link, a named pipe, a device, a socket or a directory at one of O(paths) fails the task naming the path and what it
    is, and so does a file larger than O(max_size). Links are never followed at the path, and on the way to it only
    where a container cannot have planted them (see O(paths)).
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
      - Each path is opened one directory at a time without following symbolic links. A link at a directory on the way
        is followed only when it is in a directory that only root (or the user the module runs as) can write, such as
        a system path; a link in a directory that another user owns, or that its group or others can write (without
        the sticky bit), fails the task naming it.
    type: list
    elements: path
    required: true
  max_size:
    description:
      - The largest file, in bytes, that is read. A larger file at one of O(paths) fails the task, naming its path and
        size.
    type: int
    default: 1048576
  dirs:
    description:
      - Absolute paths of directories to look into, without reading them, in the same call. Each one that holds
        anything is listed in RV(nonempty_dirs); one that is missing or empty is not.
      - A symbolic link or other non-directory at such a path counts as holding something, and is not followed. So does
        a path below a symbolic link that is not followed (see O(paths)) or below a non-directory.
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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.core.plugins.module_utils._safe_read import nonempty, read_all


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", required=True),
            dirs=dict(type="list", elements="path", default=[]),
            max_size=dict(type="int", default=1048576),
        ),
        supports_check_mode=True,
    )
    if module.params["max_size"] < 0:
        module.fail_json(msg="max_size must be 0 or more, got %d." % module.params["max_size"])
    contents, missing, unreadable = read_all(module.params["paths"], module.params["max_size"])
    if unreadable:
        module.fail_json(msg="Cannot read %s." % "; ".join("%s (%s)" % item for item in sorted(unreadable.items())))
    found, unlisted = nonempty(module.params["dirs"])
    if unlisted:
        module.fail_json(msg="Cannot look into %s." % "; ".join("%s (%s)" % item for item in sorted(unlisted.items())))
    module.exit_json(changed=False, contents=contents, missing=missing, nonempty_dirs=found)


if __name__ == "__main__":
    main()
