"""Updates of the main stack's images (playbooks/update.yml): a preview, an update that passes its
health gate, one that fails it and rolls back by itself with the data intact, and a refused
PostgreSQL major-version change. Runs last (the file sorts after the redeploy and backup tests).

The second and third Ollama versions are test images made here, inside the target, from the
Ollama stand-in and pushed to the target's registry: 0.32.16 is the same stand-in under a new tag,
0.32.17 writes a "migration" into its data directory and exits, so it never turns healthy."""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "integration"))
from compose_project import containers  # noqa: E402
from playbook_runs import assert_refused, flat, recap_changed, run_site  # noqa: E402

TARGET = "homelab-molecule-stack-lifecycle"
ROOT = "/opt/homelab"
REGISTRY = "127.0.0.1:5000"
OLLAMA = REGISTRY + "/ollama/ollama"


def update(*extra):
    return run_site(*extra, playbook="playbooks/update.yml")


def pin_ollama(tag):
    return json.dumps({"main_stack_images": {"ollama": {"tag": tag}}})


def test_a_passing_update_recreates_only_that_service_and_a_failing_one_rolls_back_with_its_data(host):
    host.check_output("docker tag %s:0.32.15 %s:0.32.16 && docker push --quiet %s:0.32.16" % (OLLAMA, OLLAMA, OLLAMA))
    host.check_output(
        "mkdir -p /root/ollama-broken && printf '%%s\\n' 'FROM %s:0.32.15' "
        "'ENTRYPOINT [\"/bin/sh\", \"-c\", \"echo schema-2 > /root/.ollama/MIGRATED; exit 1\"]' > /root/ollama-broken/Dockerfile"
        " && docker build --quiet --tag %s:0.32.17 /root/ollama-broken && docker push --quiet %s:0.32.17" % (OLLAMA, OLLAMA, OLLAMA))
    before = containers(host)

    # --- The preview changes nothing and reads the registry's newer tags.
    rc, output = update("--check", "-e", pin_ollama("0.32.16"))
    assert rc == 0, output
    assert recap_changed(output, TARGET) == 0, output
    lines = [row.split()[1:] for row in output.splitlines() if row.strip().startswith("- ollama ")]
    assert lines, output
    fields = lines[0]
    assert fields[:2] == ["ollama", "0.32.15"] and fields[3:6] == ["0.32.16", "recreate", "0.32.17"], fields
    assert containers(host)["ollama"]["ID"] == before["ollama"]["ID"]

    # --- An update that passes its gate: only Ollama is recreated, after a backup.
    backups_before = host.check_output("ls -1 /var/backups/homelab 2>/dev/null || true")
    rc, output = update("-e", pin_ollama("0.32.16"))
    assert rc == 0, output
    assert "ollama 0.32.15 0.32.16 updated" in flat(output)
    after = containers(host)
    assert after["ollama"]["Image"] == OLLAMA + ":0.32.16"
    assert (after["ollama"]["State"], after["ollama"]["Health"]) == ("running", "healthy")
    # Recreated: ollama, and open-webui, which compose recreates with the dependency it waits for.
    assert sorted(name for name in before if before[name]["ID"] != after[name]["ID"]) == ["ollama", "open-webui"]
    assert host.check_output("ls -1 /var/backups/homelab") != backups_before
    rc, output = update("-e", pin_ollama("0.32.16"))
    assert rc == 0, output
    assert recap_changed(output, TARGET) == 0, output
    assert "runs its pinned image; nothing to update" in flat(output)

    # --- An update whose new version migrates the data and never turns healthy: rolled back.
    host.check_output("echo kept-through-the-rollback > %s/data/ollama/restore-check.txt" % ROOT)
    running = containers(host)
    rc, output = update("-e", pin_ollama("0.32.17"), "-e", "main_stack_wait_timeout=60")
    assert rc != 0, output
    folded = flat(output)
    assert "ollama 0.32.15 0.32.17 rolled back" not in folded  # the old version is the one that ran before: 0.32.16
    assert "ollama 0.32.16 0.32.17 rolled back" in folded
    assert "The update failed and was rolled back to the images that ran before (ollama healthy again, with the data of ollama put back" in folded
    state = containers(host)
    assert state["ollama"]["Image"] == OLLAMA + ":0.32.16"
    assert (state["ollama"]["State"], state["ollama"]["Health"]) == ("running", "healthy")
    assert sorted(name for name in running if running[name]["ID"] != state[name]["ID"]) in (["ollama"], ["ollama", "open-webui"])
    assert not host.file(ROOT + "/data/ollama/MIGRATED").exists
    assert host.file(ROOT + "/data/ollama/restore-check.txt").content_string == "kept-through-the-rollback\n"
    kept = host.check_output("ls -d %s/data/ollama.before-rollback-*" % ROOT).split()
    assert len(kept) == 1 and host.file(kept[0] + "/MIGRATED").content_string == "schema-2\n"
    record = json.loads(host.file(ROOT + "/.update-previous.json").content_string)
    assert record["images"] == {"ollama": OLLAMA + ":0.32.16"}


def test_a_postgres_major_change_is_refused_before_anything_changes(host):
    before = containers(host)
    compose = host.file(ROOT + "/docker-compose.yml").content_string
    rc, output = update("-e", json.dumps({"main_stack_images": {"coolify-db": {"tag": "17-alpine"}}}))
    assert_refused(rc, output, TARGET,
                   "main_stack_images.coolify-db moves PostgreSQL from 16 to 17, and a new major version cannot read the old "
                   "cluster: set update_postgres_major: true to have update.yml dump every database")
    assert host.file(ROOT + "/docker-compose.yml").content_string == compose
    assert {name: entry["ID"] for name, entry in containers(host).items()} == {name: entry["ID"] for name, entry in before.items()}


def test_an_update_back_to_the_pins_leaves_the_stack_converged(host):
    rc, output = update()
    assert rc == 0, output
    assert "ollama 0.32.16 0.32.15 updated" in flat(output)
    rc, output = run_site()
    assert rc == 0, output
    assert recap_changed(output, TARGET) == 0, output
    host.check_output("rm -rf %s/data/ollama.before-rollback-* %s/data/ollama/restore-check.txt" % (ROOT, ROOT))
