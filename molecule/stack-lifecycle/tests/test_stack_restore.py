"""Backups and restores of both stacks (playbooks/backup.yml, playbooks/restore.yml) on the real
PostgreSQL, Redis and n8n: data written (n8n's SQLite under a writer that does not pause), backed
up, every backup file scanned for secrets as a reader of the backup disk would, the host's stacks
destroyed, converged afresh and restored, and the data compared. Runs after the redeploy tests and
before the update tests (the files sort so)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "integration"))
from compose_project import MAIN_STACK_SERVICES as SERVICES, containers  # noqa: E402
from playbook_runs import assert_refused, recap_changed, run_site  # noqa: E402

SCENARIO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = "homelab-molecule-stack-lifecycle"
ROOT = "/opt/homelab"
BACKUPS = "/var/backups/homelab"
SAVED = "/root/saved-backups"
IDENTITY = "/root/homelab-age-identity.txt"
PSQL = "docker exec coolify-db psql -U coolify -d coolify -tAc "
REDIS = "docker exec coolify-redis sh -c 'REDISCLI_AUTH=\"$(sed -n \"s/^requirepass //p\" /usr/local/etc/redis/redis.conf)\" redis-cli %s'"
FILES = ["data/n8n/restore-test.bin", "data/open-webui/restore-test.bin"]


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


# What a reader of the backup disk gets: every file as stored, gunzipped where that works, and
# (with an identity, to prove the scan can find what it looks for) decrypted.
SCAN = """
import glob, gzip, json, os, subprocess, sys
root, backup, identity, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
values = [value for path in glob.glob(root + "/secrets/*.json") for value in json.load(open(path)).values()
          if isinstance(value, str) and len(value) >= 8]
key = open(root + "/data/coolify/ssh/keys/id.root@host.docker.internal").read()
body = "".join(line for line in key.splitlines() if line and not line.startswith("-----"))
needles = {"secrets/*.json": values, "coolify key": [body[i:i + 40] for i in range(0, len(body) - 40, 40)], "credentials": extra}
found, files = [], 0
for path in sorted(glob.glob(backup + "/**", recursive=True)):
    if not os.path.isfile(path):
        continue
    files += 1
    raw = open(path, "rb").read()
    texts = [raw]
    try:
        texts.append(gzip.decompress(raw))
    except Exception:
        pass
    if identity and path.endswith(".age"):
        plain = subprocess.run(["age", "-d", "-i", identity, path], capture_output=True, check=True).stdout
        texts += [plain] + ([gzip.decompress(plain)] if plain[:2] == b"\\x1f\\x8b" else [])
    for kind, items in needles.items():
        if any(item.encode() in text for item in items for text in texts):
            found.append([os.path.relpath(path, backup), kind])
print(json.dumps({"files": files, "needles": {kind: len(items) for kind, items in needles.items()}, "found": found}))
"""

# Writes workflows through n8n's public API without pause until /root/n8n-writer.stop exists; the
# count so far is in /root/n8n-writer.count.
WRITER = """
import json, os, time, urllib.error, urllib.request
def call(path, body, headers):
    request = urllib.request.Request("http://127.0.0.1:5678" + path, data=json.dumps(body).encode(),
                                     headers=dict(headers, **{"Content-Type": "application/json"}))
    return urllib.request.urlopen(request, timeout=30)
for attempt in range(10):  # n8n allows 5 sign-ins a minute per email
    try:
        login = call("/rest/login", {"emailOrLdapLoginId": "owner@homelab.test", "password": "Molecule-Owner-Pass-1"}, {})
        break
    except urllib.error.HTTPError as error:
        if error.code != 429 or attempt == 9:
            raise
        time.sleep(10)
cookie = "; ".join(value.split(";")[0] for value in login.headers.get_all("Set-Cookie"))
key = json.loads(call("/rest/api-keys", {"label": "backup writer", "scopes": ["workflow:create", "workflow:list"],
                                        "expiresAt": None}, {"Cookie": cookie}).read())["data"]["rawApiKey"]
count, deadline = 0, time.monotonic() + 900
while not os.path.exists("/root/n8n-writer.stop") and time.monotonic() < deadline:
    call("/api/v1/workflows", {"name": "backup-writer-%d" % count, "nodes": [], "connections": {}, "settings": {}},
         {"X-N8N-API-KEY": key}).read()
    count += 1
    with open("/root/n8n-writer.count.tmp", "w") as stream:
        stream.write(str(count))
    os.replace("/root/n8n-writer.count.tmp", "/root/n8n-writer.count")
"""

# As n8n's user (uid 1000), so no file of root's appears beside the live database.
N8N_DATABASE = """
import os, sqlite3, sys
os.setgroups([]); os.setgid(1000); os.setuid(1000)
connection = sqlite3.connect("file:%s?mode=rw" % sys.argv[1], uri=True, timeout=30)
print(connection.execute("PRAGMA integrity_check").fetchone()[0],
      connection.execute("SELECT count(*) FROM workflow_entity WHERE name LIKE 'backup-writer-%'").fetchone()[0])
"""


def writer_count(host):
    return int(host.run("cat /root/n8n-writer.count 2>/dev/null || echo 0").stdout.strip() or 0)


def healthy(host, project):
    return {service: (entry["State"], entry["Health"]) for service, entry in containers(host, project).items()}


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

    # A third while n8n's SQLite database is written without pause; it prunes the oldest
    # (backup_keep: 2) only once it has verified.
    host.check_output("cat > /root/n8n_writer.py <<'EOF'\n%sEOF" % WRITER)
    host.check_output("rm -f /root/n8n-writer.stop /root/n8n-writer.count && "
                      "setsid nohup python3 /root/n8n_writer.py > /root/n8n-writer.log 2>&1 < /dev/null &")
    host.check_output("for i in $(seq 60); do [ \"$(cat /root/n8n-writer.count 2>/dev/null)\" -ge 5 ] 2>/dev/null && exit 0; "
                      "sleep 1; done; cat /root/n8n-writer.log; exit 1")
    written_before = writer_count(host)
    try:
        backup()
        written_during = writer_count(host) - written_before
    finally:
        host.check_output("touch /root/n8n-writer.stop && for i in $(seq 60); do pgrep -f '/root/n8n_[w]riter.py' >/dev/null || exit 0; "
                          "sleep 1; done; exit 1")
    assert written_during > 0, host.run("cat /root/n8n-writer.log").stdout
    assert backups(host) == names[1:] + [backups(host)[-1]]
    chosen = backups(host)[-1]
    latest = manifest(host, chosen)
    assert {"postgres/coolify-db/coolify.dump.age", "redis/coolify-redis/dump.rdb.age", "redis/coolify-redis/appendonlydir.tar.age",
            "sqlite/n8n/database.sqlite.age", "data.tar.gz.age", "secrets.tar.age"} <= set(latest["files"])
    assert latest["sqlite"]["n8n/database.sqlite"]["uid"] == 1000
    with open(os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "galaxy.yml"), encoding="utf-8") as stream:
        version = [line.split(":", 1)[1].strip() for line in stream if line.startswith("version:")][0]
    assert latest["collection_version"] == version
    assert latest["images"]["homelab"]["coolify-db"]["image"].endswith("library/postgres:16-alpine")
    assert latest["images"]["homelab"]["coolify-db"]["id"].startswith("sha256:")
    for name, item in latest["files"].items():
        assert sha256(host, "%s/%s/%s" % (BACKUPS, chosen, name)) == item["sha256"]

    # --- At rest: no file of the backup holds Coolify's root key, an MCP credential or a value of secrets/*.json.
    subprocess.run(["docker", "cp", os.path.join(SCENARIO, "files", "test-only-age-identity.txt"),
                    "%s:%s" % (TARGET, IDENTITY)], check=True)
    credentials = ["molecule-x-bearer-token-0123456789", "molecule-tiktok-client-key-0123", "molecule-tiktok-client-secret-0123",
                   "molecule-tiktok-refresh-token-0123"]
    host.check_output("cat > /root/backup_scan.py <<'EOF'\n%sEOF" % SCAN)
    scan = json.loads(host.check_output("python3 /root/backup_scan.py %s %s/%s '' %s" % (ROOT, BACKUPS, chosen, " ".join(credentials))))
    assert scan["files"] >= 7 and scan["needles"]["secrets/*.json"] >= 5 and scan["needles"]["coolify key"] >= 1, scan
    assert scan["found"] == [], scan
    # The scan finds them once it may decrypt: the key and TikTok's credentials file are in the data archive.
    decrypted = json.loads(host.check_output("python3 /root/backup_scan.py %s %s/%s %s %s"
                                             % (ROOT, BACKUPS, chosen, IDENTITY, " ".join(credentials))))
    assert ["data.tar.gz.age", "coolify key"] in decrypted["found"] and ["data.tar.gz.age", "credentials"] in decrypted["found"]
    assert ["secrets.tar.age", "secrets/*.json"] in decrypted["found"], decrypted
    listing = host.check_output("age -d -i %s %s/%s/data.tar.gz.age | tar -tz" % (IDENTITY, BACKUPS, chosen))
    assert "./n8n/restore-test.bin" in listing
    # Live databases and the models (re-pulled from ollama_models) stay out; n8n's key is only in the secrets.
    assert "./coolify-db/" not in listing and "./ollama/models/" not in listing and "./n8n/config" not in listing
    assert "./n8n/database.sqlite" not in listing

    # --- Destroy: both projects down, the whole tree, the plan, the backups and Coolify's link gone.
    host.check_output("mkdir -p %s && cp -a %s/%s %s/" % (SAVED, BACKUPS, chosen, SAVED))
    host.check_output(PSQL + "\"INSERT INTO restore_test VALUES ('row-after-backup')\"")
    for project, compose_file in (("homelab-mcp", "docker-compose-mcp.yml"), ("homelab", "docker-compose.yml")):
        host.check_output("docker compose --project-directory %s -f %s/%s -p %s down" % (ROOT, ROOT, compose_file, project))
    host.check_output("systemctl disable --now homelab-backup.timer && rm -f /etc/systemd/system/homelab-backup.*")
    host.check_output("rm -rf %s /etc/homelab %s /data/coolify" % (ROOT, BACKUPS))
    host.check_output("mkdir -p %s && cp -a %s/%s %s/" % (BACKUPS, SAVED, chosen, BACKUPS))

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
    # n8n started healthy (above) on the snapshot taken under write, which is whole and holds what was written before.
    host.check_output("cat > /root/n8n_database.py <<'EOF'\n%sEOF" % N8N_DATABASE)
    check, restored = host.check_output("python3 /root/n8n_database.py %s/data/n8n/database.sqlite" % ROOT).split()
    assert check == "ok" and written_before <= int(restored) <= written_before + written_during + 1, (check, restored)
    # Coolify's key as restored is the only one of Coolify's that root authorizes.
    public = host.file(ROOT + "/data/coolify/ssh/keys/id.root@host.docker.internal.pub").content_string.split()[1]
    entries = [line for line in host.file("/root/.ssh/authorized_keys").content_string.splitlines() if line.endswith(" coolify")]
    assert len(entries) == 1 and public in entries[0], entries

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
    dump = "%s/%s/postgres/coolify-db/coolify.dump.age" % (tampered, name)
    host.check_output(
        "python3 -c \"import sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); b[len(b)//2]^=1; open(p,'wb').write(b)\" " + dump)
    before = host.check_output("cat %s/secrets/main-stack.json | sha256sum; ls -l --time-style=+%%s %s/data" % (ROOT, ROOT))
    rc, output = run_site("-e", "backup_destination=" + tampered, "-e", "backup_restore_force=true", playbook="playbooks/restore.yml")
    assert_refused(rc, output, TARGET, "backup %s/%s is damaged and is not restored, nothing was changed:" % (tampered, name),
                   "postgres/coolify-db/coolify.dump.age does not match its sha256 in the manifest")
    assert host.check_output("cat %s/secrets/main-stack.json | sha256sum; ls -l --time-style=+%%s %s/data" % (ROOT, ROOT)) == before
    host.check_output("rm -rf %s %s %s" % (tampered, SAVED, IDENTITY))


def test_a_second_backup_run_reports_only_its_backup_and_check_mode_makes_none(host):
    count = len(backups(host))
    rc, output = run_site("--check", playbook="playbooks/backup.yml")
    assert rc == 0, output
    assert recap_changed(output, TARGET) == 0, output
    assert "Check mode: no backup is made." in output
    assert len(backups(host)) == count
