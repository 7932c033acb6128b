# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A root-only JSON state file of a module (n8n_wiring's keys and session, the Open-WebUI modules' session), read
and written without following a planted link: written to a new 0600 file beside it, then renamed over it.

Private to homelab.core.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import stat

from ansible_collections.homelab.core.plugins.module_utils import _safe_read

# The largest state file read.
STATE_LIMIT = 1 << 20
# A new file only (the temporary one), never through a link.
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class StateFile:
    """The root-only JSON state, read and written without following a planted link."""

    def __init__(self, path, limit=STATE_LIMIT):
        self.path = path
        self.limit = limit

    def read(self):
        try:
            data = json.loads(_safe_read.read_file(self.path, self.limit).decode("utf-8"))
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def write(self, data):
        directory, name = _safe_read.split(self.path)
        text = (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")
        dir_fd = _safe_read.open_dir(directory)
        try:
            try:
                st = os.lstat(name, dir_fd=dir_fd)
            except FileNotFoundError:
                st = None
            if st is not None and not stat.S_ISREG(st.st_mode):
                raise _safe_read.Refused("it is %s, which is not replaced" % _safe_read.kind_text(st.st_mode))
            tmp = ".%s.%s.tmp" % (name, secrets.token_hex(6))
            fd = os.open(tmp, _WRITE_FLAGS, 0o600, dir_fd=dir_fd)
            try:
                with os.fdopen(fd, "wb") as handle:
                    os.fchmod(handle.fileno(), 0o600)
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=dir_fd)
                except OSError as exc:
                    if exc.errno != errno.ENOENT:
                        raise
                raise
        finally:
            os.close(dir_fd)
