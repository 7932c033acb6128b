#!/usr/bin/python
#
# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: deb_packages

short_description: Make sure Debian packages are installed or removed, cheaply and in check mode too

version_added: 1.0.0

author:
  - homelab.core maintainers (@homelab-core)

description:
  - Reads the installed packages with C(dpkg-query) and runs C(apt-get) only for the packages that are missing
    (O(state=present)) or still installed (O(state=absent)), so a converged host costs one C(dpkg-query) and no apt
    cache work.
  - Needs neither python3-apt nor a fresh apt cache to answer in check mode, so C(--check) on a new host predicts the
    install instead of failing. The apt cache is refreshed only when packages must be installed and the cache is older
    than O(cache_valid_time).
  - Names only, no versions; use M(ansible.builtin.apt) for version pins.

requirements:
  - dpkg-query and apt-get on the managed host (Debian and its derivatives).

attributes:
  check_mode:
    support: full
    description: Reports the packages that would be installed or removed, without changing anything.
  diff_mode:
    support: full
    description: The diff lists the packages that would be installed or removed.
  idempotent:
    support: full
    description: A second run with the same names changes nothing.

options:
  names:
    description:
      - Package names, without versions.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(present) installs the missing packages, V(absent) removes those that are installed.
    type: str
    choices: [present, absent]
    default: present
  cache_valid_time:
    description:
      - Seconds the apt cache stays valid; an older cache is refreshed before an install.
    type: int
    default: 86400
  install_recommends:
    description:
      - Whether C(apt-get install) also installs recommended packages.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Install ssh-keygen
  homelab.core.deb_packages:
    names: [openssh-client]

- name: Remove distribution packages that conflict with Docker's own
  homelab.core.deb_packages:
    names: [docker.io, docker-compose, podman-docker]
    state: absent
"""

RETURN = r"""
changed_packages:
  description: The packages installed or removed (or that would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [openssh-client]
installed:
  description: The packages among O(names) that were installed before the module ran.
  returned: always
  type: list
  elements: str
  sample: [ca-certificates]
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

PKGCACHE = "/var/cache/apt/pkgcache.bin"
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}


def parse_dpkg_query(stdout):
    """Names whose status is 'installed' in `dpkg-query -W -f '${Package}\\t${db:Status-Abbrev}\\n'` output."""
    installed = set()
    for line in stdout.splitlines():
        name, _sep, status = line.partition("\t")
        # Status-Abbrev: desired state, current state, error flag; "ii" is installed and fine.
        if name and status.startswith("ii"):
            installed.add(name.split(":", 1)[0])
    return installed


class DebPackages:
    def __init__(self, module):
        self.module = module
        self.params = module.params

    def installed(self, names):
        dpkg_query = self.module.get_bin_path("dpkg-query", required=True)
        # Exit status 1 only means some names are unknown to dpkg: they are not installed.
        rc, stdout, stderr = self.module.run_command([dpkg_query, "-W", "-f", "${Package}\t${db:Status-Abbrev}\n"] + names)
        if rc not in (0, 1):
            self.module.fail_json(msg="dpkg-query failed (rc %d): %s" % (rc, stderr.strip()))
        return parse_dpkg_query(stdout)

    def apt_get(self, args):
        apt_get = self.module.get_bin_path("apt-get", required=True)
        return self.module.run_command([apt_get] + args, environ_update=APT_ENV)

    def cache_is_fresh(self):
        try:
            return time.time() - os.stat(PKGCACHE).st_mtime < self.params["cache_valid_time"]
        except OSError:
            return False

    def update_cache(self):
        rc, _stdout, stderr = self.apt_get(["update", "-q"])
        if rc != 0:
            self.module.fail_json(msg="apt-get update failed (rc %d): %s" % (rc, stderr.strip()))

    def install(self, names):
        args = ["install", "-y", "-q", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
        args.append("--install-recommends" if self.params["install_recommends"] else "--no-install-recommends")
        refreshed = False
        if not self.cache_is_fresh():
            self.update_cache()
            refreshed = True
        rc, _stdout, stderr = self.apt_get(args + names)
        if rc != 0 and not refreshed:
            # A cache that is young but stale can miss a package: refresh once and retry.
            self.update_cache()
            rc, _stdout, stderr = self.apt_get(args + names)
        if rc != 0:
            self.module.fail_json(msg="apt-get install %s failed (rc %d): %s" % (" ".join(names), rc, stderr.strip()))

    def remove(self, names):
        rc, _stdout, stderr = self.apt_get(["remove", "-y", "-q"] + names)
        if rc != 0:
            self.module.fail_json(msg="apt-get remove %s failed (rc %d): %s" % (" ".join(names), rc, stderr.strip()))

    def run(self):
        names = list(dict.fromkeys(self.params["names"]))
        bad = [name for name in names if not name or "=" in name or " " in name]
        if bad:
            self.module.fail_json(msg="names must be plain package names without versions; got %s." % ", ".join(repr(name) for name in bad))
        installed = self.installed(names) if names else set()
        if self.params["state"] == "present":
            todo = [name for name in names if name not in installed]
        else:
            todo = [name for name in names if name in installed]
        result = {"changed": bool(todo), "changed_packages": todo, "installed": [name for name in names if name in installed]}
        if self.module._diff and todo:
            before = sorted(installed)
            after = sorted(set(before) | set(todo)) if self.params["state"] == "present" else sorted(set(before) - set(todo))
            result["diff"] = {"before": "\n".join(before) + "\n", "after": "\n".join(after) + "\n"}
        if todo and not self.module.check_mode:
            if self.params["state"] == "present":
                self.install(todo)
            else:
                self.remove(todo)
        self.module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            names=dict(type="list", elements="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            cache_valid_time=dict(type="int", default=86400),
            install_recommends=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    DebPackages(module).run()


if __name__ == "__main__":
    main()
