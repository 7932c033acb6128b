# Copyright (c) 2025, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.homelab.core.plugins.modules import docker_daemon_config

NVIDIA = {"path": "nvidia-container-runtime", "runtimeArgs": []}


@pytest.fixture
def daemon_json(tmp_path):
    """Path of a daemon.json in its own directory, so tests can list what the module leaves next to it."""
    (tmp_path / "docker").mkdir()
    return tmp_path / "docker" / "daemon.json"


@pytest.fixture
def run(run_module, daemon_json):
    """Run the module against ``daemon_json`` with the given options."""

    def _run(**args):
        return run_module(docker_daemon_config, dict(path=str(daemon_json), **args))

    return _run


def write_json(path, config, mode=0o644):
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    os.chmod(path, mode)


def script(tmp_path, name, body):
    """Write an executable shell script for ``validate`` and return its path."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def test_merge_keeps_foreign_keys_and_runtimes(run, daemon_json):
    write_json(daemon_json, {"log-driver": "local", "runtimes": {"crun": {"path": "/usr/bin/crun"}}})

    result = run(settings={"runtimes": {"nvidia": NVIDIA}, "default-runtime": "nvidia"})

    expected = {
        "log-driver": "local",
        "runtimes": {"crun": {"path": "/usr/bin/crun"}, "nvidia": NVIDIA},
        "default-runtime": "nvidia",
    }
    assert result["changed"] is True
    assert result["config"] == expected
    assert json.loads(daemon_json.read_text()) == expected


def test_deep_merge_keeps_key_order_and_appends_new_keys(run, daemon_json):
    write_json(daemon_json, {"b": 1, "runtimes": {"nvidia": {"runtimeArgs": ["--debug"], "path": "old"}}, "a": [1]})

    run(settings={"runtimes": {"nvidia": {"path": "new", "env": {"X": "1"}}}, "c": True})

    assert daemon_json.read_text() == (
        "{\n"
        '  "b": 1,\n'
        '  "runtimes": {\n'
        '    "nvidia": {\n'
        '      "runtimeArgs": [\n'
        '        "--debug"\n'
        "      ],\n"
        '      "path": "new",\n'
        '      "env": {\n'
        '        "X": "1"\n'
        "      }\n"
        "    }\n"
        "  },\n"
        '  "a": [\n'
        "    1\n"
        "  ],\n"
        '  "c": true\n'
        "}\n"
    )


@pytest.mark.parametrize(
    "before, settings, after",
    [
        ({"dns": ["1.1.1.1", "8.8.8.8"]}, {"dns": ["9.9.9.9"]}, {"dns": ["9.9.9.9"]}),
        ({"log-opts": {"max-size": "10m"}}, {"log-opts": "none"}, {"log-opts": "none"}),
        ({"log-opts": "none"}, {"log-opts": {"max-file": "3"}}, {"log-opts": {"max-file": "3"}}),
        ({"debug": 1}, {"debug": True}, {"debug": True}),
    ],
    ids=["list-replaces-list", "scalar-replaces-dict", "dict-replaces-scalar", "true-is-not-1"],
)
def test_non_dict_values_replace(run, daemon_json, before, settings, after):
    write_json(daemon_json, before)

    result = run(settings=settings)

    assert result["changed"] is True
    assert daemon_json.read_text() == json.dumps(after, indent=2) + "\n"


def test_remove_keys_top_level_and_nested_path(run, daemon_json):
    write_json(daemon_json, {"default-runtime": "nvidia", "debug": True, "runtimes": {"nvidia": NVIDIA, "crun": {}}})

    result = run(remove_keys=["default-runtime", ["runtimes", "nvidia"]])

    assert result["changed"] is True
    assert json.loads(daemon_json.read_text()) == {"debug": True, "runtimes": {"crun": {}}}


def test_remove_keys_runs_before_settings_so_a_subtree_is_replaced(run, daemon_json):
    write_json(daemon_json, {"runtimes": {"nvidia": {"path": "old", "runtimeArgs": ["--stale"]}}})

    result = run(remove_keys=[["runtimes", "nvidia"]], settings={"runtimes": {"nvidia": {"path": "new"}}})

    assert result["config"] == {"runtimes": {"nvidia": {"path": "new"}}}


def test_remove_missing_keys_is_no_change(run, daemon_json):
    write_json(daemon_json, {"debug": True, "runtimes": {"crun": {}}, "dns": ["1.1.1.1"]})
    before = daemon_json.read_bytes()

    result = run(remove_keys=["absent", ["runtimes", "nvidia"], ["debug", "deeper"], ["dns", "0"], ["x", "y", "z"]])

    assert result["changed"] is False
    assert daemon_json.read_bytes() == before


@pytest.mark.parametrize("entry", [5, [], ["runtimes", 3], {"runtimes": "nvidia"}])
def test_remove_keys_rejects_other_entries(run, daemon_json, entry):
    write_json(daemon_json, {"debug": True})

    result = run(remove_keys=[entry])

    assert result["failed"] is True
    assert result["msg"].startswith("remove_keys entries must be a key or a non-empty list of keys, got ")


def test_same_content_in_other_formatting_is_not_rewritten(run, daemon_json):
    daemon_json.write_text('{"runtimes":{"nvidia":{"runtimeArgs":[],"path":"nvidia-container-runtime"}},"debug":true}')
    os.chmod(daemon_json, 0o644)
    before = daemon_json.read_bytes()
    stat_before = os.stat(daemon_json)

    result = run(settings={"debug": True, "runtimes": {"nvidia": NVIDIA}})

    stat_after = os.stat(daemon_json)
    assert result["changed"] is False
    assert "backup_file" not in result
    assert daemon_json.read_bytes() == before
    assert (stat_after.st_ino, stat_after.st_mtime_ns) == (stat_before.st_ino, stat_before.st_mtime_ns)
    assert os.listdir(daemon_json.parent) == ["daemon.json"]


def test_check_mode_reports_change_and_writes_nothing(run, daemon_json, tmp_path):
    write_json(daemon_json, {"debug": False})
    before = daemon_json.read_bytes()
    failing = script(tmp_path, "reject.sh", "exit 1")

    result = run(settings={"debug": True}, validate="%s %%s" % failing, _ansible_check_mode=True)

    assert result["changed"] is True
    assert result["config"] == {"debug": True}
    assert "backup_file" not in result
    assert daemon_json.read_bytes() == before
    assert os.listdir(daemon_json.parent) == ["daemon.json"]


def test_check_mode_on_missing_directory_creates_nothing(run_module, tmp_path):
    path = tmp_path / "etc" / "docker" / "daemon.json"

    result = run_module(docker_daemon_config, dict(path=str(path), settings={"debug": True}, _ansible_check_mode=True))

    assert result["changed"] is True
    assert not (tmp_path / "etc").exists()


def test_diff_shows_file_text_before_and_after(run, daemon_json):
    daemon_json.write_text('{"debug": false}')

    result = run(settings={"debug": True}, _ansible_diff=True)

    assert result["diff"] == {
        "before": '{"debug": false}',
        "after": '{\n  "debug": true\n}\n',
        "before_header": str(daemon_json),
        "after_header": str(daemon_json),
    }


def test_diff_without_change_shows_the_file_unchanged(run, daemon_json):
    daemon_json.write_text('{"debug": true}')
    os.chmod(daemon_json, 0o644)

    result = run(settings={"debug": True}, _ansible_diff=True)

    assert result["changed"] is False
    assert result["diff"]["before"] == result["diff"]["after"] == '{"debug": true}'


@pytest.mark.parametrize(
    "content, reason",
    [
        (b'{\n    "debug": true\n    "dns": []\n}\n', "is not valid JSON (Expecting ',' delimiter: line 3 column 5)"),
        (b'["debug"]\n', "is not a JSON object (its top level is an array)"),
        (b'"debug"', "is not a JSON object (its top level is a string)"),
        (b'\xff{"debug": true}', "is not valid JSON (not UTF-8 at byte 0)"),
    ],
    ids=["syntax-error", "array", "string", "not-utf8"],
)
def test_unparsable_file_fails_and_is_left_alone(run, daemon_json, content, reason):
    daemon_json.write_bytes(content)
    os.chmod(daemon_json, 0o600)

    result = run(settings={"debug": False}, _ansible_diff=True)

    assert result["failed"] is True
    assert result["msg"] == "%s %s; fix or remove it, it was left unchanged." % (daemon_json, reason)
    assert daemon_json.read_bytes() == content
    assert stat.S_IMODE(os.stat(daemon_json).st_mode) == 0o600
    assert os.listdir(daemon_json.parent) == ["daemon.json"]


def test_unreadable_path_fails(run, daemon_json):
    daemon_json.mkdir()

    result = run(settings={"debug": True})

    assert result["failed"] is True
    assert result["msg"] == "Could not read %s: Is a directory." % daemon_json


def test_missing_file_and_directory_are_created(run_module, tmp_path):
    path = tmp_path / "etc" / "docker" / "daemon.json"

    umask = os.umask(0o077)  # the modes below must not come from a lenient umask
    try:
        result = run_module(docker_daemon_config, dict(path=str(path), settings={"runtimes": {"nvidia": NVIDIA}}))
    finally:
        os.umask(umask)

    assert result["changed"] is True
    assert "backup_file" not in result
    assert json.loads(path.read_text()) == {"runtimes": {"nvidia": NVIDIA}}
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_missing_file_with_nothing_to_set_is_not_created(run, daemon_json):
    result = run(remove_keys=["debug"])

    assert result == {"changed": False, "differs": False, "config": {}, "failed": False}
    assert not daemon_json.exists()


@pytest.mark.parametrize("content", ["", " \n\t\n"], ids=["empty", "whitespace"])
def test_blank_file_counts_as_empty_object(run, daemon_json, content):
    daemon_json.write_text(content)
    os.chmod(daemon_json, 0o644)

    unchanged = run(remove_keys=["debug"])
    assert unchanged["changed"] is False
    assert daemon_json.read_text() == content

    changed = run(settings={"debug": True})
    assert changed["changed"] is True
    assert daemon_json.read_text() == '{\n  "debug": true\n}\n'


def test_backup_keeps_old_content(run, daemon_json):
    write_json(daemon_json, {"debug": False})
    before = daemon_json.read_bytes()

    result = run(settings={"debug": True})

    backup = result["backup_file"]
    assert os.path.dirname(backup) == str(daemon_json.parent)
    assert open(backup, "rb").read() == before
    assert sorted(os.listdir(daemon_json.parent)) == sorted(["daemon.json", os.path.basename(backup)])


def test_no_backup_when_disabled(run, daemon_json):
    write_json(daemon_json, {"debug": False})

    result = run(settings={"debug": True}, backup=False)

    assert "backup_file" not in result
    assert os.listdir(daemon_json.parent) == ["daemon.json"]


def test_failing_validate_leaves_file_untouched(run, daemon_json, tmp_path):
    write_json(daemon_json, {"debug": False})
    before = daemon_json.read_bytes()
    reject = script(tmp_path, "reject.sh", 'echo "unknown key: bogus in $1" >&2\nexit 3')

    result = run(settings={"bogus": True}, validate="%s %%s" % reject)

    assert result["failed"] is True
    assert result["rc"] == 3
    assert result["msg"].startswith("Validation of the new %s failed (rc=3): unknown key: bogus in " % daemon_json)
    assert daemon_json.read_bytes() == before
    assert os.listdir(daemon_json.parent) == ["daemon.json"]


def test_passing_validate_sees_the_new_content_next_to_the_file(run, daemon_json, tmp_path):
    write_json(daemon_json, {"debug": False})
    seen = tmp_path / "seen"
    accept = script(tmp_path, "accept.sh", 'echo "$2" > "%s.path"\ncp "$2" "%s.json"' % (seen, seen))

    result = run(settings={"debug": True}, validate="%s --config-file %%s" % accept, backup=False)

    assert result["changed"] is True
    validated = (tmp_path / "seen.path").read_text().strip()
    assert os.path.dirname(validated) == str(daemon_json.parent)
    assert (tmp_path / "seen.json").read_text() == daemon_json.read_text() == '{\n  "debug": true\n}\n'
    assert os.listdir(daemon_json.parent) == ["daemon.json"]


def test_validate_without_placeholder_fails(run, daemon_json):
    write_json(daemon_json, {"debug": False})
    before = daemon_json.read_bytes()

    result = run(settings={"debug": True}, validate="true")

    assert result["failed"] is True
    assert result["msg"] == "validate must contain %s, got 'true'."
    assert daemon_json.read_bytes() == before


@pytest.mark.parametrize("check_mode", [False, True], ids=["real", "check"])
def test_mode_change_alone_reports_changed(run, daemon_json, check_mode):
    write_json(daemon_json, {"debug": True}, mode=0o600)
    before = daemon_json.read_bytes()

    result = run(settings={"debug": True}, _ansible_check_mode=check_mode)

    assert result["changed"] is True
    assert "backup_file" not in result
    assert daemon_json.read_bytes() == before
    assert stat.S_IMODE(os.stat(daemon_json).st_mode) == (0o600 if check_mode else 0o644)


def test_differs_follows_content_and_mode_in_check_mode(run, daemon_json):
    # The docker role's check before the install hides `changed`; the merge runs only when `differs`.
    write_json(daemon_json, {"debug": True}, mode=0o644)
    assert run(settings={"debug": True}, mode="0644", _ansible_check_mode=True)["differs"] is False
    assert run(settings={"debug": False}, mode="0644", _ansible_check_mode=True)["differs"] is True
    os.chmod(daemon_json, 0o600)
    assert run(settings={"debug": True}, mode="0644", _ansible_check_mode=True)["differs"] is True
    assert os.stat(daemon_json).st_mode & 0o777 == 0o600
