# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading root-owned files and directories without following a link a container may have planted.

Shared by the modules that read a stack's secrets (read_files, compose_deployed): each regular file
is opened relative to its directory, that directory reached one component at a time, and a link is
followed only where no other user than root could have planted it.
"""

from __future__ import annotations

import base64
import errno
import os
import stat

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
