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

import base64
import errno
import os
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.homelab.core.plugins.module_utils import _no_follow
from ansible_collections.homelab.core.plugins.module_utils._no_follow import writable_by_others


_DIR_FLAGS = _no_follow.DIR_FLAGS
# Never follows a final link, never waits on a named pipe, never becomes a controlling terminal.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_KIND_TEXT = {
    stat.S_IFDIR: "a directory",
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


class Refused(Exception):
    """A path that is there but is not read; the text says why."""


def kind_text(mode):
    return _KIND_TEXT.get(stat.S_IFMT(mode), "a special file")


# How each way another user can have planted a link reads in a message.
_UNSAFE_TEXT = {
    "owner": "in a directory that belongs to uid %d",
    "writable": "in a directory that its group or others can write",
    "link_owner": "owned by uid %d, in a directory that others can write",
}


def unsafe_directory(parent_st, link_st):
    """Why a symbolic link ``link_st`` in the directory ``parent_st`` may have been planted by another user than root
    (or the user the module runs as), or None."""
    found = writable_by_others(parent_st.st_uid, parent_st.st_mode, link_st.st_uid, (0, os.geteuid()))
    if found is None:
        return None
    kind, uid = found
    return _UNSAFE_TEXT[kind] % uid if uid is not None else _UNSAFE_TEXT[kind]


def open_dir(path):
    """Open the directory ``path`` one component at a time; return its descriptor.

    A symbolic link on the way is followed only where ``unsafe_directory`` finds nothing against it; otherwise Refused
    is raised naming it. FileNotFoundError or NotADirectoryError means that a component is missing or no directory.
    """
    def judge(_logical, actual, _own, parent_st, link_st):
        reason = unsafe_directory(parent_st, link_st)
        return (actual, reason) if reason else None

    try:
        return _no_follow.open_dir(path, judge)
    except _no_follow.PlantedLink as exc:
        raise Refused("%s is a symbolic link to %s %s, which is not followed since a container can plant one"
                      % (exc.path, exc.target, exc.reason)) from None


def split(path):
    """The directory and the name of ``path``, made absolute and normal."""
    path = os.path.normpath(os.path.abspath(path))
    return os.path.dirname(path), os.path.basename(path) or "."


def read_file(path, max_size):
    """The content of the regular file at ``path``; FileNotFoundError when it is not there, Refused when it is not a
    regular file of at most ``max_size`` bytes."""
    directory, name = split(path)
    dir_fd = open_dir(directory)
    try:
        st = os.lstat(name, dir_fd=dir_fd)
        if stat.S_ISLNK(st.st_mode):
            raise Refused("it is a symbolic link to %s, which is not followed since a container can plant one; only "
                          "regular files are read" % os.readlink(name, dir_fd=dir_fd))
        if not stat.S_ISREG(st.st_mode):
            # Not even opened: opening a named pipe can block and opening a device can do something.
            raise Refused("it is %s, not a regular file" % kind_text(st.st_mode))
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise Refused("it became a symbolic link while it was read, which is not followed") from None
            raise
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise Refused("it is %s, not a regular file" % kind_text(st.st_mode))
            if st.st_size > max_size:
                raise Refused("it is %d bytes, more than max_size (%d bytes)" % (st.st_size, max_size))
            data = handle.read(max_size + 1)
            if len(data) > max_size:
                raise Refused("it holds more than max_size (%d bytes)" % max_size)
            return data
    finally:
        os.close(dir_fd)


def read_all(paths, max_size):
    """Return (contents, missing, unreadable) for ``paths``: base64 text by path, the paths that do not exist, and
    the reason by path for those that exist but cannot be read."""
    contents, missing, unreadable = {}, [], {}
    for path in dict.fromkeys(paths):
        try:
            contents[path] = base64.b64encode(read_file(path, max_size)).decode("ascii")
        except FileNotFoundError:
            missing.append(path)
        except (OSError, Refused) as exc:
            unreadable[path] = str(exc)
    return contents, missing, unreadable


def holds_anything(path):
    """Whether the directory ``path`` holds anything; a path that is there but is no directory (a link), or that is
    below a link that is not followed or below a non-directory, counts, unfollowed. FileNotFoundError when nothing
    is there."""
    directory, name = split(path)
    try:
        dir_fd = open_dir(directory)
    except (Refused, NotADirectoryError):
        return True
    try:
        if not stat.S_ISDIR(os.lstat(name, dir_fd=dir_fd).st_mode):
            return True
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                return True  # replaced by a link or a file since the lstat
            raise
        try:
            with os.scandir(fd) as entries:
                return next(entries, None) is not None
        finally:
            os.close(fd)
    finally:
        os.close(dir_fd)


def nonempty(dirs):
    """Return (found, unreadable): the paths of ``dirs`` that hold anything, and the reason by path for those that
    cannot be looked into."""
    found, unreadable = [], {}
    for path in dict.fromkeys(dirs):
        try:
            if holds_anything(path):
                found.append(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            unreadable[path] = str(exc)
    return found, unreadable


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
