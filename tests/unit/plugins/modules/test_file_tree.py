# Copyright (c) 2025, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.homelab.core.plugins.modules import file_tree

SECRET = "s3cr3t-Value-that-must-never-leak"

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")


@pytest.fixture
def run(run_module):
    """Run the module with the given entries and extra arguments."""

    def _run(entries, **args):
        return run_module(file_tree, dict(entries=entries, **args))

    return _run


def mode_of(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def script(tmp_path, name, body):
    """Write an executable shell script for ``validate`` and return its path."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def stack_entries(root):
    return [
        dict(path=str(root / "stack"), state="directory", mode="0755", owner_service="stack"),
        dict(path=str(root / "stack" / "data"), state="directory", mode="0750"),
        dict(path=str(root / "stack" / "data" / "db"), state="directory", mode="0700", owner_service="db"),
        dict(path=str(root / "stack" / "data" / "db" / "conf"), state="directory", mode="0700", owner_service="db"),
        dict(path=str(root / "stack" / ".env"), content="A=1\nB=2", mode="0644", owner_service="app"),
        dict(path=str(root / "stack" / "db_password"), secret_content=SECRET, mode="0600", owner_service="db"),
        dict(path=str(root / "stack" / "current"), state="link", src="data"),
    ]


def test_creates_tree_from_nothing(run, tmp_path):
    entries = stack_entries(tmp_path)

    umask = os.umask(0o077)  # modes are applied exactly, whatever the umask
    try:
        result = run(entries)
    finally:
        os.umask(umask)

    stack = tmp_path / "stack"
    paths = [entry["path"] for entry in entries]
    assert result["failed"] is False
    assert result["changed"] is True
    assert result["changed_paths"] == paths
    assert result["created_paths"] == paths
    assert [(e["path"], e["owner_service"], e["state"], e["changed"], e["created"], e["changes"]) for e in result["entries"]] == [
        (entry["path"], entry.get("owner_service"), entry.get("state", "file"), True, True, ["state"]) for entry in entries
    ]
    assert mode_of(stack) == 0o755
    assert mode_of(stack / "data") == 0o750
    assert mode_of(stack / "data" / "db") == 0o700
    assert (stack / ".env").read_bytes() == b"A=1\nB=2"
    assert mode_of(stack / ".env") == 0o644
    assert (stack / "db_password").read_bytes() == SECRET.encode()
    assert mode_of(stack / "db_password") == 0o600
    assert os.readlink(stack / "current") == "data"
    assert sorted(os.listdir(stack)) == [".env", "current", "data", "db_password"]


def test_second_run_is_unchanged(run, tmp_path):
    entries = stack_entries(tmp_path)
    run(entries)
    before = {p: os.lstat(p) for p in (e["path"] for e in entries)}

    result = run(entries, _ansible_diff=True)

    assert result["changed"] is False
    assert result["changed_paths"] == result["created_paths"] == []
    assert all(e["changed"] is False and e["created"] is False and e["changes"] == [] for e in result["entries"])
    assert result["diff"] == []
    for path, st in before.items():
        after = os.lstat(path)
        assert (after.st_ino, after.st_mtime_ns, after.st_mode) == (st.st_ino, st.st_mtime_ns, st.st_mode)


def test_only_mode_drift_is_repaired(run, tmp_path):
    entries = stack_entries(tmp_path)
    run(entries)
    env = tmp_path / "stack" / ".env"
    os.chmod(env, 0o666)
    inode = os.stat(env).st_ino

    result = run(entries)

    assert result["changed_paths"] == [str(env)]
    assert result["created_paths"] == []
    assert result["entries"][4]["changes"] == ["mode"]
    assert result["entries"][4]["created"] is False
    assert mode_of(env) == 0o644
    assert os.stat(env).st_ino == inode  # fixed in place, not rewritten
    assert env.read_bytes() == b"A=1\nB=2"


def test_directory_mode_drift_is_repaired(run, tmp_path):
    entries = stack_entries(tmp_path)
    run(entries)
    os.chmod(tmp_path / "stack" / "data", 0o777)

    result = run(entries)

    assert result["changed_paths"] == [str(tmp_path / "stack" / "data")]
    assert result["entries"][1]["changes"] == ["mode"]
    assert mode_of(tmp_path / "stack" / "data") == 0o750


def test_content_drift_is_rewritten(run, tmp_path):
    entries = stack_entries(tmp_path)
    run(entries)
    env = tmp_path / "stack" / ".env"
    env.write_text("A=tampered\n")
    os.chmod(env, 0o600)

    result = run(entries, _ansible_diff=True)

    assert result["changed_paths"] == [str(env)]
    assert result["entries"][4]["changes"] == ["content", "mode"]
    assert env.read_bytes() == b"A=1\nB=2"
    assert mode_of(env) == 0o644
    uid, gid = os.getuid(), os.getgid()
    assert result["diff"] == [
        {
            "before_header": str(env),
            "after_header": str(env),
            "before": "state: file\nowner: %d\ngroup: %d\nmode: 0600\ncontent:\nA=tampered\n" % (uid, gid),
            "after": "state: file\nowner: %d\ngroup: %d\nmode: 0644\ncontent:\nA=1\nB=2" % (uid, gid),
        }
    ]
    assert [name for name in os.listdir(env.parent) if name.endswith(".tmp")] == []


def test_existing_file_keeps_mode_when_none_is_given(run, tmp_path):
    path = tmp_path / "keep"
    path.write_text("old")
    os.chmod(path, 0o640)

    result = run([dict(path=str(path), content="new")])

    assert result["entries"][0]["changes"] == ["content"]
    assert path.read_text() == "new"
    assert mode_of(path) == 0o640


def test_new_secret_file_defaults_to_0600(run, tmp_path):
    path = tmp_path / "token"

    run([dict(path=str(path), secret_content=SECRET)])

    assert mode_of(path) == 0o600


def test_deleted_directory_is_reported_as_created(run, tmp_path):
    entries = stack_entries(tmp_path)
    run(entries)
    conf = tmp_path / "stack" / "data" / "db" / "conf"
    conf.rmdir()
    (tmp_path / "stack" / "data" / "db").rmdir()

    result = run(entries)

    db = str(tmp_path / "stack" / "data" / "db")
    assert result["changed_paths"] == [db, str(conf)]
    assert result["created_paths"] == [db, str(conf)]
    assert [e["owner_service"] for e in result["entries"] if e["created"]] == ["db", "db"]
    assert conf.is_dir()


def test_check_mode_predicts_everything_and_writes_nothing(run, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    entries = stack_entries(root)

    result = run(entries, _ansible_check_mode=True, _ansible_diff=True)

    paths = [entry["path"] for entry in entries]
    assert result["changed"] is True
    assert result["changed_paths"] == paths
    assert result["created_paths"] == paths
    assert all(e["created"] and e["changes"] == ["state"] for e in result["entries"])
    assert os.listdir(root) == []
    assert [d["before"] for d in result["diff"]] == ["state: absent\n"] * len(entries)
    assert result["diff"][2]["after"] == "state: directory\nowner: %d\ngroup: %d\nmode: 0700\n" % (
        os.geteuid(), os.getegid())
    assert result["diff"][6]["after"] == "state: link\nsrc: data\n"

    # The real run then does exactly what check mode predicted.
    real = run(entries)
    assert real["changed_paths"] == result["changed_paths"]
    assert real["entries"] == result["entries"]


def test_check_mode_on_existing_tree_matches_real_run(run, tmp_path):
    entries = stack_entries(tmp_path)
    run(entries)
    os.chmod(tmp_path / "stack" / ".env", 0o600)
    (tmp_path / "stack" / "db_password").write_text("old")
    os.unlink(tmp_path / "stack" / "current")
    os.symlink("elsewhere", tmp_path / "stack" / "current")
    snapshot = {p: (tmp_path / "stack" / p).lstat() for p in (".env", "db_password", "current")}

    check = run(entries, _ansible_check_mode=True)

    assert {p: (tmp_path / "stack" / p).lstat() for p in snapshot} == snapshot
    real = run(entries)
    assert check["entries"] == real["entries"]
    assert check["changed_paths"] == real["changed_paths"] == [
        str(tmp_path / "stack" / name) for name in (".env", "db_password", "current")
    ]
    assert [e["changes"] for e in real["entries"] if e["changed"]] == [["mode"], ["content"], ["src"]]


def test_check_mode_follows_earlier_entries(run, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "old").write_text("x")
    entries = [
        dict(path=str(data / "old"), state="absent"),
        dict(path=str(data), state="absent"),
        dict(path=str(tmp_path / "new"), state="directory"),
        dict(path=str(tmp_path / "new" / "file"), content="one"),
        dict(path=str(tmp_path / "new" / "file"), content="one"),
    ]

    result = run(entries, _ansible_check_mode=True)

    assert [e["changes"] for e in result["entries"]] == [["state"], ["state"], ["state"], ["state"], []]
    assert (data / "old").read_text() == "x"
    assert not (tmp_path / "new").exists()


def test_check_mode_refuses_child_of_a_missing_parent(run, tmp_path):
    result = run([dict(path=str(tmp_path / "a" / "b"), state="directory")], _ansible_check_mode=True)

    assert result["failed"] is True
    assert result["msg"].startswith("Cannot create %s because its parent directory %s does not exist"
                                    % (tmp_path / "a" / "b", tmp_path / "a"))


def test_secret_never_appears_in_result_or_diff(run, tmp_path):
    path = tmp_path / "secret"
    entries = [dict(path=str(path), secret_content=SECRET, mode="0600", owner_service="db")]

    for args in (dict(_ansible_check_mode=True), {}, {}):
        result = run(entries, _ansible_diff=True, **args)
        assert SECRET not in json.dumps(result)

    path.write_text(SECRET + "-old")
    result = run(entries, _ansible_diff=True)
    dumped = json.dumps(result)
    assert SECRET not in dumped
    assert result["entries"][0]["changes"] == ["content"]
    assert result["diff"][0]["before"].endswith("content: (secret content, %d bytes)\n" % (len(SECRET) + 4))
    assert result["diff"][0]["after"].endswith("content: (secret content, %d bytes)\n" % len(SECRET))
    assert path.read_text() == SECRET


def test_secret_is_masked_in_a_failing_validator_output(run, tmp_path):
    echo = script(tmp_path, "echo.sh", 'cat "$1" >&2\nexit 1')
    path = tmp_path / "secret"

    result = run([dict(path=str(path), secret_content=SECRET, validate="%s %%s" % echo)], _ansible_diff=True)

    assert result["failed"] is True
    assert SECRET not in json.dumps(result)
    assert not path.exists()


def test_link_is_created_and_retargeted(run, tmp_path):
    link = tmp_path / "current"
    (tmp_path / "v1").mkdir()

    created = run([dict(path=str(link), state="link", src="v1")])
    retargeted = run([dict(path=str(link), state="link", src="v2")], _ansible_diff=True)
    again = run([dict(path=str(link), state="link", src="v2")])

    assert created["created_paths"] == [str(link)]
    assert retargeted["entries"][0]["changes"] == ["src"]
    assert retargeted["created_paths"] == []
    assert retargeted["diff"][0]["before"] == "state: link\nsrc: v1\n"
    assert retargeted["diff"][0]["after"] == "state: link\nsrc: v2\n"
    assert again["changed"] is False
    assert os.readlink(link) == "v2"
    assert sorted(os.listdir(tmp_path)) == ["current", "v1"]


def test_link_does_not_touch_its_target(run, tmp_path):
    target = tmp_path / "target"
    target.write_text("data")
    os.chmod(target, 0o640)

    result = run([dict(path=str(tmp_path / "link"), state="link", src=str(target), mode="0777", owner="0")])

    assert result["changed"] is True
    assert mode_of(target) == 0o640


def test_link_refuses_to_replace_a_real_file(run, tmp_path):
    path = tmp_path / "real"
    path.write_text("precious")

    result = run([dict(path=str(path), state="link", src="elsewhere")])

    assert result["failed"] is True
    assert result["msg"] == (
        "%s is a regular file, not a symbolic link; remove it first if it may go, it was left unchanged." % path
    )
    assert path.read_text() == "precious"
    assert not path.is_symlink()


def test_link_with_keep_other_leaves_a_real_directory_and_still_makes_or_fixes_a_link(run, tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    (own / "kept").write_text("mine")
    link = tmp_path / "link"
    link.symlink_to("old")

    result = run([dict(path=str(own), state="link", src="elsewhere", keep_other=True),
                  dict(path=str(link), state="link", src="elsewhere", keep_other=True),
                  dict(path=str(tmp_path / "new"), state="link", src="elsewhere", keep_other=True)])

    assert result["failed"] is False
    assert result["changed_paths"] == [str(link), str(tmp_path / "new")]
    # Only the path left as something else than a link is reported, for the caller's warning.
    assert result["kept_paths"] == [str(own)]
    assert own.is_dir() and not own.is_symlink() and (own / "kept").read_text() == "mine"
    assert os.readlink(str(link)) == "elsewhere" and os.readlink(str(tmp_path / "new")) == "elsewhere"


def test_kept_paths_are_reported_in_check_mode_and_empty_when_the_link_is_made(run, tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    entries = [dict(path=str(own), state="link", src="elsewhere", keep_other=True),
               dict(path=str(tmp_path / "new"), state="link", src="elsewhere", keep_other=True)]

    assert run(entries, _ansible_check_mode=True)["kept_paths"] == [str(own)]
    own.rmdir()
    assert run(entries)["kept_paths"] == []


def test_keep_other_is_refused_outside_state_link(run, tmp_path):
    result = run([dict(path=str(tmp_path / "d"), state="directory", keep_other=True)])

    assert result["failed"] is True
    assert result["msg"] == "entries[0] (%s) sets keep_other, which only applies to state=link, not state=directory." % (
        tmp_path / "d")


def test_file_refuses_a_directory(run, tmp_path):
    result = run([dict(path=str(tmp_path), content="x")])

    assert result["failed"] is True
    assert result["msg"].startswith("%s is a directory, not a regular file" % tmp_path)


def test_directory_refuses_a_file(run, tmp_path):
    path = tmp_path / "f"
    path.write_text("x")

    result = run([dict(path=str(path), state="directory")])

    assert result["failed"] is True
    assert result["msg"].startswith("%s is a regular file, not a directory" % path)
    assert path.read_text() == "x"


def test_directory_refuses_a_link_even_to_a_directory_nearby(run, tmp_path):
    (tmp_path / "disk").mkdir(mode=0o755)
    os.symlink("disk", tmp_path / "data")

    result = run([dict(path=str(tmp_path / "data"), state="directory", mode="0700")])

    assert result["failed"] is True
    assert result["msg"].startswith("%s is a symbolic link to disk; homelab.core does not follow links inside the data "
                                    "tree that a container can plant" % (tmp_path / "data"))
    assert result["msg"].endswith("replace it with a real directory (a bind mount works for putting data on another "
                                  "disk), it was left unchanged.")
    assert result["entries"] == []
    assert (tmp_path / "data").is_symlink()
    assert mode_of(tmp_path / "disk") == 0o755


def test_absent_removes_file_link_and_empty_directory(run, tmp_path):
    (tmp_path / "file").write_text("x")
    os.symlink("file", tmp_path / "link")
    (tmp_path / "empty").mkdir()
    entries = [dict(path=str(tmp_path / name), state="absent") for name in ("link", "file", "empty", "never")]

    result = run(entries, _ansible_diff=True)
    again = run(entries)

    assert result["changed_paths"] == [str(tmp_path / name) for name in ("link", "file", "empty")]
    assert result["created_paths"] == []
    assert [e["changes"] for e in result["entries"]] == [["state"], ["state"], ["state"], []]
    assert [d["after"] for d in result["diff"]] == ["state: absent\n"] * 3
    assert os.listdir(tmp_path) == []
    assert again["changed"] is False


def test_absent_refuses_a_non_empty_directory(run, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "keep").write_text("x")

    result = run([dict(path=str(tmp_path / "data"), state="absent")])

    assert result["failed"] is True
    assert result["msg"].startswith("%s is a directory that is not empty" % (tmp_path / "data"))
    assert (tmp_path / "data" / "keep").read_text() == "x"


def test_relative_path_is_refused(run, tmp_path):
    result = run([dict(path=str(tmp_path / "ok"), state="directory"), dict(path="relative/dir", state="directory")])

    assert result["failed"] is True
    assert result["msg"] == "entries[1].path must be an absolute path, got 'relative/dir'."
    assert not (tmp_path / "ok").exists()  # options are checked before anything changes


def test_missing_parent_is_refused(run, tmp_path):
    result = run([
        dict(path=str(tmp_path / "ok"), state="directory"),
        dict(path=str(tmp_path / "missing" / "file"), content="x"),
    ])

    assert result["failed"] is True
    assert result["msg"] == (
        "Cannot create %s because its parent directory %s does not exist; list the parent as an earlier entry with "
        "state=directory." % (tmp_path / "missing" / "file", tmp_path / "missing")
    )
    assert result["changed"] is True
    assert result["changed_paths"] == [str(tmp_path / "ok")]
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    "entry, msg",
    [
        (dict(content="a", secret_content=SECRET), "needs exactly one of content and secret_content for state=file."),
        ({}, "needs exactly one of content and secret_content for state=file."),
        (dict(state="directory", content="a"), "sets content, which only applies to state=file, not state=directory."),
        (dict(state="link"), "needs src for state=link."),
        (dict(content="a", src="b"), "sets src, which only applies to state=link, not state=file."),
        (dict(content="a", validate="true"), "validate must contain %s, got 'true'."),
        (dict(content="a", mode="rw-r--r--"), "mode must be an octal string such as '0644' or a number, got 'rw-r--r--'."),
        (dict(content="a", owner="no-such-user-here"), ": there is no user named 'no-such-user-here' on the host."),
        (dict(content="a", group="no-such-group-here"), ": there is no group named 'no-such-group-here' on the host."),
    ],
    ids=["both-contents", "no-content", "content-on-dir", "link-without-src", "src-on-file", "validate-without-%s",
         "bad-mode", "unknown-owner", "unknown-group"],
)
def test_bad_options_are_refused(run, tmp_path, entry, msg):
    path = tmp_path / "f"

    result = run([dict(path=str(path), **entry)])

    assert result["failed"] is True
    assert result["msg"].startswith("entries[0] (%s)" % path)
    assert result["msg"].endswith(msg)
    assert not path.exists()


def test_validate_failure_keeps_the_old_file(run, tmp_path):
    path = tmp_path / "app.conf"
    path.write_text("good")
    reject = script(tmp_path, "reject.sh", 'echo "syntax error in $1" >&2\nexit 2')

    result = run([dict(path=str(path), content="bad", validate="%s %%s" % reject)])

    assert result["failed"] is True
    assert result["rc"] == 2
    assert result["msg"].startswith("Validation of the new %s failed (rc=2): syntax error in " % path)
    assert path.read_text() == "good"
    assert sorted(os.listdir(tmp_path)) == ["app.conf", "reject.sh"]


def test_validate_success_sees_the_new_content(run, tmp_path):
    path = tmp_path / "conf" / "app.conf"
    path.parent.mkdir()
    seen = tmp_path / "seen"
    accept = script(tmp_path, "accept.sh", 'cp "$2" "%s"' % seen)

    result = run([dict(path=str(path), content="new", mode="0640", validate="%s --check %%s" % accept)])

    assert result["changed"] is True
    assert seen.read_text() == "new"
    assert path.read_text() == "new"
    assert mode_of(path) == 0o640
    assert os.listdir(path.parent) == ["app.conf"]


def test_validate_is_not_run_in_check_mode(run, tmp_path):
    reject = script(tmp_path, "reject.sh", "exit 1")

    result = run([dict(path=str(tmp_path / "f"), content="x", validate="%s %%s" % reject)], _ansible_check_mode=True)

    assert result["failed"] is False
    assert result["changed"] is True


@as_root
@pytest.mark.parametrize("owner", ["root", "0"])
def test_owner_by_name_or_number(run, tmp_path, owner):
    path = tmp_path / "owned"
    path.write_text("x")
    os.chown(path, 1000, 1000)

    result = run([dict(path=str(path), content="x", owner=owner, group=owner)])
    again = run([dict(path=str(path), content="x", owner=owner, group=owner)])

    assert result["entries"][0]["changes"] == ["group", "owner"]
    assert (os.stat(path).st_uid, os.stat(path).st_gid) == (0, 0)
    assert again["changed"] is False


@as_root
def test_numeric_owner_on_new_directory_and_rewritten_file(run, tmp_path):
    path = tmp_path / "data"
    conf = tmp_path / "conf"
    conf.write_text("old")
    os.chown(conf, 1000, 1000)
    os.chmod(conf, 0o640)

    result = run([
        dict(path=str(path), state="directory", owner="1000", group="1000", mode="0700"),
        dict(path=str(conf), content="new"),
    ], _ansible_diff=True)

    assert (os.stat(path).st_uid, os.stat(path).st_gid) == (1000, 1000)
    assert result["diff"][0]["after"] == "state: directory\nowner: 1000\ngroup: 1000\nmode: 0700\n"
    # A rewritten file keeps the owner, group and mode it had.
    st = os.stat(conf)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 1000, 0o640)
    assert conf.read_text() == "new"


def test_mode_as_number(run, tmp_path):
    path = tmp_path / "f"

    run([dict(path=str(path), content="x", mode=0o604)])

    assert mode_of(path) == 0o604


# --- symbolic links that a container can plant in its data tree -------------------------------------------------------

PLANTED = "is a symbolic link to %s; homelab.core does not follow links inside the data tree that a container can plant"


def outside_dir(tmp_path):
    """A directory standing in for /etc: root's, 0755, with a file in it."""
    etc = tmp_path / "etc"
    etc.mkdir()
    os.chmod(etc, 0o755)
    (etc / "shadow").write_text("root:hash\n")
    os.chmod(etc / "shadow", 0o640)
    return etc


def snapshot(path):
    """Owner, group, mode, inode and content of a directory and everything in it, by relative path."""
    found = {}
    for parent, dirs, files in os.walk(path):
        for name in [""] + dirs + files:
            full = os.path.join(parent, name) if name else parent
            st = os.lstat(full)
            content = open(full, "rb").read() if stat.S_ISREG(st.st_mode) else None
            found[os.path.relpath(full, path)] = (st.st_uid, st.st_gid, st.st_mode, st.st_ino, content)
    return found


@as_root
@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_planted_link_at_a_directory_entry_is_refused_and_its_target_untouched(run, tmp_path, check_mode):
    etc = outside_dir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "ssh").mkdir()
    mux = data / "ssh" / "mux"
    mux.symlink_to(etc)  # what a container running as root can do in its bind mount
    before = snapshot(etc)

    result = run([
        dict(path=str(data), state="directory", owner="0", group="0", mode="0755"),
        dict(path=str(data / "ssh"), state="directory", owner="9999", group="9999", mode="0700"),
        dict(path=str(mux), state="directory", owner="9999", group="9999", mode="0700"),
    ], _ansible_check_mode=check_mode)

    assert result["failed"] is True
    assert result["msg"].startswith("%s %s (it is a directory entry of this task); replace it with a real directory"
                                    % (mux, PLANTED % etc))
    assert [e["path"] for e in result["entries"]] == [str(data), str(data / "ssh")]
    assert snapshot(etc) == before
    assert os.readlink(mux) == str(etc)


@as_root
def test_planted_link_below_a_directory_entry_is_not_followed(run, tmp_path):
    etc = outside_dir(tmp_path)
    a = tmp_path / "a"
    a.mkdir()
    (a / "b").symlink_to(etc)
    before = snapshot(etc)

    result = run([
        dict(path=str(a), state="directory", mode="0755"),
        dict(path=str(a / "b" / "c"), state="directory", owner="9999", group="9999", mode="0777"),
        dict(path=str(a / "b" / "shadow"), content="root::0:\n", owner="9999", mode="0666"),
    ])

    assert result["failed"] is True
    assert result["msg"] == (
        "%s %s (it is below the directory entry %s of this task); replace it with a real directory (a bind mount works "
        "for putting data on another disk), %s was left unchanged." % (a / "b", PLANTED % etc, a, a / "b" / "c"))
    assert snapshot(etc) == before
    assert not (etc / "c").exists()


@as_root
@pytest.mark.parametrize("existing", [False, True], ids=["new-file", "existing-file"])
def test_file_whose_parent_is_a_planted_link_is_neither_written_nor_chowned(run, tmp_path, existing):
    etc = outside_dir(tmp_path)
    if existing:
        (etc / "app.env").write_text("A=1\n")
        os.chmod(etc / "app.env", 0o644)
    data = tmp_path / "data"
    data.mkdir()
    (data / "conf").symlink_to(etc)
    before = snapshot(etc)

    for content in ("A=1\n", "A=2\n"):  # only the owner and mode differ, or the content too
        result = run([
            dict(path=str(data), state="directory", mode="0755"),
            dict(path=str(data / "conf" / "app.env"), content=content, owner="9999", group="9999", mode="0666"),
        ], _ansible_diff=True)

        assert result["failed"] is True
        assert result["msg"].startswith("%s %s (it is below the directory entry %s of this task)"
                                        % (data / "conf", PLANTED % etc, data))
        assert result["msg"].endswith("%s was left unchanged." % (data / "conf" / "app.env"))
        assert snapshot(etc) == before


@as_root
@pytest.mark.parametrize(
    "owner, mode, reason",
    [(1000, 0o755, "its directory belongs to uid 1000"), (0, 0o777, "its directory can be written by its group or by others"),
     (0, 0o775, "its directory can be written by its group or by others")],
    ids=["other-owner", "world-writable", "group-writable"])
def test_link_in_a_directory_another_user_can_write_is_not_followed(run, tmp_path, owner, mode, reason):
    etc = outside_dir(tmp_path)
    home = tmp_path / "n8n"
    home.mkdir()
    (home / ".n8n").symlink_to(etc)
    os.chown(home, owner, owner)
    os.chmod(home, mode)
    before = snapshot(etc)

    result = run([dict(path=str(home / ".n8n" / "config"), content="{}", owner="1000", mode="0600")])

    assert result["failed"] is True
    assert result["msg"] == (
        "%s %s (%s); replace it with a real directory (a bind mount works for putting data on another disk), %s was "
        "left unchanged." % (home / ".n8n", PLANTED % etc, reason, home / ".n8n" / "config"))
    assert snapshot(etc) == before


@as_root
def test_link_owned_by_another_user_in_a_sticky_directory_is_not_followed(run, tmp_path):
    etc = outside_dir(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    (shared / "planted").symlink_to(etc)
    os.chown(shared / "planted", 1000, 1000, follow_symlinks=False)
    (shared / "roots").symlink_to(etc)

    refused = run([dict(path=str(shared / "planted" / "x"), content="x", mode="0644")])

    assert refused["failed"] is True
    assert refused["msg"].startswith("%s %s (it belongs to uid 1000, in a directory that others can write)"
                                     % (shared / "planted", PLANTED % etc))
    assert not (etc / "x").exists()

    # The link that root made there is followed.
    followed = run([dict(path=str(shared / "roots" / "x"), content="x", mode="0644")])

    assert followed["failed"] is False
    assert (etc / "x").read_text() == "x"


def test_root_controlled_link_above_the_tree_is_followed(run, tmp_path):
    # Like /var/run -> /run: a link that only root could have made, above every directory entry.
    real = tmp_path / "real-run"
    real.mkdir()
    system = tmp_path / "var"
    system.mkdir(mode=0o755)
    (system / "run").symlink_to("../real-run")
    app = system / "run" / "app"

    entries = [dict(path=str(app), state="directory", mode="0750"), dict(path=str(app / "pid"), content="1", mode="0640"),
               dict(path=str(app / "current"), state="link", src="pid")]
    check = run(entries, _ansible_check_mode=True)
    result = run(entries)
    again = run(entries)

    assert check["failed"] is False and check["entries"] == result["entries"]
    assert result["failed"] is False
    assert result["created_paths"] == [e["path"] for e in entries]
    assert mode_of(real / "app") == 0o750
    assert (real / "app" / "pid").read_text() == "1"
    assert os.readlink(real / "app" / "current") == "pid"
    assert again["changed"] is False


def test_absent_removes_a_planted_link_never_its_target(run, tmp_path):
    etc = outside_dir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "old").symlink_to(etc)
    (data / "old.env").symlink_to(etc / "shadow")
    before = snapshot(etc)

    result = run([dict(path=str(data / "old"), state="absent"), dict(path=str(data / "old.env"), state="absent")])

    assert result["failed"] is False
    assert result["changed_paths"] == [str(data / "old"), str(data / "old.env")]
    assert os.listdir(data) == []
    assert snapshot(etc) == before


@as_root
def test_directory_swapped_for_a_link_after_the_check_is_not_chowned(run, tmp_path, monkeypatch):
    etc = outside_dir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    mux = data / "mux"
    mux.mkdir(mode=0o755)
    before = snapshot(etc)
    checked = file_tree.FileTree.attribute_changes

    def swap_then_check(self, entry, node):
        # A container wins the race: between the module's look at the path and its chown.
        if entry.path == str(mux) and mux.is_dir() and not mux.is_symlink():
            mux.rmdir()
            mux.symlink_to(etc)
        return checked(self, entry, node)

    monkeypatch.setattr(file_tree.FileTree, "attribute_changes", swap_then_check)

    result = run([dict(path=str(mux), state="directory", owner="9999", group="9999", mode="0700")])

    assert result["failed"] is True
    assert result["msg"].startswith("Could not set the owner, group or mode of %s: " % mux)
    assert snapshot(etc) == before


@as_root
def test_parent_swapped_for_a_link_after_the_check_is_not_written_through(run, tmp_path, monkeypatch):
    etc = outside_dir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    conf = data / "conf"
    conf.mkdir()
    (conf / "shadow").write_text("old")
    before = snapshot(etc)
    checked = file_tree.FileTree.attribute_changes

    def swap_then_check(self, entry, node):
        if entry.path == str(conf / "shadow") and not conf.is_symlink():
            (conf / "shadow").unlink()
            conf.rmdir()
            conf.symlink_to(etc)
        return checked(self, entry, node)

    monkeypatch.setattr(file_tree.FileTree, "attribute_changes", swap_then_check)

    result = run([dict(path=str(data), state="directory"),
                  dict(path=str(conf / "shadow"), content="root::0:\n", owner="9999", mode="0666")])

    assert result["failed"] is True
    assert result["msg"].startswith("%s %s (it is below the directory entry %s of this task)" % (conf, PLANTED % etc, data))
    assert snapshot(etc) == before


def test_large_old_content_is_not_read_and_is_rewritten(run, tmp_path):
    path = tmp_path / "conf"
    path.write_bytes(b"x" * (2 << 20))

    result = run([dict(path=str(path), content="small")], _ansible_diff=True)

    assert result["entries"][0]["changes"] == ["content"]
    assert result["diff"][0]["before"].endswith("content:\n(%d bytes or more, not read)" % (2 << 20))
    assert path.read_text() == "small"
