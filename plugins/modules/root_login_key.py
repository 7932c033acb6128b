#!/usr/bin/python
#
# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: root_login_key

short_description: Keep one SSH key pair that logs in as root, and only its own entry in root's authorized_keys

version_added: 1.0.0

author:
  - homelab.core maintainers (@homelab-core)

description:
  - For a service that manages its host over SSH as root (Coolify). One call on every run, where a key pair module,
    an authorized_keys module and a line removal took three.
  - With O(state=present), makes an ed25519 key pair at O(path) with C(ssh-keygen) when none is there (an existing
    pair is kept, and a missing C(.pub) is derived from the private key), gives both files O(owner), O(group) and
    O(mode), and makes root's C(authorized_keys) hold exactly one entry marked O(marker) - this key with O(key_options)
    - taking back every other entry with that marker (a key a restore replaced, or one regenerated).
  - With O(state=absent), takes back every entry marked O(marker) and keeps the key pair (the service's data).
  - Other entries of C(authorized_keys) are never touched. The file and C(~/.ssh) are created for root with modes
    C(0600) and C(0700) when needed; the file is replaced atomically.
  - When C(ssh-keygen) is missing and a key must be made, it changes nothing and returns RV(ssh_keygen_missing), so
    the caller installs it and calls again (in check mode it predicts the key instead).

attributes:
  check_mode:
    support: full
    description: Reports what it would change and writes nothing.
  diff_mode:
    support: full
    description: Shows the entries of C(authorized_keys) before and after.
  idempotent:
    support: full
    description: A second call with the same options changes nothing.

options:
  path:
    description: Path of the private key; the public key is O(path) with C(.pub). Its directory must exist.
    type: path
    required: true
  owner:
    description: Owner (name or uid) of both key files.
    type: str
    default: "0"
  group:
    description: Group (name or gid) of both key files.
    type: str
    default: "0"
  mode:
    description: Mode of the private key; the public key gets the same bits plus read for everyone.
    type: str
    default: "0600"
  comment:
    description: Comment of a new key.
    type: str
    default: ""
  key_options:
    description: The options of the entry, such as C(from="172.31.250.0/24",restrict,pty).
    type: str
    default: ""
  marker:
    description: The comment that ends every entry this module keeps for the service; entries without it are not touched.
    type: str
    required: true
  authorized_keys:
    description: Root's authorized_keys file.
    type: path
    default: /root/.ssh/authorized_keys
  state:
    description: V(present) keeps the pair and its one entry; V(absent) takes back every entry with O(marker).
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: Let Coolify's key log in as root, from Coolify's network only
  homelab.core.root_login_key:
    path: /opt/homelab/data/coolify/ssh/keys/id.root@host.docker.internal
    owner: "9999"
    comment: coolify@{{ inventory_hostname }}
    key_options: from="172.31.250.0/24",restrict,pty
    marker: coolify
"""

RETURN = r"""
public_key:
  description: The public key (type and base64), when there is one.
  type: str
  returned: success
ssh_keygen_missing:
  description: True when a key had to be made but C(ssh-keygen) is not installed; nothing was changed.
  type: bool
  returned: always
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule


def entry_marker(line, marker):
    """True when an authorized_keys line is one of the service's entries (it ends with `` marker``)."""
    return line.rstrip().endswith(" " + marker)


def wanted_entries(lines, public_key, key_options, marker):
    """``lines`` with the service's entries replaced by the one for ``public_key`` (none when it is empty)."""
    kept = [line for line in lines if not entry_marker(line, marker)]
    if public_key:
        entry = "%s %s" % (public_key, marker)
        kept.append("%s %s" % (key_options, entry) if key_options else entry)
    return kept


class RootLoginKey:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.changed = False
        self.public_key = ""
        self.ssh_keygen_missing = False

    def _keygen(self, args):
        rc, out, err = self.module.run_command([self.ssh_keygen] + args)
        if rc != 0:
            self.module.fail_json(msg="ssh-keygen %s failed: %s" % (" ".join(args), err.strip()))
        return out

    def key_pair(self):
        """Make or keep the pair; return the public key ('' in check mode before it exists)."""
        private, public = self.params["path"], self.params["path"] + ".pub"
        self.ssh_keygen = self.module.get_bin_path("ssh-keygen")
        if os.path.exists(private) and os.path.exists(public):
            with open(public, encoding="utf-8") as stream:
                text = stream.read().split()
        elif self.module.check_mode:
            # Predicted, with or without ssh-keygen (the caller predicts its install too).
            self.ssh_keygen_missing = self.ssh_keygen is None
            self.changed = True
            return ""
        elif self.ssh_keygen is None:
            self.ssh_keygen_missing = True
            return None
        elif os.path.exists(private):
            text = self._keygen(["-y", "-f", private]).split()
            self._write_public(public, "%s %s %s\n" % (text[0], text[1], self.params["comment"]))
            self.changed = True
        else:
            self._keygen(["-q", "-t", "ed25519", "-N", "", "-C", self.params["comment"], "-f", private])
            with open(public, encoding="utf-8") as stream:
                text = stream.read().split()
            self.changed = True
        for path, mode in ((private, self.params["mode"]), (public, "%04o" % (int(self.params["mode"], 8) | 0o444))):
            self.changed = self.module.set_owner_if_different(path, self.params["owner"], self.changed)
            self.changed = self.module.set_group_if_different(path, self.params["group"], self.changed)
            self.changed = self.module.set_mode_if_different(path, mode, self.changed)
        return "%s %s" % (text[0], text[1])

    def _write_public(self, path, content):
        with open(path, "w", encoding="utf-8") as stream:
            stream.write(content)

    def authorized(self, public_key):
        """Make root's authorized_keys hold the wanted entries; return the diff."""
        path = self.params["authorized_keys"]
        before = ""
        if os.path.exists(path):
            with open(path, encoding="utf-8") as stream:
                before = stream.read()
        lines = before.splitlines()
        after_lines = wanted_entries(lines, public_key, self.params["key_options"], self.params["marker"])
        if after_lines == lines:
            return {"before": before, "after": before}
        after = "\n".join(after_lines) + ("\n" if after_lines else "")
        self.changed = True
        if not self.module.check_mode:
            directory = os.path.dirname(path)
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o700)
            descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".authorized_keys.")
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                stream.write(after)
            existed = os.path.exists(path)
            self.module.atomic_move(temporary, path)
            if not existed:
                # atomic_move keeps an existing file's owner and mode; a new one gets the umask's.
                os.chmod(path, 0o600)
        return {"before": before, "after": after, "before_header": path, "after_header": path}

    def run(self):
        public_key = ""
        if self.params["state"] == "present":
            public_key = self.key_pair()
            if public_key is None:
                self.module.exit_json(changed=False, ssh_keygen_missing=True, public_key="")
            self.public_key = public_key
            if not public_key:
                # Check mode before the key exists: its entry is predicted with the key.
                self.module.exit_json(changed=True, ssh_keygen_missing=self.ssh_keygen_missing, public_key="")
        diff = self.authorized(public_key)
        self.module.exit_json(changed=self.changed, ssh_keygen_missing=False, public_key=self.public_key, diff=diff)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            owner=dict(type="str", default="0"),
            group=dict(type="str", default="0"),
            mode=dict(type="str", default="0600"),
            comment=dict(type="str", default=""),
            key_options=dict(type="str", default="", no_log=False),
            marker=dict(type="str", required=True),
            authorized_keys=dict(type="path", default="/root/.ssh/authorized_keys"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    if not module.params["marker"].strip() or any(char.isspace() for char in module.params["marker"]):
        module.fail_json(msg="marker must be one word, such as coolify")
    RootLoginKey(module).run()


if __name__ == "__main__":
    main()
