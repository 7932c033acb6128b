"""A teardown and redeploy of the main stack, and a one-service image and port override and the way
back to the pins, on the stack scenario's inventory. Runs first (the file sorts before the backup and
update tests); each test leaves the stack converged."""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "integration"))
from compose_project import MAIN_STACK_SERVICES as SERVICES, compose_services, containers  # noqa: E402
from playbook_runs import run_site  # noqa: E402

ROOT = "/opt/homelab"
PSQL = "docker exec coolify-db psql -U coolify -d coolify -tAc "


def test_teardown_and_redeploy_keep_a_database_row(host):
    host.check_output(PSQL + "\"CREATE TABLE IF NOT EXISTS survives (note text); INSERT INTO survives VALUES ('kept')\"")
    rc, output = run_site("-e", "homelab_stack_state=absent")
    assert rc == 0, output
    assert host.check_output("docker ps -aq --filter label=com.docker.compose.project=homelab") == ""
    assert host.file(ROOT + "/data/coolify-db/PG_VERSION").exists
    rc, output = run_site()
    assert rc == 0, output
    assert host.check_output(PSQL + "\"SELECT note FROM survives\"") == "kept"


def test_one_service_override_recreates_only_that_service(host):
    before = {service: entry["ID"] for service, entry in containers(host).items()}
    rendered_before = compose_services(host, ROOT)
    # The second tag of the Ollama test image is pushed by ../resources/stack-target.yml.
    override = {"main_stack_images": {"ollama": {"tag": "0.32.15-override"}}, "main_stack_ports": {"ollama": 11435}}
    try:
        rc, output = run_site("-e", json.dumps(override))
        assert rc == 0, output
        # The compose file changed in ollama's block only.
        rendered = compose_services(host, ROOT)
        assert [name for name in rendered if rendered[name] != rendered_before[name]] == ["ollama"]
        after = containers(host)
        assert after["ollama"]["Image"] == "127.0.0.1:5000/ollama/ollama:0.32.15-override"
        assert after["open-webui"]["Image"] == "127.0.0.1:5000/open-webui/open-webui:v0.12.4"
        listeners = host.check_output("ss -Hltn | awk '{print $4}'").split()
        assert "127.0.0.1:11435" in listeners and "127.0.0.1:11434" not in listeners
        # Recreated: ollama, and open-webui, which compose recreates with the dependency it waits for.
        assert [service for service in SERVICES if before[service] != after[service]["ID"]] == ["ollama", "open-webui"]
    finally:
        # Back to the catalogue's pins.
        rc, output = run_site()
        assert rc == 0, output
    restored = containers(host)
    assert restored["ollama"]["Image"] == "127.0.0.1:5000/ollama/ollama:0.32.15"
    assert compose_services(host, ROOT) == rendered_before
