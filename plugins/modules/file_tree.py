#!/usr/bin/python
#
# Copyright (c) 2025, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: file_tree

short_description: Converge a declared tree of directories, files and symbolic links in one task

version_added: 1.0.0

author:
  - homelab.core maintainers (@homelab-core)

description:
  - Brings every path listed in O(entries) to its declared state in one module run, instead of one
    M(ansible.builtin.file) or M(ansible.builtin.copy) task per path.
  - Entries are processed in order, so a directory listed earlier exists before the entries below it. Directories are not
    created recursively; the parent of every path must exist or be created by an earlier entry.
  - Nothing is ever clobbered. A path that holds something of another kind than declared makes the task fail, a
    non-empty directory is never removed, and owner, group and mode are never applied through a symbolic link that
    O(entries[].state=link) manages.
  - Symbolic links that a container could have planted are never followed, since the data tree is bind-mounted into
    containers that may run as any user. The task fails, naming the link and its target, on a symbolic link at the path
    of a O(entries[].state=directory) entry, and on one met on the way to any entry that is at or below the path of a
    O(entries[].state=directory) entry of the same task, or that is in a directory another user than root (or than the
    user the module runs as) owns, or that its group or others can write without the sticky bit. Other links on the
    way, such as a system path that root made a link, are followed.
  - Paths are opened one directory at a time without following symbolic links, and owner, group and mode are set on
    the opened directory or file, so that a link swapped in after a check is not followed either.
  - Files are only rewritten when their content differs. They are written to a temporary file in the same directory,
    which gets its final owner, group and mode, is synced to disk, optionally validated with O(entries[].validate), and
    then renamed over the old file.
  - Owner, group and mode are compared separately and fixed in place when only they differ.
  - All options are checked before any path is changed. When a path cannot be brought to its state, the task fails
    naming it; the entries before it have already been applied and are reported in the result.

attributes:
  check_mode:
    support: full
    description:
      - Changes nothing and reports the same paths as a real run would change, including the children of directories
        that do not exist yet, which are all reported as created.
  diff_mode:
    support: full
    description:
      - Returns one diff per changed path, with its state, owner, group and mode before and after, and the content of
        files whose content changes. Content given with O(entries[].secret_content) is never shown.
  idempotent:
    support: full
    description: A second run with the same entries reports no change and touches nothing.

options:
  entries:
    description:
      - The paths to converge, in the order they are processed.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description:
          - Absolute path of the directory, file or link.
          - A relative path makes the task fail.
        type: path
        required: true
      state:
        description:
          - V(directory) creates the directory when it is missing (its parent must exist) and fixes its owner, group and
            mode. Its content is never touched. A symbolic link at the path makes the task fail and is left as it is;
            replace it with a real directory (a bind mount puts the data on another disk).
          - V(file) writes a regular file with O(entries[].content) or O(entries[].secret_content), exactly as given.
          - V(link) makes the path a symbolic link to O(entries[].src); an existing link to another target is replaced,
            anything else at the path makes the task fail, unless O(entries[].keep_other) is set.
          - V(absent) removes a file, a symbolic link (never its target) or an empty directory. A non-empty directory makes
            the task fail.
        type: str
        choices: [directory, file, link, absent]
        default: file
      owner:
        description:
          - Name or numeric uid of the user that owns the directory or file. A string of digits is a uid.
          - When not set, an existing path keeps its owner and a new one is owned by the user the module runs as.
          - Ignored for O(entries[].state=link) and O(entries[].state=absent).
        type: str
      group:
        description:
          - Name or numeric gid of the group of the directory or file. A string of digits is a gid.
          - When not set, an existing path keeps its group and a new one gets the group the system gives it.
          - Ignored for O(entries[].state=link) and O(entries[].state=absent).
        type: str
      mode:
        description:
          - Permissions of the directory or file, as an octal string such as V('0644') or V('2775'), or as a number.
          - Applied exactly as given; the umask does not apply.
          - When not set, an existing path keeps its mode; a new directory gets V(0777) and a new file V(0666), both less
            the umask, except that a new file written with O(entries[].secret_content) gets V(0600).
          - Ignored for O(entries[].state=link) and O(entries[].state=absent).
        type: raw
      content:
        description:
          - Content of the file, written exactly as given (no newline is added).
          - For O(entries[].state=file) exactly one of O(entries[].content) and O(entries[].secret_content) is required.
        type: str
      secret_content:
        description:
          - Content of the file, like O(entries[].content), but never shown in a diff or returned in the result.
        type: str
      src:
        description:
          - Target of the symbolic link, stored as given (a relative target is relative to the link's directory).
          - Required for O(entries[].state=link), and only allowed there.
        type: str
      keep_other:
        description:
          - For O(entries[].state=link), leave a path that exists and is not a symbolic link as it is, reported
            unchanged, instead of failing the task. For a link where a user may have put a directory of their own.
            RV(kept_paths) lists each path so kept, so the caller can warn about it.
          - Only allowed for O(entries[].state=link).
        type: bool
        default: false
      owner_service:
        description:
          - The service that the path belongs to, for example a compose service; free-form.
          - Returned unchanged in RV(entries[].owner_service), so the caller can tell which services own the changed
            paths.
        type: str
      validate:
        description:
          - Command that checks a new file before it replaces O(entries[].path), like the
            O(ansible.builtin.template#module:validate) option.
          - It must contain C(%s), which is replaced by the path of the temporary file.
          - It is split into arguments like a shell would, but is not run through a shell.
          - When it exits non-zero the task fails with its error output and the file is left unchanged.
          - Only run when the file is written, so not in check mode and not when only owner, group or mode change.
          - Only allowed for O(entries[].state=file).
        type: str

notes:
  - A symbolic link at the path of a O(entries[].state=file) entry makes the task fail instead of being followed or
    replaced.
  - A symbolic link where a directory is expected fails the task with a message such as C(/opt/homelab/data/app/cache
    is a symbolic link to /etc; homelab.core does not follow links inside the data tree that a container can plant
    ...). Replace the link with a real directory; to keep the data on another disk, bind-mount that disk's directory
    there (an C(/etc/fstab) line with the C(bind) option).
  - The old content of a file is only read when it is at most 1 MiB or the size of the new content; a larger file is
    rewritten, and its diff shows only its size.
"""

EXAMPLES = r"""
- name: Write the tree of the media stack
  homelab.core.file_tree:
    entries:
      - path: /srv/stacks/media
        state: directory
        mode: "0755"
      - path: /srv/stacks/media/data
        state: directory
      - path: /srv/stacks/media/data/jellyfin
        state: directory
        owner: "1000"
        group: "1000"
        mode: "0700"
        owner_service: jellyfin
      - path: /srv/stacks/media/.env
        content: "TZ=Europe/Berlin\n"
        mode: "0644"
      - path: /srv/stacks/media/secrets/api_key
        secret_content: "{{ media_api_key }}"
        owner: root
        mode: "0600"
        owner_service: jellyfin
      - path: /srv/stacks/media/compose.yaml
        content: "{{ lookup('ansible.builtin.template', 'compose.yaml.j2') }}"
        validate: docker compose -f %s config --quiet
      - path: /srv/stacks/media/current
        state: link
        src: compose.yaml
      - path: /srv/stacks/media/old.env
        state: absent
  register: media_tree

- name: Restart the services whose data directory was recreated
  ansible.builtin.command:
    cmd: docker compose --project-directory /srv/stacks/media restart {{ item }}
  loop: >-
    {{ media_tree.entries | selectattr('created') | selectattr('owner_service') | map(attribute='owner_service') | unique }}
  changed_when: true
"""

RETURN = r"""
changed:
  description: Whether any path changed (in check mode, would change).
  returned: always
  type: bool
  sample: true
changed_paths:
  description: The paths that changed (in check mode, would change), in the order of O(entries), each listed once.
  returned: always
  type: list
  elements: str
  sample: [/srv/stacks/media/data/jellyfin, /srv/stacks/media/.env]
created_paths:
  description: The paths of RV(changed_paths) that did not exist before, in the same order.
  returned: always
  type: list
  elements: str
  sample: [/srv/stacks/media/data/jellyfin]
kept_paths:
  description:
    - The paths of O(entries[].state=link) entries with O(entries[].keep_other) that exist and are not symbolic links,
      so were left as they are, in the order of O(entries), each listed once.
  returned: always
  type: list
  elements: str
  sample: [/data/coolify]
entries:
  description:
    - One item per entry of O(entries) that was processed, in the same order.
    - When the task fails on an entry, the entries before it.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The absolute path.
      type: str
      sample: /srv/stacks/media/data/jellyfin
    owner_service:
      description: O(entries[].owner_service) as given, or V(null).
      type: str
      sample: jellyfin
    state:
      description: O(entries[].state).
      type: str
      sample: directory
    changed:
      description: Whether the path changed.
      type: bool
      sample: true
    created:
      description: Whether the path did not exist before and was created.
      type: bool
      sample: true
    changes:
      description:
        - What changed, sorted. V(state) when the path was created or removed, V(content) for a rewritten file, V(src)
          for a link that was pointed at another target, and V(owner), V(group) and V(mode) when only they were fixed.
        - Empty when nothing changed.
      type: list
      elements: str
      sample: [content, mode, owner]
diff:
  description:
    - One diff per changed path, describing it before and after.
    - The content of a file is shown only when it changes, and never for O(entries[].secret_content).
  returned: in diff mode
  type: list
  elements: dict
  sample:
    - before_header: /srv/stacks/media/data/jellyfin
      after_header: /srv/stacks/media/data/jellyfin
      before: "state: absent\n"
      after: "state: directory\nowner: 1000\ngroup: 1000\nmode: 0700\n"
"""

import contextlib
import errno
import os
import pwd
import grp
import re
import shlex
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.parameters import remove_values
from ansible_collections.homelab.core.plugins.module_utils import _no_follow
from ansible_collections.homelab.core.plugins.module_utils._no_follow import writable_by_others


_MODE_RE = re.compile(r"^(?:0o)?([0-7]{1,4})$")
_KINDS = {stat.S_IFDIR: "directory", stat.S_IFREG: "file", stat.S_IFLNK: "link"}
_KIND_TEXT = {"directory": "a directory", "file": "a regular file", "link": "a symbolic link", "other": "a special file"}
# Directories are opened one component at a time with these flags, so that no symbolic link is followed unchecked.
_DIR_FLAGS = _no_follow.DIR_FLAGS
# How each way another user can have planted a link reads in a message.
_UNSAFE_TEXT = {
    "owner": "its directory belongs to uid %d",
    "writable": "its directory can be written by its group or by others",
    "link_owner": "it belongs to uid %d, in a directory that others can write",
}
# A file is opened without following a link, and without waiting on a named pipe or becoming a controlling terminal.
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
# Old content larger than this (and than the new content) is not read: it differs, and only its size is shown.
_READ_LIMIT = 1 << 20


class Node:
    """What a path holds: on disk, or (in check mode) as an earlier entry would leave it."""

    def __init__(self, kind, uid=None, gid=None, mode=None, target=None, content=None, fresh=False):
        self.kind = kind
        self.uid = uid
        self.gid = gid
        self.mode = mode
        self.target = target
        self.content = content
        # Created or replaced by this run in check mode: nothing below it exists on disk.
        self.fresh = fresh

    @classmethod
    def from_stat(cls, st, target=None):
        return cls(_KINDS.get(stat.S_IFMT(st.st_mode), "other"), st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), target)


class Oversized:
    """The old content of a file too large to read: it differs from any new content, and is shown by its size only."""

    def __init__(self, size):
        self.size = size


class Entry:
    def __init__(self, index, params):
        self.index = index
        self.path = params["path"]
        self.state = params["state"]
        self.owner_service = params["owner_service"]
        self.content = params["content"]
        self.secret_content = params["secret_content"]
        self.src = params["src"]
        self.keep_other = params["keep_other"]
        self.validate = params["validate"]
        self.owner = params["owner"]
        self.group = params["group"]
        self.raw_mode = params["mode"]
        self.uid = self.gid = self.mode = None
        self.secret = self.secret_content is not None
        text = self.secret_content if self.secret else self.content
        self.data = None if text is None else text.encode("utf-8", "surrogateescape")

    @property
    def name(self):
        return "entries[%d]" % self.index


def parse_mode(value):
    """Return the permission bits of O(entries[].mode); raise ValueError when it is not a mode."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        mode = value
    else:
        match = _MODE_RE.match(str(value).strip())
        if not match:
            raise ValueError
        mode = int(match.group(1), 8)
    if not 0 <= mode <= 0o7777:
        raise ValueError
    return mode


def resolve_id(value, lookup, what):
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        return lookup(value)
    except KeyError:
        raise ValueError("there is no %s named %r on the host" % (what, value)) from None


def current_umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def describe(node):
    """Readable text of what a path holds, for a diff."""
    if node is None:
        return "state: absent\n"
    lines = ["state: %s" % node.kind]
    if node.kind == "link":
        lines.append("src: %s" % node.target)
    else:
        lines.extend(["owner: %d" % node.uid, "group: %d" % node.gid, "mode: %04o" % node.mode])
    return "\n".join(lines) + "\n"


class FileTree:
    def __init__(self, module):
        self.module = module
        self.check_mode = module.check_mode
        self.overlay = {}  # check mode only: path -> Node or None (absent), as earlier entries leave it
        self.results = []
        self.diffs = []
        self.changed_paths = []
        self.created_paths = []
        self.kept_paths = []  # keep_other links that found something else at their path
        self.umask = current_umask()
        self.euid = os.geteuid()
        self.egid = os.getegid()
        # Users whose symbolic links may be followed: a link of theirs was not planted by a container.
        self.trusted_uids = {0, self.euid}
        self.entries = [Entry(index, params) for index, params in enumerate(module.params["entries"])]
        for entry in self.entries:
            self.check_options(entry)
        # A symbolic link at or below one of these is never followed.
        self.managed_dirs = [entry.path for entry in self.entries if entry.state == "directory"]
        self.current = None  # the entry being processed, named when a link is refused

    # --- results and failures -------------------------------------------------------------------------------------

    def result(self):
        return dict(
            changed=bool(self.changed_paths),
            changed_paths=list(self.changed_paths),
            created_paths=list(self.created_paths),
            kept_paths=list(self.kept_paths),
            entries=list(self.results),
        )

    def fail(self, msg, **kwargs):
        """Fail with the entries applied so far; secret values are masked even in a validator's output."""
        result = self.result()
        result.update(kwargs)
        result = remove_values(result, self.module.no_log_values)
        self.module.fail_json(msg=remove_values(msg, self.module.no_log_values), **result)

    def os_error(self, entry, action, exc):
        self.fail("Could not %s %s: %s." % (action, entry.path, exc.strerror or exc))

    # --- option checks, all done before any change ----------------------------------------------------------------

    def check_options(self, entry):
        name = entry.name
        if not os.path.isabs(entry.path):
            self.fail("%s.path must be an absolute path, got %r." % (name, entry.path))
        entry.path = os.path.normpath(entry.path)
        if entry.path.startswith("//"):
            entry.path = "/" + entry.path.lstrip("/")
        if entry.state == "file":
            if (entry.content is None) == (entry.secret_content is None):
                self.fail("%s (%s) needs exactly one of content and secret_content for state=file." % (name, entry.path))
        else:
            for option in ("content", "secret_content", "validate"):
                if getattr(entry, option) is not None:
                    self.fail("%s (%s) sets %s, which only applies to state=file, not state=%s."
                              % (name, entry.path, option, entry.state))
        if entry.state == "link":
            if not entry.src:
                self.fail("%s (%s) needs src for state=link." % (name, entry.path))
        else:
            for option, value in (("src", entry.src is not None), ("keep_other", entry.keep_other)):
                if value:
                    self.fail("%s (%s) sets %s, which only applies to state=link, not state=%s."
                              % (name, entry.path, option, entry.state))
        if entry.validate is not None and "%s" not in entry.validate:
            self.fail("%s (%s) validate must contain %%s, got %r." % (name, entry.path, entry.validate))
        if entry.state in ("link", "absent"):
            return
        if entry.raw_mode is not None:
            try:
                entry.mode = parse_mode(entry.raw_mode)
            except ValueError:
                self.fail("%s (%s) mode must be an octal string such as '0644' or a number, got %r."
                          % (name, entry.path, entry.raw_mode))
        try:
            if entry.owner is not None:
                entry.uid = resolve_id(entry.owner, lambda value: pwd.getpwnam(value).pw_uid, "user")
            if entry.group is not None:
                entry.gid = resolve_id(entry.group, lambda value: grp.getgrnam(value).gr_gid, "group")
        except ValueError as exc:
            self.fail("%s (%s): %s." % (name, entry.path, exc))

    # --- symbolic links that a container could have planted -------------------------------------------------------

    def managing(self, path):
        """The directory entry of this task that ``path`` is or lies below, or None."""
        for top in self.managed_dirs:
            if path == top or path.startswith(top.rstrip("/") + "/"):
                return top
        return None

    def unsafe_directory(self, parent_uid, parent_mode, link_uid):
        """Why a symbolic link owned by ``link_uid``, in a directory owned by ``parent_uid`` with ``parent_mode``, may
        have been planted by another user than root, or None."""
        found = writable_by_others(parent_uid, parent_mode, link_uid, self.trusted_uids)
        if found is None:
            return None
        kind, uid = found
        return _UNSAFE_TEXT[kind] % uid if uid is not None else _UNSAFE_TEXT[kind]

    def planted(self, link, target, reason):
        """Fail on the symbolic link ``link`` that is not followed because of ``reason``."""
        entry = self.current
        where = "it was left unchanged" if entry is None or entry.path == link else "%s was left unchanged" % entry.path
        self.fail("%s is a symbolic link to %s; homelab.core does not follow links inside the data tree that a container "
                  "can plant (%s); replace it with a real directory (a bind mount works for putting data on another "
                  "disk), %s." % (link, target, reason, where))

    def managed_reason(self, path):
        """Why a symbolic link at ``path`` is not followed because of the directory entries of this task, or None."""
        top = self.managing(path)
        if top == path:
            return "it is a directory entry of this task"
        if top is not None:
            return "it is below the directory entry %s of this task" % top
        return None

    def link_reason(self, path, parent_st, link_st):
        """Why the symbolic link at ``path`` is not followed, or None when it may be."""
        return self.managed_reason(path) or self.unsafe_directory(parent_st.st_uid, parent_st.st_mode, link_st.st_uid)

    def open_dir(self, path):
        """Open the directory ``path`` one component at a time and return its descriptor.

        A symbolic link on the way is only followed when ``link_reason`` finds nothing against it; otherwise the task
        fails naming it. FileNotFoundError or NotADirectoryError means that a component is missing or no directory.
        """
        def judge(logical, actual, own, parent_st, link_st):
            # A link reached as ``logical`` (one of the path's own components) is judged by that name first.
            reason = self.link_reason(logical, parent_st, link_st) if own else None
            if reason:
                return logical, reason
            reason = self.link_reason(actual, parent_st, link_st)
            return (logical if own else actual, reason) if reason else None

        try:
            return _no_follow.open_dir(path, judge)
        except _no_follow.PlantedLink as exc:
            self.planted(exc.path, exc.target, exc.reason)

    @contextlib.contextmanager
    def parent_dir(self, path):
        """The descriptor of the directory of ``path``, opened by ``open_dir``, and the name of ``path`` in it."""
        fd = self.open_dir(os.path.dirname(path))
        try:
            yield fd, os.path.basename(path) or "."
        finally:
            os.close(fd)

    # --- what is at a path ----------------------------------------------------------------------------------------

    def lookup(self, path):
        """Return the Node at ``path`` (not following a final symbolic link), or None when nothing is there."""
        if self.check_mode:
            if path in self.overlay:
                return self.overlay[path]
            ancestor = path
            while ancestor != "/":
                ancestor = os.path.dirname(ancestor)
                if ancestor in self.overlay:
                    node = self.overlay[ancestor]
                    if node is None or node.fresh or node.kind != "directory":
                        return None
                    break
        try:
            with self.parent_dir(path) as (fd, name):
                st = os.lstat(name, dir_fd=fd)
                target = os.readlink(name, dir_fd=fd) if stat.S_ISLNK(st.st_mode) else None
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            self.fail("Could not inspect %s: %s." % (path, exc.strerror or exc))
        return Node.from_stat(st, target)

    def directory_node(self, path):
        """The Node of the directory that entries below ``path`` are written to, or None when there is none."""
        node = self.lookup(path)
        if node is None or node.kind in ("file", "other"):
            return None
        if node.kind == "directory":
            return node
        if node.fresh:
            # Check mode, a link that an earlier entry makes (owned by this user): refused where the real run's
            # open_dir will refuse it, else its target as it is now.
            parent = self.directory_node(os.path.dirname(path))
            reason = self.managed_reason(path)
            if not reason and parent is not None:
                reason = self.unsafe_directory(parent.uid, parent.mode, self.euid)
            if reason:
                self.planted(path, node.target, reason)
            try:
                st = os.stat(os.path.join(os.path.dirname(path), node.target))
            except OSError:
                return None
            return Node.from_stat(st) if stat.S_ISDIR(st.st_mode) else None
        # A link on disk: followed only where open_dir allows it, which fails the task naming it otherwise.
        try:
            fd = self.open_dir(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            self.fail("Could not inspect %s: %s." % (path, exc.strerror or exc))
        try:
            return Node.from_stat(os.fstat(fd))
        finally:
            os.close(fd)

    def require_parent(self, entry):
        parent = os.path.dirname(entry.path)
        if self.directory_node(parent) is None:
            self.fail("Cannot create %s because its parent directory %s does not exist; list the parent as an earlier "
                      "entry with state=directory." % (entry.path, parent))

    def children(self, path):
        names = set()
        node = self.overlay.get(path) if self.check_mode else None
        if node is None or not node.fresh:
            try:
                with self.parent_dir(path) as (parent_fd, name):
                    fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
                    try:
                        names.update(os.listdir(fd))
                    finally:
                        os.close(fd)
            except OSError as exc:
                self.fail("Could not list %s: %s." % (path, exc.strerror or exc))
        if self.check_mode:
            for other, other_node in self.overlay.items():
                if other != path and os.path.dirname(other) == path:
                    if other_node is None:
                        names.discard(os.path.basename(other))
                    else:
                        names.add(os.path.basename(other))
        return names

    def refuse(self, entry, node, remedy):
        self.fail("%s is %s, not %s; %s, it was left unchanged."
                  % (entry.path, _KIND_TEXT[node.kind], _KIND_TEXT.get(entry.state, entry.state), remedy))

    def new_node(self, entry, kind):
        """Predict the Node that a new directory or file gets."""
        if kind == "directory":
            default_mode = 0o777 & ~self.umask
        elif entry.secret:
            default_mode = 0o600
        else:
            default_mode = 0o666 & ~self.umask
        gid = self.egid
        parent_node = self.directory_node(os.path.dirname(entry.path))
        if parent_node is not None and parent_node.mode & stat.S_ISGID:
            gid = parent_node.gid
        return Node(kind, uid=self.euid if entry.uid is None else entry.uid,
                    gid=gid if entry.gid is None else entry.gid,
                    mode=default_mode if entry.mode is None else entry.mode, fresh=True)

    def attribute_changes(self, entry, node):
        changes = []
        if entry.uid is not None and node.uid != entry.uid:
            changes.append("owner")
        if entry.gid is not None and node.gid != entry.gid:
            changes.append("group")
        if entry.mode is not None and node.mode != entry.mode:
            changes.append("mode")
        return changes

    def with_attributes(self, entry, node):
        return Node(node.kind, node.uid if entry.uid is None else entry.uid, node.gid if entry.gid is None else entry.gid,
                    node.mode if entry.mode is None else entry.mode, node.target, node.content, node.fresh)

    @staticmethod
    def apply_attributes(entry, fd, changes):
        """Set the owner, group and mode of the open directory or file ``fd``; never through a link."""
        if "owner" in changes or "group" in changes:
            os.fchown(fd, -1 if entry.uid is None else entry.uid, -1 if entry.gid is None else entry.gid)
        if "mode" in changes or (changes and entry.mode is not None):
            # chown may clear setuid and setgid bits, so the mode is set after it.
            os.fchmod(fd, entry.mode)

    def set_attributes(self, entry, changes):
        """Fix the owner, group and mode of the directory or regular file at ``entry.path``, opened without following a
        symbolic link."""
        kind = "directory" if entry.state == "directory" else "file"
        try:
            with self.parent_dir(entry.path) as (parent_fd, name):
                fd = os.open(name, _DIR_FLAGS if kind == "directory" else _FILE_FLAGS, dir_fd=parent_fd)
                try:
                    if _KINDS.get(stat.S_IFMT(os.fstat(fd).st_mode)) != kind:
                        raise OSError(errno.EEXIST, "it is no longer %s" % _KIND_TEXT[kind])
                    self.apply_attributes(entry, fd, changes)
                finally:
                    os.close(fd)
        except OSError as exc:
            self.os_error(entry, "set the owner, group or mode of", exc)

    # --- the states -----------------------------------------------------------------------------------------------

    def directory(self, entry):
        node = self.lookup(entry.path)
        if node is None:
            self.require_parent(entry)
            after = self.new_node(entry, "directory")
            if not self.check_mode:
                try:
                    with self.parent_dir(entry.path) as (parent_fd, name):
                        os.mkdir(name, 0o700, dir_fd=parent_fd)
                        fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
                        try:
                            if entry.uid is not None or entry.gid is not None:
                                os.fchown(fd, -1 if entry.uid is None else entry.uid, -1 if entry.gid is None else entry.gid)
                            # After chown, which may clear setuid and setgid bits.
                            os.fchmod(fd, after.mode)
                        finally:
                            os.close(fd)
                except OSError as exc:
                    self.os_error(entry, "create directory", exc)
            return ["state"], True, None, after, None
        if node.kind == "link":
            self.planted(entry.path, node.target, "it is a directory entry of this task")
        elif node.kind != "directory":
            self.refuse(entry, node, "remove it first if it may go")
        changes = self.attribute_changes(entry, node)
        if changes and not self.check_mode:
            self.set_attributes(entry, changes)
        return changes, False, node, self.with_attributes(entry, node), None

    def file(self, entry):
        node = self.lookup(entry.path)
        old = None
        if node is None:
            self.require_parent(entry)
            after = self.new_node(entry, "file")
            changes, created = ["state"], True
        elif node.kind != "file":
            remedy = "use state=link for a link" if node.kind == "link" else "remove it first if it may go"
            self.refuse(entry, node, remedy)
        else:
            old = node.content if node.content is not None else self.read(entry)
            after = self.with_attributes(entry, node)
            after.fresh = False
            changes = self.attribute_changes(entry, node)
            if old != entry.data:
                changes.append("content")
            created = False
        after.content = entry.data
        if changes and not self.check_mode:
            if created or "content" in changes:
                self.write(entry, after)
            else:
                self.set_attributes(entry, changes)
        shown = None
        if created or "content" in changes:
            shown = (self.content_text(entry, old) if old is not None else None, self.content_text(entry, entry.data))
        return sorted(changes), created, node, after, shown

    def link(self, entry):
        node = self.lookup(entry.path)
        after = Node("link", target=entry.src, fresh=True)
        if node is None:
            self.require_parent(entry)
            if not self.check_mode:
                try:
                    with self.parent_dir(entry.path) as (parent_fd, name):
                        os.symlink(entry.src, name, dir_fd=parent_fd)
                except OSError as exc:
                    self.os_error(entry, "create symbolic link", exc)
            return ["state"], True, None, after, None
        if node.kind != "link":
            if entry.keep_other:
                if entry.path not in self.kept_paths:
                    self.kept_paths.append(entry.path)
                return [], False, node, node, None
            self.refuse(entry, node, "remove it first if it may go")
        if node.target == entry.src:
            return [], False, node, node, None
        if not self.check_mode:
            try:
                with self.parent_dir(entry.path) as (parent_fd, name):
                    tmp = ".%s.%s.tmp" % (name, os.urandom(6).hex())
                    os.symlink(entry.src, tmp, dir_fd=parent_fd)
                    try:
                        os.rename(tmp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
                    except OSError:
                        os.unlink(tmp, dir_fd=parent_fd)
                        raise
            except OSError as exc:
                self.os_error(entry, "replace symbolic link", exc)
        return ["src"], False, node, after, None

    def absent(self, entry):
        node = self.lookup(entry.path)
        if node is None:
            return [], False, None, None, None
        if node.kind == "directory":
            if self.children(entry.path):
                self.fail("%s is a directory that is not empty; it is never removed with its content, it was left "
                          "unchanged." % entry.path)
            action, remove = "remove directory", os.rmdir
        else:
            # A symbolic link is removed itself, never its target.
            action, remove = "remove", os.unlink
        if not self.check_mode:
            try:
                with self.parent_dir(entry.path) as (parent_fd, name):
                    remove(name, dir_fd=parent_fd)
            except FileNotFoundError:
                pass
            except OSError as exc:
                self.os_error(entry, action, exc)
        return ["state"], False, node, None, None

    # --- file content ---------------------------------------------------------------------------------------------

    def read(self, entry):
        """The content of the regular file at ``entry.path``, or an Oversized when it is too large to compare."""
        try:
            with self.parent_dir(entry.path) as (parent_fd, name):
                fd = os.open(name, _FILE_FLAGS, dir_fd=parent_fd)
                with os.fdopen(fd, "rb") as handle:
                    st = os.fstat(fd)
                    if not stat.S_ISREG(st.st_mode):
                        raise OSError(errno.EEXIST, "it is no longer a regular file")
                    limit = max(len(entry.data), _READ_LIMIT)
                    if st.st_size > limit:
                        return Oversized(st.st_size)
                    data = handle.read(limit + 1)
                    return Oversized(len(data)) if len(data) > limit else data
        except OSError as exc:
            self.os_error(entry, "read", exc)

    @staticmethod
    def content_text(entry, data):
        if isinstance(data, Oversized):
            return "(%d bytes or more, not read)" % data.size
        if entry.secret:
            return "(secret content, %d bytes)" % len(data)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return "(binary content, %d bytes)" % len(data)

    def run_validate(self, entry, tmp_path):
        command = [arg.replace("%s", tmp_path) for arg in shlex.split(entry.validate)]
        rc, out, err = self.module.run_command(command)
        if rc != 0:
            self.fail("Validation of the new %s failed (rc=%d): %s; it was left unchanged."
                      % (entry.path, rc, (err or out).strip()), rc=rc, stdout=out, stderr=err)

    @staticmethod
    def create_temp(parent_fd, name):
        """Create a new temporary file next to ``name`` in the open directory ``parent_fd``; return its name and fd."""
        for dummy in range(100):
            tmp = ".%s.%s.tmp" % (name, os.urandom(6).hex())
            try:
                return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                                    dir_fd=parent_fd)
            except FileExistsError:
                continue
        raise OSError(errno.EEXIST, "no free name for a temporary file")

    def write(self, entry, after):
        """Write ``entry.data`` to a temporary file with the final attributes, validate it and move it into place.

        The directory is opened without following a planted link, and the file is created, changed and renamed in it.
        """
        directory = os.path.dirname(entry.path)
        try:
            parent_fd = self.open_dir(directory)
        except OSError as exc:
            self.os_error(entry, "write", exc)
            return
        name = os.path.basename(entry.path)
        tmp = None
        try:
            try:
                tmp, fd = self.create_temp(parent_fd, name)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(entry.data)
                    handle.flush()
                    st = os.fstat(handle.fileno())
                    if (st.st_uid, st.st_gid) != (after.uid, after.gid):
                        try:
                            os.fchown(handle.fileno(), after.uid, after.gid)
                        except PermissionError:
                            if entry.uid is not None or entry.gid is not None:
                                raise
                    os.fchmod(handle.fileno(), after.mode)
                    os.fsync(handle.fileno())
            except OSError as exc:
                self.os_error(entry, "write", exc)
            if entry.validate is not None:
                self.run_validate(entry, os.path.join(directory, tmp))
            try:
                os.rename(tmp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
                tmp = None
            except OSError as exc:
                self.os_error(entry, "write", exc)
            try:
                os.fsync(parent_fd)
            except OSError:
                pass
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp, dir_fd=parent_fd)
                except OSError:
                    pass
            os.close(parent_fd)

    # --- the run --------------------------------------------------------------------------------------------------

    def run(self):
        handlers = dict(directory=self.directory, file=self.file, link=self.link, absent=self.absent)
        for entry in self.entries:
            self.current = entry
            changes, created, before, after, shown = handlers[entry.state](entry)
            if self.check_mode and changes:
                self.overlay[entry.path] = after
            changed = bool(changes)
            self.results.append(dict(path=entry.path, owner_service=entry.owner_service, state=entry.state, changed=changed,
                                     created=created, changes=changes))
            if not changed:
                continue
            if entry.path not in self.changed_paths:
                self.changed_paths.append(entry.path)
            if created and entry.path not in self.created_paths:
                self.created_paths.append(entry.path)
            if self.module._diff:
                if not self.check_mode and after is not None:
                    after = self.lookup(entry.path) or after
                before_text, after_text = describe(before), describe(after)
                if shown is not None:
                    if shown[0] is not None:
                        before_text += "content:\n" + shown[0] if not entry.secret else "content: %s\n" % shown[0]
                    after_text += "content:\n" + shown[1] if not entry.secret else "content: %s\n" % shown[1]
                self.diffs.append(dict(before_header=entry.path, after_header=entry.path,
                                       before=before_text, after=after_text))
        result = self.result()
        if self.module._diff:
            result["diff"] = self.diffs
        self.module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            entries=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    path=dict(type="path", required=True),
                    state=dict(type="str", choices=["directory", "file", "link", "absent"], default="file"),
                    owner=dict(type="str"),
                    group=dict(type="str"),
                    mode=dict(type="raw"),
                    content=dict(type="str"),
                    secret_content=dict(type="str", no_log=True),
                    src=dict(type="str"),
                    keep_other=dict(type="bool", default=False),
                    owner_service=dict(type="str"),
                    validate=dict(type="str"),
                ),
            ),
        ),
        supports_check_mode=True,
    )
    FileTree(module).run()


if __name__ == "__main__":
    main()
