# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal

import pytest

from ansible_collections.homelab.core.plugins.modules import read_files


def test_reads_each_existing_file_and_lists_the_missing_ones_in_order(run_module, tmp_path):
    present = tmp_path / "secrets.json"
    present.write_bytes(b'{"a": 1}\n')
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    missing = [str(tmp_path / "later"), str(tmp_path / "absent" / "deeper")]

    result = run_module(read_files, {"paths": [missing[0], str(present), str(empty), missing[1], str(present)]})

    assert result["failed"] is False and result["changed"] is False
    assert result["contents"] == {str(present): base64.b64encode(b'{"a": 1}\n').decode(), str(empty): ""}
    assert result["missing"] == missing


def test_a_path_that_exists_but_cannot_be_read_fails_naming_it(run_module, tmp_path):
    result = run_module(read_files, {"paths": [str(tmp_path), str(tmp_path / "later")]})

    assert result["failed"] is True
    assert result["msg"].startswith("Cannot read %s (" % tmp_path)
    assert "contents" not in result


def test_directories_are_reported_when_they_hold_anything_and_links_are_not_followed(run_module, tmp_path):
    full = tmp_path / "coolify-db"
    full.mkdir()
    (full / "PG_VERSION").write_text("16\n")
    empty = tmp_path / "coolify-redis"
    empty.mkdir()
    link = tmp_path / "planted"
    link.symlink_to(empty)

    result = run_module(read_files, {"paths": [], "dirs": [str(tmp_path / "none"), str(empty), str(full), str(link)]})

    assert result["failed"] is False and result["changed"] is False
    assert result["nonempty_dirs"] == [str(full), str(link)]


SECRET = "root:$6$never-in-the-play$:19000:0:99999:7:::"

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")


@contextlib.contextmanager
def deadline(seconds=5):
    """Fail the test instead of hanging when a read blocks (a named pipe) or never ends (/dev/zero)."""

    def expired(signum, frame):
        raise AssertionError("read_files did not return within %d seconds" % seconds)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def secret_file(tmp_path):
    """A file standing in for /etc/shadow."""
    shadow = tmp_path / "etc" / "shadow"
    shadow.parent.mkdir()
    shadow.write_text(SECRET)
    return shadow


def planted_n8n_config(tmp_path, target):
    """n8n (uid 1000) can write its own data directory, where the role reads its key file: a link planted there."""
    config = tmp_path / "data" / "n8n" / "config"
    config.parent.mkdir(parents=True)
    config.symlink_to(target)
    return config


def test_a_link_at_the_path_is_refused_and_its_target_never_read(run_module, tmp_path):
    shadow = secret_file(tmp_path)
    config = planted_n8n_config(tmp_path, shadow)

    with deadline():
        result = run_module(read_files, {"paths": [str(config)]})

    assert result["failed"] is True
    assert result["msg"] == (
        "Cannot read %s (it is a symbolic link to %s, which is not followed since a container can plant one; only "
        "regular files are read)." % (config, shadow))
    dumped = json.dumps(result)
    assert SECRET not in dumped and base64.b64encode(SECRET.encode()).decode() not in dumped


@pytest.mark.parametrize("via_link", [False, True], ids=["fifo", "link-to-fifo"])
def test_a_named_pipe_is_refused_without_blocking(run_module, tmp_path, via_link):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    config = planted_n8n_config(tmp_path, fifo) if via_link else fifo

    with deadline():
        result = run_module(read_files, {"paths": [str(config)]})

    assert result["failed"] is True
    what = "a symbolic link to %s" % fifo if via_link else "a named pipe (FIFO), not a regular file"
    assert result["msg"].startswith("Cannot read %s (it is %s" % (config, what))


@pytest.mark.parametrize("via_link", [False, True], ids=["device", "link-to-device"])
def test_dev_zero_is_refused(run_module, tmp_path, via_link):
    config = "/dev/zero"
    if via_link:
        config = tmp_path / "config"
        config.symlink_to("/dev/zero")

    with deadline():
        result = run_module(read_files, {"paths": [str(config)]})

    assert result["failed"] is True
    what = "a symbolic link to /dev/zero" if via_link else "a character device, not a regular file"
    assert result["msg"].startswith("Cannot read %s (it is %s" % (config, what))


def test_a_file_over_max_size_is_refused_naming_its_size(run_module, tmp_path):
    at_cap = tmp_path / "at-cap"
    at_cap.write_bytes(b"a" * 1048576)
    over = tmp_path / "over"
    over.write_bytes(b"a" * 1048577)

    fits = run_module(read_files, {"paths": [str(at_cap)]})
    refused = run_module(read_files, {"paths": [str(at_cap), str(over)]})
    smaller_cap = run_module(read_files, {"paths": [str(tmp_path / "none"), str(at_cap)], "max_size": 1024})

    assert fits["failed"] is False and len(base64.b64decode(fits["contents"][str(at_cap)])) == 1048576
    assert refused["failed"] is True
    assert refused["msg"] == "Cannot read %s (it is 1048577 bytes, more than max_size (1048576 bytes))." % over
    assert smaller_cap["msg"] == "Cannot read %s (it is 1048576 bytes, more than max_size (1024 bytes))." % at_cap


def test_a_negative_max_size_is_refused(run_module, tmp_path):
    result = run_module(read_files, {"paths": [], "max_size": -1})

    assert result["failed"] is True
    assert result["msg"] == "max_size must be 0 or more, got -1."


@as_root
@pytest.mark.parametrize("owner, mode, reason", [
    (1000, 0o755, "in a directory that belongs to uid 1000"),
    (0, 0o777, "in a directory that its group or others can write"),
], ids=["n8n-owned", "world-writable"])
def test_a_link_on_the_way_in_a_directory_a_container_can_write_is_not_followed(run_module, tmp_path, owner, mode, reason):
    shadow = secret_file(tmp_path)
    n8n = tmp_path / "data" / "n8n"
    n8n.mkdir(parents=True)
    (n8n / ".n8n").symlink_to(shadow.parent)
    os.chown(n8n, owner, owner)
    os.chmod(n8n, mode)
    config = n8n / ".n8n" / "shadow"

    result = run_module(read_files, {"paths": [str(config)]})

    assert result["failed"] is True
    assert result["msg"] == (
        "Cannot read %s (%s is a symbolic link to %s %s, which is not followed since a container can plant one)."
        % (config, n8n / ".n8n", shadow.parent, reason))
    assert SECRET not in json.dumps(result)


def test_a_link_on_the_way_that_only_root_can_have_made_is_followed(run_module, tmp_path):
    # Like /var/run -> /run, or /opt/homelab on another disk: a root-owned, 0755 directory holds the link.
    disk = tmp_path / "disk" / "homelab"
    disk.mkdir(parents=True)
    (disk / "secrets.json").write_text("{}")
    opt = tmp_path / "opt"
    opt.mkdir(mode=0o755)
    (opt / "homelab").symlink_to(disk)

    result = run_module(read_files, {"paths": [str(opt / "homelab" / "secrets.json"), str(opt / "homelab" / "later")],
                                     "dirs": [str(opt / "homelab")]})

    assert result["failed"] is False
    assert result["contents"] == {str(opt / "homelab" / "secrets.json"): base64.b64encode(b"{}").decode()}
    assert result["missing"] == [str(opt / "homelab" / "later")]
    assert result["nonempty_dirs"] == [str(opt / "homelab")]


@as_root
def test_dirs_below_a_planted_link_are_reported_not_followed(run_module, tmp_path):
    empty = tmp_path / "outside-empty"
    empty.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, 1000, 1000)
    (data / "db").symlink_to(tmp_path)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    with deadline():
        result = run_module(read_files, {"paths": [], "dirs": [str(data / "db" / "outside-empty"), str(fifo),
                                                               str(data / "none")]})

    # Followed, the empty directory would not be listed; the link is not followed, so it counts as holding something.
    assert result["failed"] is False
    assert result["nonempty_dirs"] == [str(data / "db" / "outside-empty"), str(fifo)]
