"""Backups and restores of both stacks (playbooks/backup.yml, playbooks/restore.yml) on the real
PostgreSQL and Redis servers: data written, backed up, the host's stacks destroyed, converged
afresh and restored, and the data compared. Runs last in the first verify (the file sorts last)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "integration"))
from junit_changes import expected_changes  # noqa: E402
from playbook_runs import assert_refused, recap_changed, run_site  # noqa: E402

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = "homelab-molecule-stack"
ROOT = "/opt/homelab"
BACKUPS = "/var/backups/homelab"
SAVED = "/root/saved-backups"
IDENTITY = "/root/homelab-age-identity.txt"
PSQL = "docker exec coolify-db psql -U coolify -d coolify -tAc "
REDIS = "docker exec coolify-redis sh -c 'REDISCLI_AUTH=\"$(sed -n \"s/^requirepass //p\" /usr/local/etc/redis/redis.conf)\" redis-cli %s'"
FILES = ["data/n8n/restore-test.bin", "data/open-webui/restore-test.bin"]
SERVICES = ["ollama", "open-webui", "n8n", "coolify-db", "coolify-redis", "coolify-realtime", "coolify", "cloudflared"]

pytestmark = pytest.mark.skipif(bool(expected_changes(EPHEMERAL)), reason="runs once, in the verify before the drift")


def backup(*extra):
    rc, output = run_site("-e", "backup_timer_enabled=true", *extra, playbook="playbooks/backup.yml")
    assert rc == 0, output
    return output


def backups(host):
    return sorted(host.check_output("ls -1 %s" % BACKUPS).split())


def manifest(host, name):
    return json.loads(host.file("%s/%s/manifest.json" % (BACKUPS, name)).content_string)


def sha256(host, path):
    return host.check_output("sha256sum %s" % path).split()[0]


def healthy(host, project):
    lines = host.check_output("docker compose -p %s ps --all --format json" % project).splitlines()
    return {entry["Service"]: (entry["State"], entry["Health"]) for entry in map(json.loads, lines)}


def test_backup_restore_round_trip_onto_a_destroyed_host(host):
    # --- Data on the real servers and in two services' data directories.
    host.check_output(PSQL + "\"CREATE TABLE IF NOT EXISTS restore_test (note text); INSERT INTO restore_test VALUES ('row-before-backup')\"")
    assert host.check_output(REDIS % "SET restore-test value-before-backup") == "OK"
    for path in FILES:
        host.check_output("head -c 300000 /dev/urandom > %s/%s" % (ROOT, path))
    before = {path: sha256(host, "%s/%s" % (ROOT, path)) for path in FILES}

    # --- Two backups: the second run reports only the backup it made.
    backup()
    output = backup()
    assert recap_changed(output, TARGET) == 1, output
    assert "component" in output and "backup: %s/" % BACKUPS in output
    assert host.check_output("systemctl is-enabled homelab-backup.timer") == "enabled"
    names = backups(host)
    assert len(names) == 2
    latest = manifest(host, names[-1])
    assert {"postgres/coolify-db/coolify.dump", "redis/coolify-redis/dump.rdb",
            "redis/coolify-redis/appendonlydir.tar", "data.tar.gz", "secrets.tar.age"} <= set(latest["files"])
    with open(os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "galaxy.yml"), encoding="utf-8") as stream:
        version = [line.split(":", 1)[1].strip() for line in stream if line.startswith("version:")][0]
    assert latest["collection_version"] == version
    assert latest["images"]["homelab"]["coolify-db"]["image"].endswith("library/postgres:16-alpine")
    assert latest["images"]["homelab"]["coolify-db"]["id"].startswith("sha256:")
    for name, item in latest["files"].items():
        assert sha256(host, "%s/%s/%s" % (BACKUPS, names[-1], name)) == item["sha256"]
    # Secrets only encrypted: no persisted secret in the file archive, the dumps or the RDB.
    scan = host.check_output(
        "cd %s/%s && python3 -c \"import glob, gzip, json; "
        "values = [v for v in json.load(open('%s/secrets/main-stack.json')).values() if len(v) >= 8]; "
        "plain = gzip.open('data.tar.gz').read() + b''.join(open(p, 'rb').read() for p in glob.glob('postgres/*/*.dump') + glob.glob('redis/*/*')); "
        "print(len(values), sum(v.encode() in plain for v in values))\"" % (BACKUPS, names[-1], ROOT))
    assert int(scan.split()[0]) >= 5 and scan.split()[1] == "0", scan
    assert "restore-test.bin" in host.check_output("tar -tzf %s/%s/data.tar.gz" % (BACKUPS, names[-1]))
    listing = host.check_output("tar -tzf %s/%s/data.tar.gz" % (BACKUPS, names[-1]))
    # Live database directories and the models (re-pulled from ollama_models) stay out; n8n's key is only encrypted.
    assert "./coolify-db/" not in listing and "./ollama/models/" not in listing and "./n8n/config" not in listing
    assert "./ollama/id_ed25519" in listing or "./ollama/" in listing

    # A third backup prunes the oldest (backup_keep: 2) only once it has verified.
    backup()
    assert backups(host) == names[1:] + [backups(host)[-1]]
    chosen = backups(host)[-1]

    # --- Destroy: both projects down, the whole tree, the plan, the backups and Coolify's link gone.
    host.check_output("mkdir -p %s && cp -a %s/%s %s/" % (SAVED, BACKUPS, chosen, SAVED))
    host.check_output(PSQL + "\"INSERT INTO restore_test VALUES ('row-after-backup')\"")
    for project, compose_file in (("homelab-mcp", "docker-compose-mcp.yml"), ("homelab", "docker-compose.yml")):
        host.check_output("docker compose --project-directory %s -f %s/%s -p %s down" % (ROOT, ROOT, compose_file, project))
    host.check_output("systemctl disable --now homelab-backup.timer && rm -f /etc/systemd/system/homelab-backup.*")
    host.check_output("rm -rf %s /etc/homelab %s /data/coolify" % (ROOT, BACKUPS))
    host.check_output("mkdir -p %s && cp -a %s/%s %s/" % (BACKUPS, SAVED, chosen, BACKUPS))
    subprocess.run(["docker", "cp", os.path.join(SCENARIO, "files", "test-only-age-identity.txt"),
                    "%s:%s" % (TARGET, IDENTITY)], check=True)

    # --- Restore onto the empty host: converge afresh, then the data.
    rc, output = run_site(playbook="playbooks/restore.yml")
    assert rc == 0, output
    assert "Restoring: %s/%s" % (BACKUPS, chosen) in " ".join(output.split())
    assert host.check_output(PSQL + "\"SELECT note FROM restore_test ORDER BY note\"") == "row-before-backup"
    assert host.check_output(REDIS % "GET restore-test") == "value-before-backup"
    assert {path: sha256(host, "%s/%s" % (ROOT, path)) for path in FILES} == before
    assert all(state == ("running", "healthy") for state in healthy(host, "homelab").values()), healthy(host, "homelab")
    assert sorted(healthy(host, "homelab")) == sorted(SERVICES)
    assert all(state == ("running", "healthy") for state in healthy(host, "homelab-mcp").values())

    # The same restore again changes nothing.
    rc, output = run_site(playbook="playbooks/restore.yml")
    assert rc == 0, output
    assert recap_changed(output, TARGET) == 0, output
    assert "Already restored" in output


def test_a_tampered_backup_is_refused_and_nothing_changes(host):
    name = backups(host)[-1]
    tampered = "/root/tampered-backups"
    host.check_output("rm -rf %s && mkdir -p %s && cp -a %s/%s %s/" % (tampered, tampered, BACKUPS, name, tampered))
    # Flip one bit in the middle of the dump.
    dump = "%s/%s/postgres/coolify-db/coolify.dump" % (tampered, name)
    host.check_output(
        "python3 -c \"import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=1; open(p,'wb').write(b)\" " + dump)
    before = host.check_output("cat %s/secrets/main-stack.json | sha256sum; ls -l --time-style=+%%s %s/data" % (ROOT, ROOT))
    rc, output = run_site("-e", "backup_destination=" + tampered, "-e", "backup_restore_force=true", playbook="playbooks/restore.yml")
    assert_refused(rc, output, TARGET, "backup %s/%s is damaged and is not restored, nothing was changed:" % (tampered, name),
                   "postgres/coolify-db/coolify.dump does not match its sha256 in the manifest")
    assert host.check_output("cat %s/secrets/main-stack.json | sha256sum; ls -l --time-style=+%%s %s/data" % (ROOT, ROOT)) == before
    host.check_output("rm -rf %s %s %s" % (tampered, SAVED, IDENTITY))


def test_a_second_backup_run_reports_only_its_backup_and_check_mode_makes_none(host):
    count = len(backups(host))
    rc, output = run_site("--check", playbook="playbooks/backup.yml")
    assert rc == 0, output
    assert recap_changed(output, TARGET) == 0, output
    assert "Check mode: no backup is made." in output
    assert len(backups(host)) == count
