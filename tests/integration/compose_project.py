"""A compose project on a Molecule target as Docker reports it, for the testinfra suites."""

from __future__ import annotations

import json

# The main stack's services (project homelab) on a single host with Coolify and the tunnel, as the stack
# scenarios' inventory deploys them.
MAIN_STACK_SERVICES = ["ollama", "open-webui", "n8n", "coolify-db", "coolify-redis", "coolify-realtime", "coolify", "cloudflared"]


def containers(host, project="homelab"):
    """Each service's container in project, stopped ones too: its `docker compose ps` entry, by service."""
    lines = host.check_output("docker compose -p %s ps --all --format json" % project).splitlines()
    return {entry["Service"]: entry for entry in map(json.loads, lines)}


def compose_services(host, root):
    """The services of the compose project in root, as `docker compose config` renders them."""
    return json.loads(host.check_output("docker compose --project-directory %s config --format json" % root))["services"]
