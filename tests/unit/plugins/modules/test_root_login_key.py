# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""homelab.core.root_login_key, with the real ssh-keygen, on files in a temporary directory."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.homelab.core.plugins.modules import root_login_key

OPTIONS = 'from="172.31.250.0/24",restrict,pty'
FOREIGN = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIForeignKeyOfTheUser user@laptop"
OLD_ENTRY = OPTIONS + " ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAnOldPairARestoreReplaced coolify"


@pytest.fixture
def paths(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    return {"path": str(keys / "id.root@host.docker.internal"), "authorized_keys": str(tmp_path / "ssh" / "authorized_keys")}


def args(paths, **changes):
    value = dict(paths, owner=str(os.getuid()), group=str(os.getgid()), comment="coolify@box", key_options=OPTIONS,
                 marker="coolify")
    value.update(changes)
    return value


def test_a_new_pair_logs_in_with_its_one_fenced_entry_and_a_second_call_changes_nothing(run_module, paths):
    result = run_module(root_login_key, args(paths))
    assert result["changed"] is True and result["ssh_keygen_missing"] is False
    public = open(paths["path"] + ".pub", encoding="utf-8").read().split()
    assert public[0] == "ssh-ed25519" and result["public_key"] == " ".join(public[:2])
    assert stat.S_IMODE(os.stat(paths["path"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(paths["path"] + ".pub").st_mode) == 0o644
    assert open(paths["authorized_keys"], encoding="utf-8").read() == "%s %s coolify\n" % (OPTIONS, result["public_key"])
    assert stat.S_IMODE(os.stat(paths["authorized_keys"]).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(paths["authorized_keys"])).st_mode) == 0o700

    again = run_module(root_login_key, args(paths))
    assert again["changed"] is False and again["public_key"] == result["public_key"]


def test_other_entries_of_the_service_are_taken_back_and_the_users_own_are_kept(run_module, paths):
    os.makedirs(os.path.dirname(paths["authorized_keys"]))
    with open(paths["authorized_keys"], "w", encoding="utf-8") as stream:
        stream.write("%s\n%s\n" % (FOREIGN, OLD_ENTRY))

    result = run_module(root_login_key, args(paths, _ansible_diff=True))

    lines = open(paths["authorized_keys"], encoding="utf-8").read().splitlines()
    assert lines == [FOREIGN, "%s %s coolify" % (OPTIONS, result["public_key"])]
    assert OLD_ENTRY in result["diff"]["before"] and OLD_ENTRY not in result["diff"]["after"]


def test_an_existing_pair_is_kept_and_a_lost_public_half_is_derived_from_it(run_module, paths):
    first = run_module(root_login_key, args(paths))
    private = open(paths["path"], encoding="utf-8").read()
    os.remove(paths["path"] + ".pub")

    result = run_module(root_login_key, args(paths))

    assert result["changed"] is True and result["public_key"] == first["public_key"]
    assert open(paths["path"], encoding="utf-8").read() == private


def test_absent_takes_back_every_entry_of_the_service_and_keeps_the_pair(run_module, paths):
    run_module(root_login_key, args(paths))
    with open(paths["authorized_keys"], "a", encoding="utf-8") as stream:
        stream.write("%s\n%s\n" % (FOREIGN, OLD_ENTRY))

    result = run_module(root_login_key, args(paths, state="absent"))

    assert result["changed"] is True
    assert open(paths["authorized_keys"], encoding="utf-8").read() == FOREIGN + "\n"
    assert os.path.exists(paths["path"]) and os.path.exists(paths["path"] + ".pub")
    assert run_module(root_login_key, args(paths, state="absent"))["changed"] is False


def test_check_mode_predicts_the_pair_and_its_entry_and_writes_nothing(run_module, paths):
    result = run_module(root_login_key, args(paths, _ansible_check_mode=True))
    assert result["changed"] is True
    assert not os.path.exists(paths["path"]) and not os.path.exists(paths["authorized_keys"])


def test_without_ssh_keygen_nothing_changes_and_the_caller_is_told(run_module, paths, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(root_login_key.AnsibleModule, "get_bin_path", lambda self, name, *rest, **kw: None)
    result = run_module(root_login_key, args(paths))
    assert result["changed"] is False and result["ssh_keygen_missing"] is True
    assert not os.path.exists(paths["path"]) and not os.path.exists(paths["authorized_keys"])


def test_a_marker_must_be_one_word(run_module, paths):
    result = run_module(root_login_key, args(paths, marker="two words"))
    assert result["failed"] is True and result["msg"] == "marker must be one word, such as coolify"
