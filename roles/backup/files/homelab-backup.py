# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""homelab-backup: back up and restore the homelab stacks (installed by homelab.core.backup).

A backup is one directory under the destination, named by its UTC start time. Every file but
the manifest is encrypted with age, streamed from its producer straight into age, so no
plaintext copy ever touches the destination (a NAS, an off-host copy):

    20261203T051500Z/
        manifest.json                     every file's size and sha256, the images deployed, the
                                          SQLite files' owners, the collection version (no secrets)
        postgres/<service>/<db>.dump.age  pg_dump --format=custom, taken through the running container
        redis/<service>/dump.rdb.age      after BGSAVE, once LASTSAVE has moved
        redis/<service>/appendonlydir.tar.age   when the AOF is on
        sqlite/<path>.age                 an online-backup-API snapshot of each SQLite database the
                                          catalogues declare, checked with PRAGMA integrity_check
        data.tar.gz.age                   the data tree, without live databases (and models)
        secrets.tar.age                   secrets/ and the files where services keep secrets

The recipients are the user's age keys and the host's own key (/etc/homelab, never in a
backup): a fresh host restores with the user's identity, an update's rollback on this host
with the host's. Backups of format 1 (plain data.tar.gz and dumps) still restore.

`all` writes <name>.partial while it holds the destination's lock (a second run waits, then
fails with a sentence), renames it once its manifest verifies, and only then prunes beyond
backup_keep, unless the new backup is under half the size of the newest whole one (a failed
mount). Restores take the lock shared. Every command prints one JSON object on stdout; a
failure prints its reason on stderr and exits 1. The plan is the JSON file that the role writes
from the stack catalogues (--config, default /etc/homelab/backup.json). Secret values never
reach an argv: Redis's password is read inside its container, PostgreSQL's goes to psql on stdin.
Paths inside the data tree that a container can write are opened without following links.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

MANIFEST = "manifest.json"
PARTIAL = ".partial"
LOCK = ".lock"
RECORD = ".restored-from.json"
AGE = ".age"
FORMAT = 2
READ_CHUNK = 1024 * 1024
# A new backup under this fraction of the newest whole one prunes nothing (see finish()).
WHOLE_RATIO = 0.5
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")
# Seconds a run waits for the destination's lock when the plan does not say (backup_lock_timeout's default).
LOCK_TIMEOUT = 900
# The tool's own interpreter (its shebang), which every user can run: the snapshot runs as the database's owner.
SYSTEM_PYTHON = "/usr/bin/python3"
# The newest verified backup, for the status page (the MCP stack's dashboard mounts status/ of the data tree):
# no secret, only its name, times, size and whether it was whole. Left out of the data archive.
STATUS_FILE = "status/backup.json"


class Failure(Exception):
    """A step that cannot go on; the message is the sentence the user reads."""


def log(message):
    print("homelab-backup: %s" % message, file=sys.stderr, flush=True)


def run(argv, **kwargs):
    """Run argv; Failure with its stderr when it fails."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    result = subprocess.run(argv, check=False, **kwargs)
    if result.returncode != 0:
        stderr = result.stderr.decode(errors="replace").strip() if isinstance(result.stderr, bytes) else ""
        raise Failure("%s failed (exit %d): %s" % (" ".join(argv[:3]), result.returncode, stderr[-800:]))
    return result


def human(size):
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return ("%d %s" % (value, unit)) if unit == "B" else ("%.1f %s" % (value, unit))
        value /= 1024
    return "%d B" % size


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(READ_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def files_under(directory):
    """Relative paths of the regular files under directory, sorted."""
    found = []
    for base, _dirs, names in os.walk(directory):
        for name in names:
            found.append(os.path.relpath(os.path.join(base, name), directory))
    return sorted(found)


# --- Links a container can plant ----------------------------------------------------------

def refuse_links(base, relative):
    """Failure when a component of base/relative (base itself trusted) is a symbolic link."""
    current = base
    for part in [item for item in relative.split("/") if item not in ("", ".")]:
        current = os.path.join(current, part)
        if os.path.islink(current):
            raise Failure("%s is a symbolic link (to %s); a container can plant links in the data tree, so homelab-backup "
                          "does not follow them: remove it and run again." % (current, os.readlink(current)))


def open_no_follow(path, flags, mode=0o600):
    """os.open that refuses a link at path (the parents are checked by refuse_links)."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise Failure("%s is a symbolic link; a container can plant links in the data tree, so homelab-backup does not "
                          "follow them: remove it and run again." % path) from error
        raise


def regular_file(fd, path):
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise Failure("%s is not a regular file; homelab-backup refuses to read or replace it." % path)
    return info


# --- age ----------------------------------------------------------------------------------

def age_encrypt_argv(config, output):
    recipients = config.get("recipients") or []
    if not recipients:
        raise Failure("backup_age_recipients is empty: a backup is only stored encrypted; add an age public key.")
    argv = ["age", "--encrypt", "--output", output]
    for recipient in recipients:
        argv += ["--recipient", recipient]
    return argv


def encrypt_from(config, producer, output, accept=(0,)):
    """Stream producer's stdout into age; (producer's exit code, its stderr). Failure on any other exit."""
    source = subprocess.Popen(producer, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    age = subprocess.Popen(age_encrypt_argv(config, output), stdin=source.stdout, stderr=subprocess.PIPE)
    source.stdout.close()
    source_error = source.stderr.read().decode(errors="replace")
    age_error = age.stderr.read().decode(errors="replace")
    code = source.wait()
    if age.wait() != 0 or code not in accept:
        raise Failure("%s | age failed (exit %d, %d): %s %s" % (" ".join(producer[:3]), code, age.returncode,
                                                                source_error.strip()[-600:], age_error.strip()[-200:]))
    return code, source_error


def encrypt_file(config, fd, output):
    """Encrypt what the open file descriptor reads (closed afterwards)."""
    with os.fdopen(fd, "rb") as stream:
        age = subprocess.run(age_encrypt_argv(config, output), stdin=stream, stderr=subprocess.PIPE, check=False)
    if age.returncode != 0:
        raise Failure("age failed: %s" % age.stderr.decode(errors="replace").strip())


def identities(config, args):
    """Identity files to decrypt with: those given (--identity), then the host's own."""
    found = [item for item in args.identity if item]
    host = config.get("host_identity") or ""
    if host and os.path.isfile(host):
        found.append(host)
    return found


@contextlib.contextmanager
def plain(config, args, backup, name):
    """A readable stream of the backup file name (decrypted when the backup holds name.age)."""
    path = os.path.join(backup, name)
    if not os.path.isfile(path + AGE):
        with open(path, "rb") as stream:
            yield stream
        return
    keys = identities(config, args)
    if not keys:
        raise Failure("no age identity to decrypt %s%s: give backup_restore_identity_file (a fresh host) or keep the host's %s."
                      % (path, AGE, config.get("host_identity") or "identity"))
    argv = ["age", "--decrypt"]
    for key in keys:
        argv += ["--identity", key]
    age = subprocess.Popen(argv + [path + AGE], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        yield age.stdout
    finally:
        age.stdout.close()
        error = age.stderr.read().decode(errors="replace").strip()
        if age.wait() != 0:
            raise Failure("decrypting %s%s failed: %s" % (path, AGE, error))


def held(backup, name):
    """Whether backup holds name, encrypted or (format 1) not."""
    return os.path.isfile(os.path.join(backup, name + AGE)) or os.path.isfile(os.path.join(backup, name))


def members(config, args, backup, name, gzip=False):
    """The member names of the backup's archive name (decrypting on the way)."""
    argv = ["tar", "--list"] + (["--gzip"] if gzip else [])
    with plain(config, args, backup, name) as stream:
        result = subprocess.run(argv, stdin=stream, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if result.returncode != 0:
        raise Failure("listing %s/%s failed: %s" % (backup, name, result.stderr.decode(errors="replace").strip()[-600:]))
    return [line for line in result.stdout.decode().split("\n") if line.strip()]


def extract(config, args, backup, name, directory, *names, gzip=False):
    """tar --extract of the backup's archive name into directory (decrypting on the way)."""
    argv = ["tar", "--extract", "--numeric-owner", "--same-permissions", "--xattrs", "-C", directory]
    if gzip:
        argv.insert(2, "--gzip")
    with plain(config, args, backup, name) as stream:
        result = subprocess.run(argv + ["--", *names] if names else argv, stdin=stream, stderr=subprocess.PIPE, check=False)
    if result.returncode != 0:
        raise Failure("extracting %s into %s failed: %s" % (name, directory, result.stderr.decode(errors="replace").strip()[-600:]))


# --- Where backups live -------------------------------------------------------------------

def completed(destination):
    """Names of the completed backups, oldest first."""
    if not os.path.isdir(destination):
        return []
    return sorted(
        name for name in os.listdir(destination)
        if not name.endswith(PARTIAL) and os.path.isfile(os.path.join(destination, name, MANIFEST))
    )


@contextlib.contextmanager
def locked(destination, exclusive, timeout, what):
    """Hold destination/.lock: exclusive for a backup, shared for a restore; wait up to timeout seconds."""
    os.makedirs(destination, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(destination, LOCK), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + max(0, timeout)
    said = False
    try:
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = os.pread(fd, 400, 0).decode(errors="replace").strip() or "a restore"
                if time.monotonic() >= deadline:
                    raise Failure("another homelab-backup run (%s) holds %s; %s waited %d s (backup_lock_timeout): let it "
                                  "finish and run again." % (holder, os.path.join(destination, LOCK), what, timeout)) from None
                if not said:
                    log("waiting for another run (%s) to finish" % holder)
                    said = True
                time.sleep(1)
        if exclusive:
            os.ftruncate(fd, 0)
            os.pwrite(fd, ("%s, pid %d, since %s" % (what, os.getpid(), time.strftime("%H:%M:%S"))).encode(), 0)
        yield
    finally:
        os.close(fd)


def partial_path(config, name):
    return os.path.join(config["destination"], name + PARTIAL)


def record_step(args, path, component, files, started):
    """Note a finished component of the run (args.steps, for the manifest) and log its size and time."""
    size = sum(os.path.getsize(os.path.join(path, name)) for name in files)
    step = {"component": component, "files": files, "size": size, "seconds": round(time.monotonic() - started, 1)}
    args.steps.append(step)
    log("%s: %s in %.1f s" % (component, human(size), step["seconds"]))


def begin(config, _args):
    """A new <name>.partial; runs under the exclusive lock, so any other .partial is a dead run's."""
    destination = config["destination"]
    os.makedirs(destination, mode=0o700, exist_ok=True)
    os.chmod(destination, 0o700)
    for name in os.listdir(destination):
        if name.endswith(PARTIAL):
            log("removing %s, left by a backup that did not finish" % name)
            shutil.rmtree(os.path.join(destination, name))
    name = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    while os.path.exists(os.path.join(destination, name)):
        time.sleep(1)
        name = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = partial_path(config, name)
    os.makedirs(path, mode=0o700)
    return {"name": name, "path": path}


# --- Containers ---------------------------------------------------------------------------

def container_id(project, service):
    result = run([
        "docker", "ps", "--quiet", "--no-trunc",
        "--filter", "label=com.docker.compose.project=%s" % project,
        "--filter", "label=com.docker.compose.service=%s" % service,
    ])
    ids = result.stdout.decode().split()
    if not ids:
        raise Failure("%s of compose project %s is not running; start the stack (site.yml) and back up again." % (service, project))
    return ids[0]


def redis_cli(cid, config_path, *command, allow_error=""):
    """redis-cli inside the container, with the password read there from its config (never in argv).

    An error reply that contains allow_error is returned rather than raised.
    """
    script = 'REDISCLI_AUTH="$(sed -n "s/^requirepass //p" "$0")" exec redis-cli --no-raw "$@"'
    if not config_path:
        script = 'exec redis-cli --no-raw "$@"'
    argv = ["docker", "exec", cid, "sh", "-c", script, config_path or "sh", *command]
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    reply = result.stdout.decode(errors="replace").strip()
    if (result.returncode != 0 or reply.startswith("(error)")) and not (allow_error and allow_error in reply):
        raise Failure("redis-cli %s in %s failed: %s" % (command[0], cid[:12], reply[-400:]))
    return reply


def redis_value(text):
    """The value of a one-line redis-cli --no-raw reply: (integer) 5, "yes"."""
    text = text.strip()
    if text.startswith("(integer) "):
        return text[len("(integer) "):]
    return text.strip('"')


def redis_config(cid, config_path, key):
    lines = [line for line in redis_cli(cid, config_path, "CONFIG", "GET", key).splitlines() if line.strip()]
    return redis_value(lines[-1].split(") ", 1)[-1]) if len(lines) >= 2 else ""


def persistence(cid, conf):
    """INFO persistence as a dict (the --no-raw reply is one quoted string with \\r\\n escapes)."""
    text = redis_cli(cid, conf, "INFO", "persistence").strip('"').replace("\\r\\n", "\n")
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def rewrite_aof(cid, conf, service, deadline):
    redis_cli(cid, conf, "BGREWRITEAOF", allow_error="already in progress")
    while True:
        info = persistence(cid, conf)
        if info.get("aof_rewrite_in_progress") == "0" and info.get("aof_rewrite_scheduled") == "0":
            break
        if time.monotonic() > deadline:
            raise Failure("%s: the AOF rewrite kept running past backup_redis_timeout." % service)
        time.sleep(0.5)
    if info.get("aof_last_bgrewrite_status") != "ok":
        raise Failure("%s: the AOF rewrite failed; see its log (INFO persistence)." % service)


# --- Backup steps -------------------------------------------------------------------------

def step_postgres(config, args):
    path = partial_path(config, args.run)
    for entry in config.get("postgres", []):
        started = time.monotonic()
        cid = container_id(entry["project"], entry["service"])
        listing = run(["docker", "exec", cid, "psql", "--username", entry["user"], "--dbname", "postgres",
                       "--no-align", "--tuples-only", "--command",
                       "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1"])
        databases = [name for name in listing.stdout.decode().split("\n") if name.strip()]
        target = os.path.join(path, "postgres", entry["service"])
        os.makedirs(target, mode=0o700, exist_ok=True)
        files = []
        for database in databases:
            dump = os.path.join(target, database + ".dump" + AGE)
            log("pg_dump %s/%s" % (entry["service"], database))
            encrypt_from(config, ["docker", "exec", cid, "pg_dump", "--username", entry["user"], "--format", "custom",
                                  "--dbname", database], dump)
            files.append(os.path.relpath(dump, path))
        record_step(args, path, "postgres %s (%s)" % (entry["service"], ", ".join(databases)), files, started)


def step_redis(config, args):
    path = partial_path(config, args.run)
    for entry in config.get("redis", []):
        started = time.monotonic()
        cid = container_id(entry["project"], entry["service"])
        conf = entry.get("config", "")
        before = redis_value(redis_cli(cid, conf, "LASTSAVE"))
        # LASTSAVE counts seconds: a save within the same second as the last would not move it.
        while redis_value(redis_cli(cid, conf, "TIME").splitlines()[0].split(") ", 1)[-1]) == before:
            time.sleep(0.2)
        deadline = time.monotonic() + config.get("redis_timeout", 300)
        # SCHEDULE: during an AOF rewrite the save runs once the rewrite ends, instead of an error.
        while True:
            reply = redis_cli(cid, conf, "BGSAVE", "SCHEDULE", allow_error="already in progress")
            if "already in progress" not in reply:
                break
            if time.monotonic() > deadline:
                raise Failure("%s: a background save kept running past backup_redis_timeout." % entry["service"])
            time.sleep(1)
        log("%s: BGSAVE: %s" % (entry["service"], reply))
        while redis_value(redis_cli(cid, conf, "LASTSAVE")) == before:
            if time.monotonic() > deadline:
                raise Failure("%s: LASTSAVE did not move within backup_redis_timeout (%s s); see its log."
                              % (entry["service"], config.get("redis_timeout", 300)))
            time.sleep(0.5)
        if persistence(cid, conf).get("rdb_last_bgsave_status") != "ok":
            raise Failure("%s: the background save failed; see its log (INFO persistence)." % entry["service"])
        source = os.path.join(config["data_root"], entry["data_path"])
        refuse_links(config["data_root"], entry["data_path"])
        target = os.path.join(path, "redis", entry["service"])
        os.makedirs(target, mode=0o700, exist_ok=True)
        files = []
        rdb = os.path.join(source, os.path.basename(redis_config(cid, conf, "dbfilename") or "dump.rdb"))
        fd = open_no_follow(rdb, os.O_RDONLY | os.O_NONBLOCK)
        regular_file(fd, rdb)
        encrypt_file(config, fd, os.path.join(target, "dump.rdb" + AGE))
        files.append(os.path.relpath(os.path.join(target, "dump.rdb" + AGE), path))
        if redis_config(cid, conf, "appendonly") == "yes":
            # With the AOF on, Redis loads only the AOF at start (never dump.rdb): rewrite it to a fresh
            # base first, so the copied directory is one consistent snapshot.
            rewrite_aof(cid, conf, entry["service"], deadline)
            aof = os.path.basename(redis_config(cid, conf, "appenddirname") or "appendonlydir")
            refuse_links(source, aof)
            archive = os.path.join(target, "appendonlydir.tar" + AGE)
            encrypt_from(config, ["tar", "--create", "--numeric-owner", "-C", source, "--", aof], archive)
            files.append(os.path.relpath(archive, path))
        record_step(args, path, "redis %s" % entry["service"], files, started)


# Run by sqlite_snapshot in a process of its own, as the database's owner: argv is source, target.
SNAPSHOT = """
import sqlite3, sys
live = sqlite3.connect("file:%s?mode=rw" % sys.argv[1], uri=True, timeout=60)
copy = sqlite3.connect(sys.argv[2])
with copy:
    live.backup(copy)
live.close()
result = copy.execute("PRAGMA integrity_check").fetchall()
copy.close()
if result != [("ok",)]:
    sys.exit("PRAGMA integrity_check: %s" % str(result)[:1000])
"""


def sqlite_snapshot(source, target, owner):
    """SQLite's online backup API from source into target, as the database's owner; integrity-checked.

    The snapshot runs in a new process with the owner's uid and gid, so the -wal and -shm files
    that SQLite may create next to the live database are the service's, never root's.
    """
    result = subprocess.run([SYSTEM_PYTHON, "-c", SNAPSHOT, source, target], user=owner.st_uid, group=owner.st_gid,
                            extra_groups=[], stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if result.returncode != 0:
        raise Failure("the SQLite snapshot of %s (as uid %d) failed: %s"
                      % (source, owner.st_uid, result.stderr.decode(errors="replace").strip()[-1200:]))


def step_sqlite(config, args):
    """Each declared SQLite database that exists, snapshotted while its service runs, then encrypted.

    The snapshot is made in a directory of the database's owner under the project root (never in
    the destination), encrypted into sqlite/<path>.age and removed.
    """
    path = partial_path(config, args.run)
    for relative in config.get("sqlite", []):
        started = time.monotonic()
        refuse_links(config["data_root"], os.path.dirname(relative))
        live = os.path.join(config["data_root"], relative)
        try:
            fd = open_no_follow(live, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            continue
        info = regular_file(fd, live)
        os.close(fd)
        staging = tempfile.mkdtemp(prefix=".homelab-backup-", dir=os.path.dirname(live))
        try:
            os.chown(staging, info.st_uid, info.st_gid)
            snapshot = os.path.join(staging, "snapshot")
            sqlite_snapshot(live, snapshot, info)
            output = os.path.join(path, "sqlite", relative + AGE)
            os.makedirs(os.path.dirname(output), mode=0o700, exist_ok=True)
            encrypt_file(config, open_no_follow(snapshot, os.O_RDONLY), output)
        finally:
            shutil.rmtree(staging)
        args.sqlite[relative] = {"uid": info.st_uid, "gid": info.st_gid, "mode": "%04o" % stat.S_IMODE(info.st_mode)}
        record_step(args, path, "sqlite %s" % relative, [os.path.relpath(output, path)], started)


def sqlite_excludes(config):
    """The live SQLite files (and their journals): the archive holds their snapshots instead."""
    return ["--exclude=./%s%s" % (item, suffix) for item in config.get("sqlite", []) for suffix in ("",) + SQLITE_SIDECARS]


def step_files(config, args):
    path = partial_path(config, args.run)
    started = time.monotonic()
    archive = os.path.join(path, "data.tar.gz" + AGE)
    argv = ["tar", "--create", "--gzip", "--numeric-owner", "--xattrs", "--anchored",
            "--checkpoint=2000", "--checkpoint-action=echo=homelab-backup: data: %u records",
            "--warning=no-file-changed", "--warning=no-file-removed", "--exclude=./*/.homelab-backup-*",
            "--exclude=./" + STATUS_FILE]
    argv += ["--exclude=./%s" % item.strip("/") for item in config.get("exclude", [])]
    argv += sqlite_excludes(config)
    argv += ["-C", config["data_root"], "."]
    # Exit 1 is "a file changed while it was read": a live service wrote a file that is not a
    # database (those are dumped or snapshotted); anything else fails.
    _code, errors = encrypt_from(config, argv, archive, accept=(0, 1))
    sys.stderr.write(errors)
    record_step(args, path, "files %s" % config["data_root"], [os.path.basename(archive)], started)


def step_secrets(config, args):
    path = partial_path(config, args.run)
    started = time.monotonic()
    present = [item for item in config.get("secret_paths", []) if os.path.lexists(os.path.join(config["root"], item))]
    archive = os.path.join(path, "secrets.tar.age")
    encrypt_from(config, ["tar", "--create", "--numeric-owner", "-C", config["root"], "--", *present], archive)
    record_step(args, path, "secrets (age, %d recipients)" % len(config.get("recipients") or []), ["secrets.tar.age"], started)


def deployed_images(config):
    images = {}
    for stack in config.get("stacks", []):
        listing = run(["docker", "ps", "--all", "--no-trunc", "--format",
                       '{{json .Image}} {{json (.Label "com.docker.compose.service")}}',
                       "--filter", "label=com.docker.compose.project=%s" % stack["project"]])
        for line in listing.stdout.decode().splitlines():
            if not line.strip():
                continue
            reference, service = [json.loads(part) for part in line.split(" ", 1)]
            inspect = subprocess.run(["docker", "image", "inspect", "--format", "{{json .Id}} {{json .RepoDigests}}", reference],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
            image_id, digests = "", []
            if inspect.returncode == 0:
                image_id, digests = [json.loads(part) for part in inspect.stdout.decode().strip().split(" ", 1)]
            images.setdefault(stack["project"], {})[service] = {"image": reference, "id": image_id, "repo_digests": digests or []}
    return images


def read_manifest(path):
    try:
        with open(os.path.join(path, MANIFEST), encoding="utf-8") as stream:
            return json.load(stream)
    except (OSError, ValueError):
        return {}


def backup_size(manifest):
    return sum(item["size"] for item in (manifest.get("files") or {}).values())


def newest_whole(destination):
    """(name, size) of the newest completed backup that was not held back as too small, or (None, 0)."""
    for name in reversed(completed(destination)):
        manifest = read_manifest(os.path.join(destination, name))
        if manifest.get("whole", True):
            return name, backup_size(manifest)
    return None, 0


def step_manifest(config, args):
    path = partial_path(config, args.run)
    names = [name for name in files_under(path) if name != MANIFEST]
    files = {name: {"size": os.path.getsize(os.path.join(path, name)), "sha256": sha256_of(os.path.join(path, name))}
             for name in names}
    manifest = {
        "format": FORMAT,
        "name": args.run,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "collection_version": config.get("collection_version", ""),
        "root": config["root"],
        "data_root": config["data_root"],
        "excluded": config.get("exclude", []),
        "sqlite": args.sqlite,
        "components": args.steps,
        "images": deployed_images(config),
        "files": files,
    }
    # Whole unless it is under WHOLE_RATIO of the newest whole backup (a data mount that failed, an
    # emptied tree); backup_force_prune takes a smaller one as whole (the data really shrank).
    previous, previous_size = newest_whole(config["destination"])
    size = backup_size(manifest)
    manifest["whole"] = bool(config.get("force_prune")) or previous is None or size >= WHOLE_RATIO * previous_size
    if not manifest["whole"]:
        manifest["compared_with"] = {"name": previous, "size": previous_size}
    with open(os.path.join(path, MANIFEST), "w", encoding="utf-8") as stream:
        json.dump(manifest, stream, indent=2, sort_keys=True)


def verify_dir(path):
    """Problems with a backup directory: missing, changed or unexpected files. Empty: it verifies."""
    try:
        with open(os.path.join(path, MANIFEST), encoding="utf-8") as stream:
            manifest = json.load(stream)
    except FileNotFoundError:
        return ["%s has no %s" % (path, MANIFEST)], None
    except ValueError as error:
        return ["%s/%s is not valid JSON (%s)" % (path, MANIFEST, error)], None
    problems = []
    listed = manifest.get("files") or {}
    for name in sorted(listed):
        full = os.path.join(path, name)
        if os.path.islink(full) or not os.path.isfile(full):
            problems.append("%s is missing" % name)
        elif os.path.getsize(full) != listed[name]["size"]:
            problems.append("%s has %d bytes, the manifest says %d" % (name, os.path.getsize(full), listed[name]["size"]))
        elif sha256_of(full) != listed[name]["sha256"]:
            problems.append("%s does not match its sha256 in the manifest" % name)
    for name in files_under(path):
        if name != MANIFEST and name not in listed:
            problems.append("%s is not in the manifest" % name)
    return problems, manifest


def finish(config, args):
    """Verify, rename, then prune beyond backup_keep, but only after a whole backup."""
    destination = config["destination"]
    path = partial_path(config, args.run)
    problems, manifest = verify_dir(path)
    if problems:
        raise Failure("the new backup %s does not verify (%s); earlier backups are untouched." % (args.run, "; ".join(problems)))
    final = os.path.join(destination, args.run)
    os.rename(path, final)
    keep = max(1, int(config.get("keep", 7)))
    backups = completed(destination)
    pruned, warning = [], ""
    if not manifest.get("whole", True):
        compared = manifest["compared_with"]
        sizes = (args.run, human(backup_size(manifest)), compared["name"], human(compared["size"]))
        warning = ("backup %s is %s, under half of %s (%s), the newest whole one: it is kept, but no backup is pruned. If "
                   "a mount failed or a service lost its data, fix that and back up again; if the data really shrank, set "
                   "backup_force_prune: true for one run." % sizes)
        log(warning)
    elif len(backups) > keep:
        pruned = backups[:-keep]
    for name in pruned:
        log("pruning %s (backup_keep is %d)" % (name, keep))
        shutil.rmtree(os.path.join(destination, name))
    total = backup_size(manifest)
    record_status(config, manifest, total)
    return {"name": args.run, "path": final, "size": total, "components": manifest["components"], "whole": manifest["whole"],
            "warning": warning, "pruned": pruned, "kept": completed(destination),
            "table": table(manifest["components"], final, total)}


def record_status(config, manifest, total):
    """Write STATUS_FILE (0644, root's directory 0755) for the status page, replacing it whole; a failure only logs."""
    status = {"name": manifest["name"], "created": manifest.get("created", ""), "size": total,
              "whole": bool(manifest.get("whole", True)),
              "verified_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    path = os.path.join(config["data_root"], STATUS_FILE)
    try:
        refuse_links(config["data_root"], os.path.dirname(STATUS_FILE))
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        temporary = path + ".new"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        fd = open_no_follow(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(status, stream, sort_keys=True)
            stream.write("\n")
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except (OSError, Failure) as error:
        log("the status page's record of this backup was not written (%s)" % error)


def table(components, path, total):
    rows = [("component", "size", "seconds")]
    rows += [(item["component"], human(item["size"]), "%.1f" % item["seconds"]) for item in components]
    rows.append(("total", human(total), "%.1f" % sum(item["seconds"] for item in components)))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = ["  ".join(cell.ljust(widths[index]) for index, cell in enumerate(row)).rstrip() for row in rows]
    lines.append("backup: %s" % path)
    return lines


def abort(config, args):
    path = partial_path(config, args.run)
    if os.path.isdir(path):
        shutil.rmtree(path)
    return {"removed": path}


def offsite(config, args):
    target = config.get("offsite_target") or ""
    if not target:
        return {"copied": False}
    source = os.path.join(config["destination"], args.run)
    started = time.monotonic()
    run(["rsync", "--archive", "--partial", "-e", "ssh -o BatchMode=yes", source, target.rstrip("/") + "/"])
    return {"copied": True, "target": target, "seconds": round(time.monotonic() - started, 1)}


BACKUP_STEPS = ("step_postgres", "step_redis", "step_sqlite", "step_files", "step_secrets", "step_manifest")


def backup_all(config, args):
    """One backup, every step in order, under the destination's lock; a failure removes the partial backup."""
    root = os.path.realpath(config["root"])
    if os.path.commonpath([os.path.realpath(config["destination"]), root]) == root:
        raise Failure("backup_destination %s is inside homelab_root %s: a backup would hold itself and a container could "
                      "reach it; choose a directory outside it." % (config["destination"], config["root"]))
    with locked(config["destination"], True, int(config.get("lock_timeout", LOCK_TIMEOUT)), "a backup"):
        args.run = begin(config, args)["name"]
        # What the steps found, for the manifest: each component's size and time, each SQLite file's owner.
        args.steps, args.sqlite = [], {}
        try:
            for step in BACKUP_STEPS:
                globals()[step](config, args)
            result = finish(config, args)
        except BaseException:
            abort(config, args)
            raise
        result["offsite"] = offsite(config, args)
    for line in result["table"]:
        log(line)
    return result


# --- Restore ------------------------------------------------------------------------------

def chosen(destination, name):
    """The backup to restore: the name given, or the newest completed one."""
    backups = completed(destination)
    if name in ("", "latest"):
        if not backups:
            raise Failure("no completed backup in %s; copy one there (or set backup_destination) before restoring." % destination)
        return backups[-1]
    if not os.path.isdir(os.path.join(destination, name)):
        raise Failure("backup_restore_name %s is not in %s (there: %s)." % (name, destination, ", ".join(backups) or "none"))
    return name


def restore_check(_config, args):
    """Read-only: the backup to restore, verified; whether this host already holds it."""
    name = chosen(args.destination, args.name)
    path = os.path.join(args.destination, name)
    problems, manifest = verify_dir(path)
    if problems:
        raise Failure("backup %s is damaged and is not restored, nothing was changed: %s." % (path, "; ".join(problems)))
    manifest_sha256 = sha256_of(os.path.join(path, MANIFEST))
    record = {}
    try:
        with open(os.path.join(args.root, RECORD), encoding="utf-8") as stream:
            record = json.load(stream)
    except (FileNotFoundError, ValueError):
        pass
    return {"name": name, "path": path, "manifest_sha256": manifest_sha256,
            "already_restored": record.get("manifest_sha256") == manifest_sha256,
            "postgres": sorted(item for item in manifest["files"] if item.startswith("postgres/")),
            "redis": sorted({item.split("/")[1] for item in manifest["files"] if item.startswith("redis/")}),
            "collection_version": manifest.get("collection_version", ""), "created": manifest.get("created", "")}


def restore_path(args):
    path = os.path.join(args.destination, args.name)
    problems, manifest = verify_dir(path)
    if problems:
        raise Failure("backup %s is damaged and is not restored: %s." % (path, "; ".join(problems)))
    return path, manifest


def restore_secrets(config, args):
    path, _manifest = restore_path(args)
    if not args.identity or not all(os.path.isfile(item) for item in args.identity):
        raise Failure("backup_restore_identity_file %s does not exist on the host; copy the age identity there."
                      % ", ".join(args.identity or ["(none)"]))
    os.makedirs(args.root, mode=0o755, exist_ok=True)
    extract(config, args, path, "secrets.tar", args.root)
    return {"restored": "secrets", "root": args.root}


def put_sqlite(config, args, backup, manifest, relative, data_root):
    """The snapshot of relative back in data_root, with the live file's owner and mode; its stale journals gone."""
    owner = (manifest.get("sqlite") or {}).get(relative)
    if owner is None:
        return False
    refuse_links(data_root, os.path.dirname(relative))
    target = os.path.join(data_root, relative)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=".homelab-restore-", dir=os.path.dirname(target))
    try:
        with os.fdopen(fd, "wb") as output, plain(config, args, backup, "sqlite/" + relative) as stream:
            shutil.copyfileobj(stream, output, READ_CHUNK)
        os.chown(temporary, owner["uid"], owner["gid"])
        os.chmod(temporary, int(owner["mode"], 8))
        # A journal left by the database this replaces would be replayed onto the snapshot.
        for suffix in SQLITE_SIDECARS:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target + suffix)
        os.rename(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return True


def restore_files(config, args):
    path, manifest = restore_path(args)
    os.makedirs(config["data_root"], mode=0o755, exist_ok=True)
    extract(config, args, path, "data.tar.gz", config["data_root"], gzip=True)
    placed = [item for item in sorted(manifest.get("sqlite") or {}) if put_sqlite(config, args, path, manifest, item, config["data_root"])]
    return {"restored": "files", "data_root": config["data_root"], "sqlite": placed}


def free_name(base):
    """base, or base.2, base.3, ...: the first name not taken."""
    candidate, number = base, 1
    while os.path.lexists(candidate):
        number += 1
        candidate = "%s.%d" % (base, number)
    return candidate


def restore_data(config, args):
    """Put back only the given data paths (a rolled-back service's), keeping what is there now aside.

    Nothing is ever deleted but this run's own scratch directory: the live path moves to
    <path>.before-rollback-<backup> (or, when that already holds an earlier run's copy, the next free
    <...>.2, .3), the backup's copy is extracted into a scratch directory beside it and renamed into
    place, and the parts the archive leaves out (models) move back from the kept copy. An extract
    that fails leaves the kept copy as it was, and a second run starts over from it.
    """
    path, manifest = restore_path(args)
    data_root = config["data_root"]
    # Paths the archive leaves out whole (a live database) have nothing to put back; a path inside
    # another one comes back with it.
    wanted = sorted({item.strip("/") for item in args.path} - {item.strip("/") for item in config.get("exclude", [])})
    args.path = [item for item in wanted if not any(item.startswith(other + "/") for other in wanted)]
    listed = set(members(config, args, path, "data.tar.gz", gzip=True))
    missing = [item for item in args.path if "./%s/" % item not in listed and "./%s" % item not in listed]
    if missing:
        raise Failure("backup %s holds no %s; nothing was moved." % (args.name, ", ".join(missing)))
    moved = []
    for item in args.path:
        refuse_links(data_root, os.path.dirname(item))
        live = os.path.join(data_root, item)
        kept = "%s.before-rollback-%s" % (live, args.name)
        scratch = os.path.join(os.path.dirname(live), ".homelab-restore-%s-%s" % (os.path.basename(item), args.name))
        if os.path.lexists(scratch):
            shutil.rmtree(scratch)
        os.makedirs(scratch, mode=0o700)
        extract(config, args, path, "data.tar.gz", scratch, "./" + item, gzip=True)
        fresh = os.path.join(scratch, item)
        for relative in sorted(manifest.get("sqlite") or {}):
            if relative.startswith(item + "/"):
                put_sqlite(config, args, path, manifest, relative, scratch)
        aside = kept
        if os.path.lexists(live):
            if os.path.lexists(kept):
                # An earlier run already keeps the data from before it: never overwrite that copy.
                aside = free_name(kept)
                log("%s already holds the data from before an earlier rollback; %s moves to %s" % (kept, live, aside))
            os.rename(live, aside)
        os.rename(fresh, live)
        shutil.rmtree(scratch)
        for excluded in config.get("exclude", []):
            inside = excluded[len(item) + 1:]
            target = os.path.join(data_root, excluded)
            if not excluded.startswith(item + "/") or not os.path.lexists(os.path.join(aside, inside)):
                continue
            with contextlib.suppress(OSError):
                os.rmdir(target)  # an empty directory the archive holds in its place
            if not os.path.lexists(target):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.rename(os.path.join(aside, inside), target)
        moved.append({"path": live, "kept": aside})
    return {"restored": moved}


def restore_redis(config, args):
    """Put the RDB (and AOF) back while the Redis containers are stopped; links in its directory are refused."""
    path, _manifest = restore_path(args)
    done = []
    for entry in config.get("redis", []):
        saved = "redis/%s/" % entry["service"]
        if not held(path, saved + "dump.rdb"):
            continue
        refuse_links(config["data_root"], entry["data_path"])
        target = os.path.join(config["data_root"], entry["data_path"])
        os.makedirs(target, exist_ok=True)
        owner = os.stat(target)
        rdb = os.path.join(target, "dump.rdb")
        fd = open_no_follow(rdb, os.O_WRONLY | os.O_CREAT | os.O_NONBLOCK, 0o600)
        regular_file(fd, rdb)
        os.ftruncate(fd, 0)
        with os.fdopen(fd, "wb") as output, plain(config, args, path, saved + "dump.rdb") as stream:
            shutil.copyfileobj(stream, output, READ_CHUNK)
            os.fchown(output.fileno(), owner.st_uid, owner.st_gid)
        if held(path, saved + "appendonlydir.tar"):
            for name in sorted({item.split("/")[0] for item in members(config, args, path, saved + "appendonlydir.tar")}):
                refuse_links(target, name)
                if os.path.isdir(os.path.join(target, name)):
                    shutil.rmtree(os.path.join(target, name))
            extract(config, args, path, saved + "appendonlydir.tar", target)
        done.append(entry["service"])
    return {"restored": done}


def sql_literal(text):
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(text):
    return '"' + text.replace('"', '""') + '"'


def restore_postgres(config, args):
    """Load every dump into the running server; the role's password is the restored secret's."""
    path, _manifest = restore_path(args)
    done = []
    for entry in config.get("postgres", []):
        saved = os.path.join(path, "postgres", entry["service"])
        if not os.path.isdir(saved):
            continue
        cid = container_id(entry["project"], entry["service"])
        psql = ["docker", "exec", "--interactive", cid, "psql", "--username", entry["user"], "--dbname", "postgres",
                "--no-align", "--tuples-only", "--set", "ON_ERROR_STOP=1"]
        for dump in sorted(os.listdir(saved)):
            database = dump[: -len(".dump")] if dump.endswith(".dump") else dump[: -len(".dump" + AGE)]
            exists = run(psql, input=("SELECT 1 FROM pg_database WHERE datname = %s;\n" % sql_literal(database)).encode())
            if exists.stdout.decode().strip() != "1":
                run(psql, input=("CREATE DATABASE %s;\n" % sql_identifier(database)).encode())
            log("pg_restore %s/%s" % (entry["service"], database))
            with plain(config, args, path, "postgres/%s/%s.dump" % (entry["service"], database)) as stream:
                run(["docker", "exec", "--interactive", cid, "pg_restore", "--username", entry["user"], "--dbname", database,
                     "--clean", "--if-exists", "--single-transaction", "--exit-on-error"], stdin=stream)
            done.append("%s/%s" % (entry["service"], database))
        password_file = os.path.join(config["root"], entry.get("password_file") or "")
        if entry.get("password_file") and os.path.isfile(password_file):
            with open(password_file, encoding="utf-8") as stream:
                password = stream.read().strip()
            run(psql, input=("ALTER ROLE %s PASSWORD %s;\n" % (sql_identifier(entry["user"]), sql_literal(password))).encode())
    return {"restored": done}


def affected_containers(config, running):
    """(project/service, container ids) of the services whose data a restore replaces.

    The databases being loaded have no entry there: they stay up. running=False finds the stopped ones.
    """
    found = []
    for stack in config.get("stacks", []):
        for service in stack.get("services_with_data", []):
            argv = ["docker", "ps", "--quiet", "--no-trunc",
                    "--filter", "label=com.docker.compose.project=%s" % stack["project"],
                    "--filter", "label=com.docker.compose.service=%s" % service]
            if not running:
                argv += ["--all", "--filter", "status=exited"]
            ids = run(argv).stdout.decode().split()
            if ids:
                found.append(("%s/%s" % (stack["project"], service), ids))
    return found


def restore_stop(config, _args):
    stopped = []
    for label, ids in affected_containers(config, running=True):
        run(["docker", "stop", *ids])
        stopped.append(label)
    return {"stopped": stopped}


def restore_start(config, _args):
    started = []
    for label, ids in affected_containers(config, running=False):
        run(["docker", "start", *ids])
        started.append(label)
    return {"started": started}


def latest(config, _args):
    return {"name": chosen(config["destination"], "latest")}


COMMANDS = {
    "all": backup_all,
    "latest": latest,
    "restore-check": restore_check,
    "restore-secrets": restore_secrets,
    "restore-stop": restore_stop,
    "restore-start": restore_start,
    "restore-files": restore_files,
    "restore-redis": restore_redis,
    "restore-data": restore_data,
    "restore-postgres": restore_postgres,
}
RESTORES = ("restore-files", "restore-redis", "restore-postgres", "restore-data")
# These run before the tool and its plan are installed (a fresh host): they take paths as arguments.
NO_CONFIG = ("restore-check", "restore-secrets")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="homelab-backup", description=__doc__.split("\n", 1)[0])
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("--config", default="/etc/homelab/backup.json")
    parser.add_argument("--run", default="", help="the backup being written (from begin)")
    parser.add_argument("--name", default="latest", help="the backup to restore")
    parser.add_argument("--destination", default="", help="where backups are (restore-check, restore-secrets)")
    parser.add_argument("--root", default="/opt/homelab", help="the project root (restore-check, restore-secrets)")
    parser.add_argument("--identity", action="append", default=[],
                        help="an age identity file (restore-secrets; the restores also try the host's own)")
    parser.add_argument("--path", action="append", default=[], help="a data path to put back (restore-data)")
    args = parser.parse_args(argv)
    try:
        config = {}
        if args.command not in NO_CONFIG:
            with open(args.config, encoding="utf-8") as stream:
                config = json.load(stream)
            args.destination = args.destination or config["destination"]
            args.root = config["root"]
        if args.command in RESTORES:
            # Shared: restores wait for a backup that may prune, and run beside each other.
            with locked(args.destination, False, int(config.get("lock_timeout", LOCK_TIMEOUT)), args.command):
                args.name = chosen(args.destination, args.name)
                result = COMMANDS[args.command](config, args)
        else:
            result = COMMANDS[args.command](config, args)
    except (Failure, OSError) as error:
        print("homelab-backup %s: %s" % (args.command, error), file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
