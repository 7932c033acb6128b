"""The backup role's host tool (roles/backup/files/homelab-backup.py) on real files, with the real tar and age.

The PostgreSQL and Redis steps need their servers; they run in the stack scenario
(molecule/stack/tests/test_stack_restore.py), against the real images.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess

import pytest

TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "backup", "files", "homelab-backup.py")


@pytest.fixture(name="tool")
def fixture_tool():
    spec = importlib.util.spec_from_file_location("homelab_backup", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(name="host")
def fixture_host(tmp_path):
    """A project root with data, secrets and a plan, and an age key pair."""
    root = tmp_path / "opt" / "homelab"
    data = root / "data"
    (data / "n8n").mkdir(parents=True)
    (data / "n8n" / "database.sqlite").write_bytes(os.urandom(50_000))
    (data / "n8n" / "config").write_text('{"encryptionKey": "n8n-key-value"}')
    (data / "open-webui").mkdir()
    (data / "open-webui" / "webui.db").write_bytes(os.urandom(20_000))
    os.chmod(data / "open-webui" / "webui.db", 0o640)
    (data / "coolify-db").mkdir()
    (data / "coolify-db" / "PG_VERSION").write_text("16\n")
    (data / "ollama" / "models" / "blobs").mkdir(parents=True)
    (data / "ollama" / "models" / "blobs" / "sha256-0").write_bytes(b"model blob")
    (data / "ollama" / "id_ed25519").write_text("ollama key")
    (root / "secrets").mkdir(mode=0o700)
    (root / "secrets" / "main-stack.json").write_text('{"coolify_db_password": "db-password-value"}')
    identity = tmp_path / "identity.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(identity)], check=True, capture_output=True, text=True).stdout.strip()
    config = {
        "destination": str(tmp_path / "backups"),
        "keep": 2,
        "recipients": [recipient],
        "root": str(root),
        "data_root": str(data),
        "exclude": ["coolify-db", "ollama/models", "n8n/config"],
        "secret_paths": ["secrets", "data/n8n/config"],
        "postgres": [],
        "redis": [],
        "stacks": [],
        "collection_version": "1.2.3",
    }
    config_path = tmp_path / "backup.json"
    config_path.write_text(json.dumps(config))
    return {"root": root, "data": data, "config": config, "config_path": str(config_path), "identity": str(identity),
            "destination": tmp_path / "backups"}


def call(tool, host, *argv):
    """The tool's main() as the role runs it: its JSON result, or (exit code, stderr)."""
    return tool.main(["--config", host["config_path"], *argv])


def backup(tool, host, capsys):
    assert call(tool, host, "begin") == 0
    name = json.loads(capsys.readouterr().out)["name"]
    for step in ("postgres", "redis", "files", "secrets", "manifest"):
        assert call(tool, host, step, "--run", name) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert call(tool, host, "finish", "--run", name) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_a_backup_is_verified_has_a_manifest_and_keeps_secrets_only_encrypted(tool, host, capsys):
    result = backup(tool, host, capsys)
    path = host["destination"] / result["name"]
    assert result["path"] == str(path)
    assert not list(host["destination"].glob("*.partial"))
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["collection_version"] == "1.2.3"
    assert sorted(manifest["files"]) == ["data.tar.gz", "secrets.tar.age"]
    for name, item in manifest["files"].items():
        assert item["size"] == (path / name).stat().st_size
        assert item["sha256"] == tool.sha256_of(path / name)
    assert [step["component"].split()[0] for step in manifest["components"]] == ["files", "secrets"]
    assert result["table"][0].split() == ["component", "size", "seconds"]
    assert result["table"][-1] == "backup: %s" % path
    assert oct(host["destination"].stat().st_mode & 0o777) == "0o700"

    listing = subprocess.run(["tar", "-tzf", str(path / "data.tar.gz")], check=True, capture_output=True, text=True).stdout
    assert "./n8n/database.sqlite" in listing and "./ollama/id_ed25519" in listing
    assert "coolify-db" not in listing and "ollama/models" not in listing and "n8n/config" not in listing
    for archive in path.iterdir():
        content = archive.read_bytes()
        assert b"db-password-value" not in content and b"n8n-key-value" not in content


def test_files_and_secrets_come_back_byte_for_byte_with_modes(tool, host, capsys, tmp_path):
    result = backup(tool, host, capsys)
    before = {name: (host["data"] / name).read_bytes() for name in ("n8n/database.sqlite", "open-webui/webui.db")}
    shutil.rmtree(host["root"])

    assert tool.main(["restore-check", "--destination", str(host["destination"]), "--root", str(host["root"])]) == 0
    check = json.loads(capsys.readouterr().out)
    assert check["name"] == result["name"] and check["already_restored"] is False
    assert tool.main(["restore-secrets", "--destination", str(host["destination"]), "--name", check["name"],
                      "--root", str(host["root"]), "--identity", host["identity"]]) == 0
    assert call(tool, host, "restore-files") == 0, capsys.readouterr().err
    for name, content in before.items():
        assert (host["data"] / name).read_bytes() == content
    assert oct((host["data"] / "open-webui" / "webui.db").stat().st_mode & 0o777) == "0o640"
    assert json.loads((host["root"] / "secrets" / "main-stack.json").read_text()) == {"coolify_db_password": "db-password-value"}
    assert (host["data"] / "n8n" / "config").read_text() == '{"encryptionKey": "n8n-key-value"}'
    assert oct((host["root"] / "secrets").stat().st_mode & 0o777) == "0o700"


def test_a_tampered_backup_is_refused_naming_the_file(tool, host, capsys):
    result = backup(tool, host, capsys)
    archive = host["destination"] / result["name"] / "data.tar.gz"
    content = bytearray(archive.read_bytes())
    content[len(content) // 2] ^= 0x01
    archive.write_bytes(bytes(content))
    assert tool.main(["restore-check", "--destination", str(host["destination"]), "--root", str(host["root"])]) == 1
    error = capsys.readouterr().err
    assert "is damaged and is not restored, nothing was changed: data.tar.gz does not match its sha256" in error
    assert call(tool, host, "restore-files", "--name", result["name"]) == 1
    assert "damaged" in capsys.readouterr().err


def test_a_missing_or_extra_file_is_refused(tool, host, capsys):
    result = backup(tool, host, capsys)
    path = host["destination"] / result["name"]
    (path / "secrets.tar.age").unlink()
    (path / "extra.txt").write_text("x")
    problems, _manifest = tool.verify_dir(str(path))
    assert problems == ["secrets.tar.age is missing", "extra.txt is not in the manifest"]


def test_only_backup_keep_backups_stay_and_pruning_waits_for_a_verified_one(tool, host, capsys):
    names = [backup(tool, host, capsys)["name"] for _attempt in range(3)]
    assert tool.completed(str(host["destination"])) == names[1:]
    # A backup that fails to verify is not renamed and prunes nothing.
    assert call(tool, host, "begin") == 0
    name = json.loads(capsys.readouterr().out)["name"]
    for step in ("files", "secrets", "manifest"):
        assert call(tool, host, step, "--run", name) == 0
    (host["destination"] / (name + ".partial") / "data.tar.gz").write_bytes(b"truncated")
    capsys.readouterr()
    assert call(tool, host, "finish", "--run", name) == 1
    assert "does not verify" in capsys.readouterr().err
    assert tool.completed(str(host["destination"])) == names[1:]
    # The next begin clears the unfinished one (and starts its own, empty).
    assert call(tool, host, "begin") == 0
    assert "removing %s.partial, left by a backup that did not finish" % name in capsys.readouterr().err
    partials = list(host["destination"].glob("*.partial"))
    assert len(partials) == 1 and not list(partials[0].iterdir())


def test_secrets_need_a_recipient_and_restore_needs_the_identity(tool, host, capsys):
    host["config"]["recipients"] = []
    with open(host["config_path"], "w", encoding="utf-8") as stream:
        json.dump(host["config"], stream)
    assert call(tool, host, "begin") == 0
    name = json.loads(capsys.readouterr().out)["name"]
    assert call(tool, host, "secrets", "--run", name) == 1
    assert "backup_age_recipients is empty" in capsys.readouterr().err
    assert tool.main(["restore-secrets", "--destination", str(host["destination"]), "--name", "nothing",
                      "--root", str(host["root"]), "--identity", "/nonexistent"]) == 1
    assert tool.main(["restore-check", "--destination", str(host["destination"] / "none"), "--root", str(host["root"])]) == 1
    assert "no completed backup in" in capsys.readouterr().err


def test_all_runs_every_step_and_a_failure_leaves_no_partial_backup(tool, host, capsys, monkeypatch):
    assert call(tool, host, "all") == 0
    result = json.loads(capsys.readouterr().out)
    assert tool.completed(str(host["destination"])) == [result["name"]]
    assert result["offsite"] == {"copied": False}

    def broken(_config, _args):
        raise tool.Failure("tar of the data tree failed")

    monkeypatch.setattr(tool, "step_files", broken)
    assert call(tool, host, "all") == 1
    assert "tar of the data tree failed" in capsys.readouterr().err
    assert not list(host["destination"].glob("*.partial"))
    assert tool.completed(str(host["destination"])) == [result["name"]]


def test_the_offsite_copy_uses_rsync(tool, host, capsys, tmp_path):
    host["config"]["offsite_target"] = str(tmp_path / "offsite")
    (tmp_path / "offsite").mkdir()
    with open(host["config_path"], "w", encoding="utf-8") as stream:
        json.dump(host["config"], stream)
    result = backup(tool, host, capsys)
    assert call(tool, host, "offsite", "--run", result["name"]) == 0
    copied = tmp_path / "offsite" / result["name"] / "manifest.json"
    assert copied.read_bytes() == (host["destination"] / result["name"] / "manifest.json").read_bytes()


def test_sql_quoting_and_redis_replies(tool):
    assert tool.sql_literal("it's") == "'it''s'"
    assert tool.sql_identifier('a"b') == '"a""b"'
    assert tool.redis_value("(integer) 1733203200") == "1733203200"
    assert tool.redis_value('"yes"') == "yes"
    assert tool.human(1536) == "1.5 KiB"


def test_a_rolled_back_services_data_comes_back_and_what_was_there_is_kept(tool, host, capsys):
    result = backup(tool, host, capsys)
    ollama = host["data"] / "ollama"
    (ollama / "id_ed25519").write_text("migrated by a new version")
    (ollama / "MIGRATED").write_text("schema 2")
    assert call(tool, host, "restore-data", "--name", result["name"], "--path", "ollama") == 0, capsys.readouterr().err
    assert (ollama / "id_ed25519").read_text() == "ollama key"
    assert not (ollama / "MIGRATED").exists()
    # The models are not in the archive: they move back from the kept copy.
    assert (ollama / "models" / "blobs" / "sha256-0").read_bytes() == b"model blob"
    kept = host["data"] / ("ollama.before-rollback-%s" % result["name"])
    assert (kept / "MIGRATED").read_text() == "schema 2"
    # A path the backup does not hold moves nothing.
    capsys.readouterr()
    assert call(tool, host, "restore-data", "--name", result["name"], "--path", "nothing-here") == 1
    assert "holds no nothing-here; nothing was moved" in capsys.readouterr().err
