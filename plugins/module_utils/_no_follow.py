# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Open a directory one component at a time, never following a symbolic link that a container may have planted.

The data tree is bind-mounted into containers, so a container can replace a directory of its tree
with a link (``data/coolify/ssh/mux`` to ``/etc``). Root tooling opens paths with ``O_NOFOLLOW`` at
every component, through ``dir_fd``, so that a link is followed only after the caller has judged it,
and a link swapped in after that judgement is still not followed.
"""

from __future__ import annotations

import errno
import os
import stat

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_LINKS = 40


class PlantedLink(Exception):
    """A symbolic link on the way that is not followed: ``path`` (as the caller names it), its ``target`` and why."""

    def __init__(self, path, target, reason):
        super().__init__("%s is a symbolic link to %s (%s)" % (path, target, reason))
        self.path, self.target, self.reason = path, target, reason


def writable_by_others(parent_uid, parent_mode, link_uid, trusted_uids):
    """How another user than ``trusted_uids`` can have planted a link owned by ``link_uid`` in a directory owned by
    ``parent_uid`` with ``parent_mode``, or None: ``("owner", uid)`` of the directory, ``("writable", None)`` by its
    group or others without the sticky bit, or ``("link_owner", uid)`` of the link in a sticky directory that others
    can write."""
    if parent_uid not in trusted_uids:
        return "owner", parent_uid
    if parent_mode & (stat.S_IWGRP | stat.S_IWOTH):
        if not parent_mode & stat.S_ISVTX:
            return "writable", None
        if link_uid not in trusted_uids:
            return "link_owner", link_uid
    return None


def open_dir(path, judge):
    """The descriptor of the directory ``path``, opened from ``/`` one component at a time.

    At a symbolic link, ``judge(logical, actual, own, parent_st, link_st)`` decides: ``logical`` is ``path`` walked so
    far, ``actual`` the link's own path (they differ below a link already followed), ``own`` whether the component is
    one of ``path``'s rather than of a link's target. It returns None to follow the link, or ``(name, reason)`` to
    raise PlantedLink. FileNotFoundError or NotADirectoryError means that a component is missing or no directory.
    """
    fd = os.open("/", DIR_FLAGS)
    try:
        logical = where = "/"
        pending = [(name, True) for name in reversed(path.split("/")) if name]
        links = 0
        while pending:
            name, own = pending.pop()
            if own:
                logical = os.path.join(logical, name)
            if name == ".":
                continue
            if name == "..":
                step = os.open("..", DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd, where = step, os.path.dirname(where)
                continue
            child = os.path.join(where, name)
            try:
                step = os.open(name, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                link_st = os.lstat(name, dir_fd=fd)
                if not stat.S_ISLNK(link_st.st_mode):
                    raise
                target = os.readlink(name, dir_fd=fd)
                refused = judge(logical, child, own, os.fstat(fd), link_st)
                if refused:
                    raise PlantedLink(refused[0], target, refused[1]) from None
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path) from None
                if target.startswith("/"):
                    step = os.open("/", DIR_FLAGS)
                    os.close(fd)
                    fd, where = step, "/"
                pending.extend((part, False) for part in reversed(target.split("/")) if part)
                continue
            os.close(fd)
            fd, where = step, child
        return fd
    except BaseException:
        os.close(fd)
        raise
