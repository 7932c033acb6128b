"""The backup role's host tool (roles/backup/files/homelab-backup.py) on real files, with the real tar, age and SQLite.

The PostgreSQL and Redis steps need their servers; they run in the stack-lifecycle scenario
(molecule/stack-lifecycle/tests/test_stack_restore.py), against the real images.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time

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
    """A project root with data, secrets, SQLite databases and a plan; the user's and the host's age key pairs."""
    root = tmp_path / "opt" / "homelab"
    data = root / "data"
    (data / "n8n").mkdir(parents=True)
    # As on a host, the services' users (n8n's uid 1000) can reach their directories.
    for directory in [data, *data.parents]:
        if str(directory).startswith("/tmp/") or str(directory) == "/tmp":
            os.chmod(directory, 0o1777 if str(directory) == "/tmp" else 0o755)
    make_database(data / "n8n" / "database.sqlite", rows=200)
    os.chown(data / "n8n", 1000, 1000)
    os.chown(data / "n8n" / "database.sqlite", 1000, 1000)
    os.chmod(data / "n8n" / "database.sqlite", 0o644)
    (data / "n8n" / "config").write_text('{"encryptionKey": "n8n-key-value"}')
    (data / "open-webui").mkdir()
    (data / "open-webui" / "uploads.bin").write_bytes(os.urandom(20_000))
    os.chmod(data / "open-webui" / "uploads.bin", 0o640)
    (data / "coolify" / "ssh" / "keys").mkdir(parents=True)
    (data / "coolify" / "ssh" / "keys" / "id.root@host.docker.internal").write_text(PRIVATE_KEY)
    (data / "coolify-db").mkdir()
    (data / "coolify-db" / "PG_VERSION").write_text("16\n")
    (data / "redis").mkdir()
    (data / "ollama" / "models" / "blobs").mkdir(parents=True)
    (data / "ollama" / "models" / "blobs" / "sha256-0").write_bytes(b"model blob")
    (data / "ollama" / "id_ed25519").write_text("ollama key")
    (root / "secrets").mkdir(mode=0o700)
    (root / "secrets" / "main-stack.json").write_text('{"coolify_db_password": "db-password-value"}')
    identity, recipient = key_pair(tmp_path / "identity.txt")
    host_identity, host_recipient = key_pair(tmp_path / "etc" / "backup-host-identity.txt")
    config = {
        "destination": str(tmp_path / "backups"),
        "keep": 2,
        "recipients": [recipient, host_recipient],
        "host_identity": host_identity,
        "root": str(root),
        "data_root": str(data),
        "exclude": ["coolify-db", "ollama/models", "n8n/config", "redis"],
        "secret_paths": ["secrets", "data/n8n/config"],
        "sqlite": ["n8n/database.sqlite", "open-webui/webui.db"],
        "postgres": [],
        "redis": [],
        "stacks": [],
        "collection_version": "1.2.3",
        "lock_timeout": 0,
    }
    config_path = tmp_path / "backup.json"
    config_path.write_text(json.dumps(config))
    return {"root": root, "data": data, "config": config, "config_path": str(config_path), "identity": identity,
            "host_identity": host_identity, "destination": tmp_path / "backups"}


PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAtest-coolify-root-key\n-----END OPENSSH PRIVATE KEY-----\n"


def key_pair(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(path)], check=True, capture_output=True, text=True).stdout.strip()
    return str(path), recipient


def make_database(path, rows):
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS workflow (id INTEGER PRIMARY KEY, body TEXT)")
        connection.executemany("INSERT INTO workflow (body) VALUES (?)", [("workflow %d %s" % (row, "x" * 200),) for row in range(rows)])
    connection.close()


def rows_of(path):
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return connection.execute("SELECT count(*) FROM workflow").fetchone()[0]
    finally:
        connection.close()


def write_config(host):
    with open(host["config_path"], "w", encoding="utf-8") as stream:
        json.dump(host["config"], stream)


def call(tool, host, *argv):
    """The tool's main() as the role runs it: its JSON result, or (exit code, stderr)."""
    return tool.main(["--config", host["config_path"], *argv])


def backup(tool, host, capsys):
    assert call(tool, host, "all") == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def plaintexts(path):
    """Every file of a backup as stored, and gunzipped where that works: what a reader of the NAS gets."""
    for item in sorted(path.rglob("*")):
        if item.is_file():
            content = item.read_bytes()
            yield item.name, content
            unzipped = subprocess.run(["gzip", "-dc"], input=content, capture_output=True, check=False)
            if unzipped.returncode == 0:
                yield item.name + " (gunzipped)", unzipped.stdout


def decrypted(path, identity):
    return subprocess.run(["age", "--decrypt", "--identity", identity, str(path)], check=True, capture_output=True).stdout


def test_every_file_but_the_manifest_is_encrypted_and_no_secret_is_readable(tool, host, capsys):
    result = backup(tool, host, capsys)
    path = host["destination"] / result["name"]
    assert result["path"] == str(path) and result["whole"] is True
    assert not list(host["destination"].glob("*.partial"))
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format"] == 2 and manifest["collection_version"] == "1.2.3"
    assert sorted(manifest["files"]) == ["data.tar.gz.age", "secrets.tar.age", "sqlite/n8n/database.sqlite.age"]
    assert manifest["sqlite"] == {"n8n/database.sqlite": {"uid": 1000, "gid": 1000, "mode": "0644"}}
    for name, item in manifest["files"].items():
        assert item["size"] == (path / name).stat().st_size
        assert item["sha256"] == tool.sha256_of(path / name)
    assert [step["component"].split()[0] for step in manifest["components"]] == ["sqlite", "files", "secrets"]
    assert result["table"][-1] == "backup: %s" % path
    assert oct(host["destination"].stat().st_mode & 0o777) == "0o700"

    secrets = [PRIVATE_KEY.encode(), b"b3BlbnNzaC1rZXktdjEAAAAAtest-coolify-root-key", b"db-password-value", b"n8n-key-value",
               b"workflow 7 xxxx"]
    for name, content in plaintexts(path):
        for secret in secrets:
            assert secret not in content, "%s holds %r" % (name, secret)
    # Not a scan that cannot fail: the same bytes are there once decrypted, with either identity.
    for identity in (host["identity"], host["host_identity"]):
        archive = subprocess.run(["tar", "-tvz"], input=decrypted(path / "data.tar.gz.age", identity), capture_output=True, check=True)
        assert b"./coolify/ssh/keys/id.root@host.docker.internal" in archive.stdout
    listing = subprocess.run(["tar", "-tz"], input=decrypted(path / "data.tar.gz.age", host["identity"]), capture_output=True,
                             check=True, text=False).stdout.decode()
    assert "./ollama/id_ed25519" in listing
    assert "coolify-db" not in listing and "ollama/models" not in listing and "n8n/config" not in listing
    assert "n8n/database.sqlite" not in listing


def test_files_secrets_and_sqlite_come_back_with_owners_and_modes(tool, host, capsys):
    result = backup(tool, host, capsys)
    before = (host["data"] / "open-webui" / "uploads.bin").read_bytes()
    shutil.rmtree(host["root"])

    assert tool.main(["restore-check", "--destination", str(host["destination"]), "--root", str(host["root"])]) == 0
    check = json.loads(capsys.readouterr().out)
    assert check["name"] == result["name"] and check["already_restored"] is False
    assert tool.main(["restore-secrets", "--destination", str(host["destination"]), "--name", check["name"],
                      "--root", str(host["root"]), "--identity", host["identity"]]) == 0
    # A fresh host: the host's own key is a new one, so the user's identity decrypts.
    host["config"]["host_identity"] = str(host["root"] / "no-such-identity")
    write_config(host)
    assert call(tool, host, "restore-files") == 1
    assert "no age identity to decrypt" in capsys.readouterr().err
    assert call(tool, host, "restore-files", "--identity", host["identity"]) == 0, capsys.readouterr().err
    assert (host["data"] / "open-webui" / "uploads.bin").read_bytes() == before
    assert oct((host["data"] / "open-webui" / "uploads.bin").stat().st_mode & 0o777) == "0o640"
    database = host["data"] / "n8n" / "database.sqlite"
    assert rows_of(database) == 200
    assert (database.stat().st_uid, database.stat().st_gid, oct(database.stat().st_mode & 0o777)) == (1000, 1000, "0o644")
    assert json.loads((host["root"] / "secrets" / "main-stack.json").read_text()) == {"coolify_db_password": "db-password-value"}
    assert (host["data"] / "n8n" / "config").read_text() == '{"encryptionKey": "n8n-key-value"}'
    assert (host["data"] / "coolify" / "ssh" / "keys" / "id.root@host.docker.internal").read_text() == PRIVATE_KEY
    assert oct((host["root"] / "secrets").stat().st_mode & 0o777) == "0o700"


def test_a_restored_database_drops_the_journal_of_the_one_it_replaces(tool, host, capsys):
    backup(tool, host, capsys)
    database = host["data"] / "n8n" / "database.sqlite"
    # A fresh converge's n8n made a database of its own; its WAL would be replayed onto the snapshot.
    database.unlink()
    live = sqlite3.connect(database)
    live.execute("PRAGMA journal_mode=WAL")
    live.execute("PRAGMA wal_autocheckpoint=0")
    live.execute("CREATE TABLE other (id INTEGER)")
    live.execute("INSERT INTO other VALUES (1)")
    live.commit()
    wal = (host["data"] / "n8n" / "database.sqlite-wal").read_bytes()
    live.close()
    (host["data"] / "n8n" / "database.sqlite-wal").write_bytes(wal)
    assert call(tool, host, "restore-files", "--identity", host["identity"]) == 0, capsys.readouterr().err
    assert not (host["data"] / "n8n" / "database.sqlite-wal").exists()
    assert rows_of(database) == 200


WRITER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], timeout=30)
deadline, written = time.monotonic() + float(sys.argv[2]), 0
while time.monotonic() < deadline:
    with connection:
        connection.executemany("INSERT INTO workflow (body) VALUES (?)", [("execution " + "y" * 500,)] * 50)
    written += 50
print(written)
"""


def test_sqlite_under_write_gives_a_consistent_snapshot(tool, host, capsys):
    """A writer in a process of its own (as n8n is) inserts without pause while the backup runs."""
    database = host["data"] / "n8n" / "database.sqlite"
    writer = subprocess.Popen(["python3", "-c", WRITER, str(database), "4"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        result = backup(tool, host, capsys)
        assert writer.poll() is None, "the writer stopped before the backup ended"
    finally:
        written = int(writer.communicate(timeout=60)[0])
    assert written > 0
    snapshot = host["data"].parent / "snapshot.sqlite"
    snapshot.write_bytes(decrypted(host["destination"] / result["name"] / "sqlite" / "n8n" / "database.sqlite.age", host["identity"]))
    assert 200 < rows_of(snapshot) < 200 + written


def test_the_snapshot_runs_as_the_databases_owner(tool, host, capsys):
    database = host["data"] / "n8n" / "database.sqlite"
    # No connection holds it: SQLite creates the -wal and -shm files as whoever opens it.
    backup(tool, host, capsys)
    for sidecar in host["data"].glob("n8n/*"):
        if sidecar.name.startswith("database.sqlite"):
            assert sidecar.stat().st_uid == 1000, sidecar
    assert not list(host["data"].glob("n8n/.homelab-backup-*"))
    assert rows_of(database) == 200


def test_a_tampered_backup_is_refused_naming_the_file(tool, host, capsys):
    result = backup(tool, host, capsys)
    archive = host["destination"] / result["name"] / "data.tar.gz.age"
    content = bytearray(archive.read_bytes())
    content[len(content) // 2] ^= 0x01
    archive.write_bytes(bytes(content))
    assert tool.main(["restore-check", "--destination", str(host["destination"]), "--root", str(host["root"])]) == 1
    error = capsys.readouterr().err
    assert "is damaged and is not restored, nothing was changed: data.tar.gz.age does not match its sha256" in error
    assert call(tool, host, "restore-files", "--name", result["name"]) == 1
    assert "damaged" in capsys.readouterr().err


def test_a_missing_or_extra_file_is_refused(tool, host, capsys):
    result = backup(tool, host, capsys)
    path = host["destination"] / result["name"]
    (path / "secrets.tar.age").unlink()
    (path / "extra.txt").write_text("x")
    problems, _manifest = tool.verify_dir(str(path))
    assert problems == ["secrets.tar.age is missing", "extra.txt is not in the manifest"]


def test_only_backup_keep_backups_stay_and_a_backup_that_does_not_verify_prunes_nothing(tool, host, capsys, monkeypatch):
    names = [backup(tool, host, capsys)["name"] for _attempt in range(3)]
    assert tool.completed(str(host["destination"])) == names[1:]
    manifest = tool.step_manifest

    def damaged(config, args):
        result = manifest(config, args)
        with open(os.path.join(tool.partial_path(config, args.run), "data.tar.gz.age"), "wb") as stream:
            stream.write(b"truncated")
        return result

    monkeypatch.setattr(tool, "step_manifest", damaged)
    assert call(tool, host, "all") == 1
    assert "does not verify" in capsys.readouterr().err
    assert tool.completed(str(host["destination"])) == names[1:]
    assert not list(host["destination"].glob("*.partial"))


def test_each_verified_backup_is_recorded_for_the_status_page_and_a_failed_one_is_not(tool, host, capsys, monkeypatch):
    first = backup(tool, host, capsys)
    status_file = host["data"] / "status" / "backup.json"
    record = json.loads(status_file.read_text())
    assert (record["name"], record["size"], record["whole"]) == (first["name"], first["size"], True)
    assert record["verified_at"] >= record["created"] and set(record) == {"name", "created", "size", "whole", "verified_at"}
    assert oct(status_file.stat().st_mode & 0o777) == "0o644" and oct(status_file.parent.stat().st_mode & 0o777) == "0o755"
    second = backup(tool, host, capsys)
    assert json.loads(status_file.read_text())["name"] == second["name"]
    # The record of the backup before it is never in a backup (a restore would bring back a wrong age).
    archive = decrypted(host["destination"] / second["name"] / "data.tar.gz.age", host["identity"])
    listed = subprocess.run(["tar", "-tz"], input=archive, capture_output=True, check=True).stdout.decode()
    assert "./status/" in listed.split() and "./status/backup.json" not in listed.split()

    def fail_secrets(_config, _args):
        raise tool.Failure("stop")
    monkeypatch.setattr(tool, "step_secrets", fail_secrets)
    assert call(tool, host, "all") == 1
    assert json.loads(status_file.read_text())["name"] == second["name"]


def test_an_abnormally_small_backup_is_kept_but_prunes_no_good_one(tool, host, capsys):
    good = [backup(tool, host, capsys)["name"] for _attempt in range(2)]
    # The data mount failed: the tree is (nearly) empty.
    shutil.rmtree(host["data"])
    host["data"].mkdir()
    small = [backup(tool, host, capsys) for _attempt in range(3)]
    for result in small:
        assert result["whole"] is False and result["pruned"] == []
        assert "under half of %s" % good[-1] in result["warning"] and "backup_force_prune: true" in result["warning"]
    assert tool.completed(str(host["destination"])) == good + [result["name"] for result in small]
    # The user says the data really shrank: that run prunes down to backup_keep.
    host["config"]["force_prune"] = True
    write_config(host)
    forced = backup(tool, host, capsys)
    assert forced["whole"] is True and forced["pruned"] == good + [small[0]["name"], small[1]["name"]]
    assert tool.completed(str(host["destination"])) == [small[2]["name"], forced["name"]]


def test_two_concurrent_runs_do_not_delete_each_others_work(tool, host, capsys, monkeypatch):
    files, started, release = tool.step_files, threading.Event(), threading.Event()
    outcome = {}

    def slow(config, args):
        started.set()
        release.wait(30)
        return files(config, args)

    monkeypatch.setattr(tool, "step_files", slow)
    first = threading.Thread(target=lambda: outcome.setdefault("first", call(tool, host, "all")))
    first.start()
    assert started.wait(30)
    partials = list(host["destination"].glob("*.partial"))
    assert len(partials) == 1
    # The second run (say the timer, during an update's backup) finds the lock held and fails with a sentence.
    monkeypatch.setattr(tool, "step_files", files)
    assert call(tool, host, "all") == 1
    error = capsys.readouterr().err
    assert "another homelab-backup run (a backup, pid %d" % os.getpid() in error and "holds %s" % (host["destination"] / ".lock") in error
    assert list(host["destination"].glob("*.partial")) == partials and list(partials[0].iterdir())
    # A second run that may wait does, then runs after the first.
    host["config"]["lock_timeout"] = 60
    write_config(host)
    second = threading.Thread(target=lambda: outcome.setdefault("second", call(tool, host, "all")))
    second.start()
    time.sleep(1.5)
    release.set()
    first.join(60)
    second.join(60)
    assert outcome == {"first": 0, "second": 0}
    assert len(tool.completed(str(host["destination"]))) == 2


def test_secrets_need_a_recipient_and_restore_needs_the_identity(tool, host, capsys):
    host["config"]["recipients"] = []
    write_config(host)
    assert call(tool, host, "all") == 1
    assert "backup_age_recipients is empty" in capsys.readouterr().err
    assert not list(host["destination"].glob("*.partial"))
    assert tool.main(["restore-secrets", "--destination", str(host["destination"]), "--name", "nothing",
                      "--root", str(host["root"]), "--identity", "/nonexistent"]) == 1
    assert tool.main(["restore-check", "--destination", str(host["destination"] / "none"), "--root", str(host["root"])]) == 1
    assert "no completed backup in" in capsys.readouterr().err


def test_a_failed_step_leaves_no_partial_backup(tool, host, capsys, monkeypatch):
    result = backup(tool, host, capsys)
    assert result["offsite"] == {"copied": False}

    def broken(_config, _args):
        raise tool.Failure("tar of the data tree failed")

    monkeypatch.setattr(tool, "step_files", broken)
    assert call(tool, host, "all") == 1
    assert "tar of the data tree failed" in capsys.readouterr().err
    assert not list(host["destination"].glob("*.partial"))
    assert tool.completed(str(host["destination"])) == [result["name"]]


def test_the_offsite_copy_uses_rsync_and_copies_only_ciphertext(tool, host, capsys, tmp_path):
    host["config"]["offsite_target"] = str(tmp_path / "offsite")
    (tmp_path / "offsite").mkdir()
    write_config(host)
    result = backup(tool, host, capsys)
    assert result["offsite"]["copied"] is True
    copied = tmp_path / "offsite" / result["name"]
    assert (copied / "manifest.json").read_bytes() == (host["destination"] / result["name"] / "manifest.json").read_bytes()
    for _name, content in plaintexts(copied):
        assert b"test-coolify-root-key" not in content


def test_sql_quoting_and_redis_replies(tool):
    assert tool.sql_literal("it's") == "'it''s'"
    assert tool.sql_identifier('a"b') == '"a""b"'
    assert tool.redis_value("(integer) 1733203200") == "1733203200"
    assert tool.redis_value('"yes"') == "yes"
    assert tool.human(1536) == "1.5 KiB"


def test_a_rolled_back_services_data_comes_back_with_the_hosts_key_and_what_was_there_is_kept(tool, host, capsys):
    result = backup(tool, host, capsys)
    ollama = host["data"] / "ollama"
    (ollama / "id_ed25519").write_text("migrated by a new version")
    (ollama / "MIGRATED").write_text("schema 2")
    # No --identity: an update's rollback decrypts with the host's own key.
    assert call(tool, host, "restore-data", "--name", result["name"], "--path", "ollama") == 0, capsys.readouterr().err
    assert (ollama / "id_ed25519").read_text() == "ollama key"
    assert not (ollama / "MIGRATED").exists()
    # The models are not in the archive: they move back from the kept copy.
    assert (ollama / "models" / "blobs" / "sha256-0").read_bytes() == b"model blob"
    kept = host["data"] / ("ollama.before-rollback-%s" % result["name"])
    assert (kept / "MIGRATED").read_text() == "schema 2"
    assert not list(host["data"].glob(".homelab-restore-*"))
    # A path the backup does not hold moves nothing.
    capsys.readouterr()
    assert call(tool, host, "restore-data", "--name", result["name"], "--path", "nothing-here") == 1
    assert "holds no nothing-here; nothing was moved" in capsys.readouterr().err


def test_a_rolled_back_sqlite_database_is_the_snapshot(tool, host, capsys):
    result = backup(tool, host, capsys)
    make_database(host["data"] / "n8n" / "database.sqlite", rows=5)
    assert call(tool, host, "restore-data", "--name", result["name"], "--path", "n8n") == 0, capsys.readouterr().err
    assert rows_of(host["data"] / "n8n" / "database.sqlite") == 200
    assert (host["data"] / "n8n").stat().st_uid == 1000
    assert rows_of(host["data"] / ("n8n.before-rollback-%s" % result["name"]) / "database.sqlite") == 205


def test_a_rollback_that_fails_half_way_and_runs_twice_never_deletes_the_original(tool, host, capsys, monkeypatch):
    result = backup(tool, host, capsys)
    ollama = host["data"] / "ollama"
    (ollama / "ORIGINAL").write_text("the data before the rollback")
    original = sorted(str(item.relative_to(ollama)) for item in ollama.rglob("*"))
    extract = tool.extract

    def half_way(config, args, backup_path, name, directory, *members, gzip=False):
        # Part of the tree is written, then the disk fills up.
        os.makedirs(os.path.join(directory, "ollama"), exist_ok=True)
        with open(os.path.join(directory, "ollama", "id_ed25519"), "w", encoding="utf-8") as stream:
            stream.write("half")
        raise tool.Failure("extracting data.tar.gz into %s failed: No space left on device" % directory)

    monkeypatch.setattr(tool, "extract", half_way)
    for _attempt in range(2):
        assert call(tool, host, "restore-data", "--name", result["name"], "--path", "ollama") == 1
        assert "No space left on device" in capsys.readouterr().err
        assert sorted(str(item.relative_to(ollama)) for item in ollama.rglob("*")) == original
        assert (ollama / "ORIGINAL").read_text() == "the data before the rollback"
        assert (ollama / "id_ed25519").read_text() == "ollama key"
    monkeypatch.setattr(tool, "extract", extract)
    # Then it succeeds, twice: the second run keeps the first one's copy of the original and sets its own data aside.
    for _attempt in range(2):
        assert call(tool, host, "restore-data", "--name", result["name"], "--path", "ollama") == 0, capsys.readouterr().err
    kept = host["data"] / ("ollama.before-rollback-%s" % result["name"])
    assert (kept / "ORIGINAL").read_text() == "the data before the rollback"
    assert (host["data"] / ("ollama.before-rollback-%s.2" % result["name"]) / "id_ed25519").read_text() == "ollama key"
    assert not (ollama / "ORIGINAL").exists() and (ollama / "id_ed25519").read_text() == "ollama key"
    assert (ollama / "models" / "blobs" / "sha256-0").read_bytes() == b"model blob"


def test_planted_links_are_refused_naming_the_path(tool, host, capsys, tmp_path):
    outside = tmp_path / "etc-standin"
    outside.mkdir()
    (outside / "shadow").write_text("root:secret-hash")
    os.chmod(outside / "shadow", 0o600)
    before = (outside / "shadow").stat()
    # The SQLite database replaced by a link: the backup refuses it instead of reading the target.
    database = host["data"] / "n8n" / "database.sqlite"
    database.unlink()
    database.symlink_to(outside / "shadow")
    assert call(tool, host, "all") == 1
    assert "%s is a symbolic link" % database in capsys.readouterr().err
    database.unlink()
    make_database(database, rows=1)
    result = backup(tool, host, capsys)
    # Redis's dump.rdb replaced by a link before a restore: nothing outside is written or chowned.
    backup_dir = host["destination"] / result["name"] / "redis" / "coolify-redis"
    backup_dir.mkdir(parents=True)
    subprocess.run(["age", "--encrypt", "--recipient", host["config"]["recipients"][0], "--output", str(backup_dir / "dump.rdb.age")],
                   input=b"REDIS0011 data", check=True)
    manifest = json.loads((host["destination"] / result["name"] / "manifest.json").read_text())
    manifest["files"]["redis/coolify-redis/dump.rdb.age"] = {"size": (backup_dir / "dump.rdb.age").stat().st_size,
                                                             "sha256": tool.sha256_of(backup_dir / "dump.rdb.age")}
    (host["destination"] / result["name"] / "manifest.json").write_text(json.dumps(manifest))
    host["config"]["redis"] = [{"project": "homelab", "service": "coolify-redis", "data_path": "redis", "config": ""}]
    write_config(host)
    os.chown(host["data"] / "redis", 999, 999)
    (host["data"] / "redis" / "dump.rdb").symlink_to(outside / "shadow")
    assert call(tool, host, "restore-redis", "--identity", host["identity"]) == 1
    assert "%s is a symbolic link" % (host["data"] / "redis" / "dump.rdb") in capsys.readouterr().err
    # A link at the directory itself.
    (host["data"] / "redis" / "dump.rdb").unlink()
    (host["data"] / "redis").rmdir()
    (host["data"] / "redis").symlink_to(outside)
    assert call(tool, host, "restore-redis", "--identity", host["identity"]) == 1
    assert "%s is a symbolic link" % (host["data"] / "redis") in capsys.readouterr().err
    after = (outside / "shadow").stat()
    assert (outside / "shadow").read_text() == "root:secret-hash"
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid, before.st_mode)
    # Without the link, the same restore writes the RDB, owned like its directory.
    (host["data"] / "redis").unlink()
    (host["data"] / "redis").mkdir()
    os.chown(host["data"] / "redis", 999, 999)
    assert call(tool, host, "restore-redis", "--identity", host["identity"]) == 0, capsys.readouterr().err
    assert (host["data"] / "redis" / "dump.rdb").read_bytes() == b"REDIS0011 data"
    assert (host["data"] / "redis" / "dump.rdb").stat().st_uid == 999


def test_a_backup_of_format_1_still_restores(tool, host, capsys):
    """Backups made before everything was encrypted: a plain data.tar.gz beside secrets.tar.age."""
    path = host["destination"] / "20261101T000000Z"
    path.mkdir(parents=True)
    subprocess.run(["tar", "--create", "--gzip", "--file", str(path / "data.tar.gz"), "-C", str(host["data"]), "./ollama"], check=True)
    subprocess.run(["tar", "--create", "--file", str(path / "secrets.tar"), "-C", str(host["root"]), "secrets"], check=True)
    subprocess.run(["age", "--encrypt", "--recipient", host["config"]["recipients"][0], "--output", str(path / "secrets.tar.age"),
                    str(path / "secrets.tar")], check=True)
    (path / "secrets.tar").unlink()
    files = {name: {"size": (path / name).stat().st_size, "sha256": tool.sha256_of(path / name)} for name in ("data.tar.gz", "secrets.tar.age")}
    (path / "manifest.json").write_text(json.dumps({"format": 1, "files": files, "components": []}))
    shutil.rmtree(host["data"] / "ollama")
    assert call(tool, host, "restore-files", "--name", path.name) == 0, capsys.readouterr().err
    assert (host["data"] / "ollama" / "id_ed25519").read_text() == "ollama key"


def test_a_destination_inside_the_project_root_is_refused(tool, host, capsys):
    host["config"]["destination"] = str(host["data"] / "n8n" / "backups")
    write_config(host)
    assert call(tool, host, "all") == 1
    assert "backup_destination %s is inside homelab_root" % (host["data"] / "n8n" / "backups") in capsys.readouterr().err
    assert not (host["data"] / "n8n" / "backups").exists()
