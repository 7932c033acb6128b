# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""homelab-backup: back up and restore the homelab stacks (installed by homelab.core.backup).

A backup is one directory under the destination, named by its UTC start time:

    20261203T051500Z/
        manifest.json                   every file's size and sha256, the images deployed, the collection version
        postgres/<service>/<db>.dump    pg_dump --format=custom, taken through the running container
        redis/<service>/dump.rdb        after BGSAVE, once LASTSAVE has moved
        redis/<service>/appendonlydir.tar   when the AOF is on
        data.tar.gz                     the data tree, without live database directories (and models)
        secrets.tar.age                 secrets/ and the files where services keep secrets, for age recipients

It is written as <name>.partial and renamed only once its manifest verifies; older backups are
pruned only after that. Every step prints one JSON object on stdout; a failure prints its
reason on stderr and exits 1. The plan (what to dump, what to leave out) is the JSON file that
the role writes from the stack catalogues (--config, default /etc/homelab/backup.json).
Secret values never reach an argv: Redis's password is read inside its container, PostgreSQL's
goes to psql on stdin.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time

MANIFEST = "manifest.json"
STEPS = "steps.json"
PARTIAL = ".partial"
RECORD = ".restored-from.json"
FORMAT = 1
READ_CHUNK = 1024 * 1024


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


# --- Where backups live -------------------------------------------------------------------

def completed(destination):
    """Names of the completed backups, oldest first."""
    if not os.path.isdir(destination):
        return []
    return sorted(
        name for name in os.listdir(destination)
        if not name.endswith(PARTIAL) and os.path.isfile(os.path.join(destination, name, MANIFEST))
    )


def partial_path(config, name):
    return os.path.join(config["destination"], name + PARTIAL)


def load_steps(path):
    try:
        with open(os.path.join(path, STEPS), encoding="utf-8") as stream:
            return json.load(stream)
    except FileNotFoundError:
        return []


def record_step(path, component, files, started):
    steps = load_steps(path)
    size = sum(os.path.getsize(os.path.join(path, name)) for name in files)
    step = {"component": component, "files": files, "size": size, "seconds": round(time.monotonic() - started, 1)}
    steps.append(step)
    with open(os.path.join(path, STEPS), "w", encoding="utf-8") as stream:
        json.dump(steps, stream, indent=2)
    log("%s: %s in %.1f s" % (component, human(size), step["seconds"]))
    return step


def begin(config, _args):
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
    done = []
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
            dump = os.path.join(target, database + ".dump")
            log("pg_dump %s/%s" % (entry["service"], database))
            with open(dump, "wb") as stream:
                run(["docker", "exec", cid, "pg_dump", "--username", entry["user"], "--format", "custom",
                     "--dbname", database], stdout=stream)
            files.append(os.path.relpath(dump, path))
        done.append(record_step(path, "postgres %s (%s)" % (entry["service"], ", ".join(databases)), files, started))
    return {"steps": done}


def step_redis(config, args):
    path = partial_path(config, args.run)
    done = []
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
        target = os.path.join(path, "redis", entry["service"])
        os.makedirs(target, mode=0o700, exist_ok=True)
        files = []
        rdb = os.path.join(source, redis_config(cid, conf, "dbfilename") or "dump.rdb")
        shutil.copyfile(rdb, os.path.join(target, "dump.rdb"))
        files.append(os.path.relpath(os.path.join(target, "dump.rdb"), path))
        if redis_config(cid, conf, "appendonly") == "yes":
            # With the AOF on, Redis loads only the AOF at start (never dump.rdb): rewrite it to a fresh
            # base first, so the copied directory is one consistent snapshot.
            rewrite_aof(cid, conf, entry["service"], deadline)
            aof = redis_config(cid, conf, "appenddirname") or "appendonlydir"
            archive = os.path.join(target, "appendonlydir.tar")
            run(["tar", "--create", "--file", archive, "--numeric-owner", "-C", source, aof])
            files.append(os.path.relpath(archive, path))
        done.append(record_step(path, "redis %s" % entry["service"], files, started))
    return {"steps": done}


def step_files(config, args):
    path = partial_path(config, args.run)
    started = time.monotonic()
    archive = os.path.join(path, "data.tar.gz")
    argv = ["tar", "--create", "--gzip", "--file", archive, "--numeric-owner", "--xattrs", "--anchored",
            "--checkpoint=2000", "--checkpoint-action=echo=homelab-backup: data: %u records",
            "--warning=no-file-changed", "--warning=no-file-removed"]
    argv += ["--exclude=./%s" % item.strip("/") for item in config.get("exclude", [])]
    argv += ["-C", config["data_root"], "."]
    # Exit 1 is "a file changed while it was read": a live service wrote; anything else fails.
    result = subprocess.run(argv, check=False, stderr=subprocess.PIPE)
    sys.stderr.write(result.stderr.decode(errors="replace"))
    if result.returncode not in (0, 1):
        raise Failure("tar of %s failed (exit %d)" % (config["data_root"], result.returncode))
    return {"steps": [record_step(path, "files %s" % config["data_root"], ["data.tar.gz"], started)]}


def step_secrets(config, args):
    path = partial_path(config, args.run)
    started = time.monotonic()
    recipients = config.get("recipients") or []
    if not recipients:
        raise Failure("backup_age_recipients is empty: secrets are only stored encrypted; add an age public key.")
    present = [item for item in config.get("secret_paths", []) if os.path.lexists(os.path.join(config["root"], item))]
    archive = os.path.join(path, "secrets.tar.age")
    tar = subprocess.Popen(["tar", "--create", "--numeric-owner", "-C", config["root"], "--", *present],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    age_argv = ["age", "--encrypt", "--output", archive]
    for recipient in recipients:
        age_argv += ["--recipient", recipient]
    age = subprocess.run(age_argv, stdin=tar.stdout, stderr=subprocess.PIPE, check=False)
    tar.stdout.close()
    tar_error = tar.stderr.read().decode(errors="replace")
    if tar.wait() != 0 or age.returncode != 0:
        raise Failure("encrypting the secrets failed: %s %s" % (tar_error.strip(), age.stderr.decode(errors="replace").strip()))
    return {"steps": [record_step(path, "secrets (age, %d recipients)" % len(recipients), ["secrets.tar.age"], started)]}


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


def step_manifest(config, args):
    path = partial_path(config, args.run)
    names = [name for name in files_under(path) if name not in (MANIFEST, STEPS)]
    manifest = {
        "format": FORMAT,
        "name": args.run,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "collection_version": config.get("collection_version", ""),
        "root": config["root"],
        "data_root": config["data_root"],
        "excluded": config.get("exclude", []),
        "components": load_steps(path),
        "images": deployed_images(config),
        "files": {name: {"size": os.path.getsize(os.path.join(path, name)), "sha256": sha256_of(os.path.join(path, name))}
                  for name in names},
    }
    with open(os.path.join(path, MANIFEST), "w", encoding="utf-8") as stream:
        json.dump(manifest, stream, indent=2, sort_keys=True)
    if os.path.exists(os.path.join(path, STEPS)):
        os.remove(os.path.join(path, STEPS))
    return {"files": len(names)}


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
        if not os.path.isfile(full):
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
    destination = config["destination"]
    path = partial_path(config, args.run)
    problems, manifest = verify_dir(path)
    if problems:
        raise Failure("the new backup %s does not verify (%s); earlier backups are untouched." % (args.run, "; ".join(problems)))
    final = os.path.join(destination, args.run)
    os.rename(path, final)
    keep = max(1, int(config.get("keep", 7)))
    backups = completed(destination)
    pruned = backups[:-keep] if len(backups) > keep else []
    for name in pruned:
        log("pruning %s (backup_keep is %d)" % (name, keep))
        shutil.rmtree(os.path.join(destination, name))
    total = sum(item["size"] for item in manifest["files"].values())
    return {"name": args.run, "path": final, "size": total, "components": manifest["components"],
            "pruned": pruned, "kept": completed(destination), "table": table(manifest["components"], final, total)}


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


def backup_all(config, args):
    """Every step in order (the systemd timer's run); a failure removes the partial backup."""
    args.run = begin(config, args)["name"]
    try:
        for step in (step_postgres, step_redis, step_files, step_secrets, step_manifest):
            step(config, args)
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
    problems, _manifest = verify_dir(path)
    if problems:
        raise Failure("backup %s is damaged and is not restored: %s." % (path, "; ".join(problems)))
    return path


def restore_secrets(_config, args):
    path = restore_path(args)
    if not os.path.isfile(args.identity):
        raise Failure("backup_restore_identity_file %s does not exist on the host; copy the age identity there." % args.identity)
    os.makedirs(args.root, mode=0o755, exist_ok=True)
    age = subprocess.Popen(["age", "--decrypt", "--identity", args.identity, os.path.join(path, "secrets.tar.age")],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tar = subprocess.run(["tar", "--extract", "--numeric-owner", "--same-permissions", "-C", args.root],
                         stdin=age.stdout, stderr=subprocess.PIPE, check=False)
    age.stdout.close()
    age_error = age.stderr.read().decode(errors="replace").strip()
    if age.wait() != 0 or tar.returncode != 0:
        raise Failure("decrypting %s/secrets.tar.age failed: %s %s" % (path, age_error, tar.stderr.decode(errors="replace").strip()))
    return {"restored": "secrets", "root": args.root}


def restore_files(config, args):
    path = restore_path(args)
    os.makedirs(config["data_root"], mode=0o755, exist_ok=True)
    run(["tar", "--extract", "--gzip", "--file", os.path.join(path, "data.tar.gz"), "--numeric-owner",
         "--same-permissions", "--xattrs", "-C", config["data_root"]])
    return {"restored": "files", "data_root": config["data_root"]}


def restore_data(config, args):
    """Put back only the given data paths (a rolled-back service's), keeping what is there now aside.

    Each path is moved to <path>.before-rollback-<backup> (nothing is deleted), extracted fresh from
    the archive, and the parts the archive leaves out (models) are moved back from the kept copy.
    """
    path = restore_path(args)
    archive = os.path.join(path, "data.tar.gz")
    # Paths the archive leaves out whole (a live database) have nothing to put back; a path inside
    # another one comes back with it.
    wanted = sorted({item.strip("/") for item in args.path} - {item.strip("/") for item in config.get("exclude", [])})
    args.path = [item for item in wanted if not any(item.startswith(other + "/") for other in wanted)]
    members = set(run(["tar", "--list", "--gzip", "--file", archive]).stdout.decode().splitlines())
    missing = [item for item in args.path if "./%s/" % item.strip("/") not in members and "./%s" % item.strip("/") not in members]
    if missing:
        raise Failure("backup %s holds no %s; nothing was moved." % (args.name, ", ".join(missing)))
    moved = []
    for item in args.path:
        item = item.strip("/")
        live = os.path.join(config["data_root"], item)
        kept = "%s.before-rollback-%s" % (live, args.name)
        if os.path.lexists(live):
            if os.path.lexists(kept):
                shutil.rmtree(kept)
            os.rename(live, kept)
        run(["tar", "--extract", "--gzip", "--file", archive, "--numeric-owner", "--same-permissions", "--xattrs",
             "-C", config["data_root"], "./" + item])
        for excluded in config.get("exclude", []):
            if excluded.startswith(item + "/") and os.path.lexists(os.path.join(kept, excluded[len(item) + 1:])):
                target = os.path.join(config["data_root"], excluded)
                if os.path.isdir(target) and not os.path.islink(target):
                    shutil.rmtree(target)
                elif os.path.lexists(target):
                    os.remove(target)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.rename(os.path.join(kept, excluded[len(item) + 1:]), target)
        moved.append({"path": live, "kept": kept})
    return {"restored": moved}


def restore_redis(config, args):
    """Put the RDB (and AOF) back while the Redis containers are stopped."""
    path = restore_path(args)
    done = []
    for entry in config.get("redis", []):
        saved = os.path.join(path, "redis", entry["service"])
        if not os.path.isdir(saved):
            continue
        target = os.path.join(config["data_root"], entry["data_path"])
        os.makedirs(target, exist_ok=True)
        owner = os.stat(target)
        rdb = os.path.join(target, "dump.rdb")
        shutil.copyfile(os.path.join(saved, "dump.rdb"), rdb)
        os.chown(rdb, owner.st_uid, owner.st_gid)
        aof = os.path.join(saved, "appendonlydir.tar")
        if os.path.isfile(aof):
            listing = run(["tar", "--list", "--file", aof]).stdout.decode().split("\n")
            top = sorted({item.split("/")[0] for item in listing if item.strip()})
            for name in top:
                if os.path.isdir(os.path.join(target, name)):
                    shutil.rmtree(os.path.join(target, name))
            run(["tar", "--extract", "--file", aof, "--numeric-owner", "--same-permissions", "-C", target])
        done.append(entry["service"])
    return {"restored": done}


def sql_literal(text):
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(text):
    return '"' + text.replace('"', '""') + '"'


def restore_postgres(config, args):
    """Load every dump into the running server; the role's password is the restored secret's."""
    path = restore_path(args)
    done = []
    for entry in config.get("postgres", []):
        saved = os.path.join(path, "postgres", entry["service"])
        if not os.path.isdir(saved):
            continue
        cid = container_id(entry["project"], entry["service"])
        psql = ["docker", "exec", "--interactive", cid, "psql", "--username", entry["user"], "--dbname", "postgres",
                "--no-align", "--tuples-only", "--set", "ON_ERROR_STOP=1"]
        for dump in sorted(os.listdir(saved)):
            database = dump[: -len(".dump")]
            exists = run(psql, input=("SELECT 1 FROM pg_database WHERE datname = %s;\n" % sql_literal(database)).encode())
            if exists.stdout.decode().strip() != "1":
                run(psql, input=("CREATE DATABASE %s;\n" % sql_identifier(database)).encode())
            log("pg_restore %s/%s" % (entry["service"], database))
            with open(os.path.join(saved, dump), "rb") as stream:
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
    "begin": begin,
    "postgres": step_postgres,
    "redis": step_redis,
    "files": step_files,
    "secrets": step_secrets,
    "manifest": step_manifest,
    "finish": finish,
    "abort": abort,
    "offsite": offsite,
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
    parser.add_argument("--identity", default="", help="the age identity file (restore-secrets)")
    parser.add_argument("--path", action="append", default=[], help="a data path to put back (restore-data)")
    args = parser.parse_args(argv)
    try:
        config = {}
        if args.command not in NO_CONFIG:
            with open(args.config, encoding="utf-8") as stream:
                config = json.load(stream)
            args.destination = args.destination or config["destination"]
            args.root = config["root"]
        if args.command in ("restore-files", "restore-redis", "restore-postgres", "restore-data"):
            args.name = chosen(args.destination, args.name)
        result = COMMANDS[args.command](config, args)
    except (Failure, OSError) as error:
        print("homelab-backup %s: %s" % (args.command, error), file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
