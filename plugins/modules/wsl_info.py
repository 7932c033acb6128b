#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: wsl_info
short_description: Tell whether a host is a WSL distribution, and what stops the homelab from running in it
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - Reads the kernel release (C(/proc/sys/kernel/osrelease)), C(/proc/version), PID 1's name, C(/etc/wsl.conf), the
    environment variables C(WSL_DISTRO_NAME) and C(WSL_INTEROP), and looks (without following links) at the WSL
    interop binfmt_misc entries, C(/run/systemd/system), C(/sbin/init), C(/dev/dxg), C(/usr/lib/wsl/lib) and the places
    where a Linux NVIDIA driver package puts C(libcuda.so.1), C(/usr/bin/docker) and
    C(/mnt/wsl/docker-desktop/cli-tools/usr/bin/docker) (Docker Desktop's WSL integration).
  - Tells WSL1 (a kernel release with an upper-case C(Microsoft), such as C(4.4.0-19041-Microsoft)) from WSL2
    (C(-microsoft-standard-WSL2)), and parses C(/etc/wsl.conf) the way WSL's init does.
  - Every problem is returned in RV(problems), one sentence that names the fix. Problems of kind V(prerequisite) (WSL1,
    systemd off, a Linux NVIDIA driver inside the distribution) stop the homelab; problems of kind V(gpu) (no
    C(/dev/dxg), no NVIDIA driver on Windows) matter only when a GPU is wanted. The module never fails on a problem.
  - With O(docker_engine), a Docker engine that cannot work in this WSL2 distribution is a problem of kind V(prerequisite)
    too (V(docker_desktop_conflict), V(docker_desktop_missing)).
  - Reads nothing else and changes nothing. On a host that is not WSL it returns RV(wsl.wsl=false) and no problems.
attributes:
  check_mode:
    support: full
    description: Reads the same markers in check mode.
  diff_mode:
    support: none
    description: A probe; it has nothing to show as a diff.
  idempotent:
    support: full
    description: A probe, the same answer on every run of an unchanged host.
options:
  docker_engine:
    description:
      - The Docker engine chosen for a WSL2 distribution (C(docker_wsl_engine) of role C(homelab.core.docker)).
      - V(native) (Docker Engine installed in the distribution) is a problem when Docker Desktop's WSL integration is on
        here, since both would serve C(/var/run/docker.sock); V(desktop) is a problem when Docker Desktop's docker CLI is
        not in the distribution. Not read on a host that is not WSL2.
    type: str
    choices: [native, desktop]
    default: native
  root:
    description:
      - B(For tests only.) Read every path under this directory instead of C(/), for example
        C(<root>/proc/sys/kernel/osrelease), so that a test can give a container a stand-in WSL host (a container cannot
        have files of its own in C(/proc)). The environment variables are still the module's own.
      - Leave it at C(/) on real hosts.
    type: path
    default: /
"""

EXAMPLES = r"""
- name: Look at WSL
  homelab.core.wsl_info:
  register: wsl

- name: Look at WSL, with Docker Desktop's engine chosen
  homelab.core.wsl_info:
    docker_engine: desktop
  register: wsl

- name: Refuse a WSL distribution that cannot run the homelab
  ansible.builtin.fail:
    msg: "{{ wsl.problems | selectattr('kind', 'eq', 'prerequisite') | map(attribute='msg') | join(' ') }}"
  when: wsl.problems | selectattr('kind', 'eq', 'prerequisite') | list | length > 0
"""

RETURN = r"""
wsl:
  description: What was found.
  returned: always
  type: dict
  contains:
    wsl:
      description: Whether this is a WSL distribution.
      type: bool
    version:
      description: V(1) or V(2); null when not WSL.
      type: int
    distro:
      description: The distribution's name from C(WSL_DISTRO_NAME); null when the module's environment lacks it (C(sudo)
        drops it unless kept).
      type: str
    kernel_release:
      description: The kernel release.
      type: str
    kernel_version:
      description: The content of C(/proc/version).
      type: str
    evidence:
      description: What made the module decide it is WSL.
      type: list
      elements: str
    interop_binfmt:
      description: The WSL interop binfmt_misc entries present (C(WSLInterop), C(WSLInterop-late)).
      type: list
      elements: str
    systemd:
      description: Whether systemd is PID 1.
      type: bool
    pid1:
      description: The name of PID 1 (C(systemd), or WSL's C(init)).
      type: str
    wsl_conf_present:
      description: Whether C(/etc/wsl.conf) exists.
      type: bool
    wsl_conf:
      description: C(boot.systemd), C(gpu.enabled) and C(interop.enabled) as WSL reads them (its defaults when unset), and
        C(user.default) when set.
      type: dict
    wsl_conf_warnings:
      description: Lines of C(/etc/wsl.conf) that WSL warns about or stops at.
      type: list
      elements: str
    gpu_paravirtualized:
      description: Whether Windows shares a GPU with this WSL2 distribution (C(/dev/dxg) exists).
      type: bool
    nvidia_smi:
      description: C(/usr/lib/wsl/lib/nvidia-smi) when the Windows NVIDIA driver provides it, else null.
      type: str
    nvidia_libcuda:
      description: C(/usr/lib/wsl/lib/libcuda.so.1) when the Windows NVIDIA driver provides it, else null.
      type: str
    linux_driver_files:
      description: C(libcuda.so.1) files of a Linux NVIDIA driver package inside the distribution.
      type: list
      elements: str
    cdi_mode:
      description: V(wsl) when the CDI spec must be generated in WSL mode (C(nvidia-ctk cdi generate --mode=wsl)), else
        null.
      type: str
    docker_desktop_integration:
      description: Whether Docker Desktop's WSL integration is on in this distribution (C(/usr/bin/docker) links into
        C(/mnt/wsl/docker-desktop/)).
      type: bool
    docker_desktop_cli:
      description: Where Docker Desktop's C(/usr/bin/docker) link points; null without the integration.
      type: str
    docker_desktop_cli_present:
      description: Whether that link's target exists, that is Docker Desktop runs and shares its CLI tools.
      type: bool
  sample:
    wsl: true
    version: 2
    distro: Ubuntu-24.04
    kernel_release: 6.6.87.2-microsoft-standard-WSL2
    systemd: true
    gpu_paravirtualized: true
    cdi_mode: wsl
    docker_desktop_integration: false
problems:
  description: Every problem found, each one sentence that names the fix.
  returned: always
  type: list
  elements: dict
  contains:
    code:
      description: V(wsl1), V(systemd_off), V(linux_driver_inside_wsl), V(docker_desktop_conflict),
        V(docker_desktop_missing), V(no_dxg) or V(no_wsl_nvidia_driver).
      type: str
    kind:
      description: V(prerequisite) (refuse the run) or V(gpu) (only when a GPU is wanted).
      type: str
    msg:
      description: The problem and its fix.
      type: str
summary:
  description: One line for the run's summary.
  returned: always
  type: str
  sample: WSL2, distribution Ubuntu-24.04, kernel 6.6.87.2-microsoft-standard-WSL2, systemd on, GPU shared from Windows (/dev/dxg)
"""

import os
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.core.plugins.module_utils import _wsl

# Never follows a final link, never waits on a named pipe, never becomes a controlling terminal.
_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_KINDS = {stat.S_IFREG: "file", stat.S_IFDIR: "dir", stat.S_IFCHR: "char", stat.S_IFBLK: "block",
          stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket"}


def read_text(path, limit):
    """The text of the regular file ``path`` (at most ``limit`` bytes), or None when it is missing or no regular file."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        size = 0
        while size < limit:
            chunk = os.read(fd, limit - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def kind_of(path):
    """What is at ``path``, looked at with lstat: ``file``, ``dir``, ``char``, ..., ``link:<target>``, or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        try:
            return "link:" + os.readlink(path)
        except OSError:
            return "link:"
    return _KINDS.get(stat.S_IFMT(st.st_mode), "other")


def under(root, path):
    """``path`` (absolute) read under ``root``: the path itself when ``root`` is ``/``."""
    return os.path.join(root, path.lstrip("/"))


def probe(root="/"):
    """What the paths of ``_wsl.paths_to_read()`` hold under ``root``, keyed by their own (absolute) names."""
    wanted = _wsl.paths_to_read()
    return {
        "contents": {path: read_text(under(root, path), _wsl.MAX_CONF_SIZE) for path in wanted["contents"]},
        "exists": {path: kind_of(under(root, path)) for path in wanted["exists"]},
        "environment": {name: os.environ.get(name) for name in wanted["environment"]},
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "docker_engine": {"type": "str", "choices": list(_wsl.DOCKER_ENGINES), "default": "native"},
            "root": {"type": "path", "default": "/"},
        },
        supports_check_mode=True,
    )
    root = module.params["root"]
    if not os.path.isabs(root):
        module.fail_json(msg="root must be an absolute path (it is for tests only; leave it at /), got %s." % root)
    facts, problems = _wsl.detect(probe(root))
    # The refusals first, as detect() orders them.
    problems = sorted(problems + _wsl.docker_engine_problems(facts, module.params["docker_engine"]),
                      key=lambda problem: problem["kind"] != "prerequisite")
    module.exit_json(changed=False, wsl=facts, problems=problems, summary=_wsl.summary(facts))


if __name__ == "__main__":
    main()
