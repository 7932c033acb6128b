# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import base64

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
