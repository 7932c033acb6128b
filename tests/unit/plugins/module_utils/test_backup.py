"""homelab.core's backup plan, read from the stack catalogues (module_utils/_backup.py)."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.homelab.core.plugins.filter.backup_plan import backup_plan as backup_plan_filter
from ansible_collections.homelab.core.plugins.module_utils._backup import backup_plan

from ansible.errors import AnsibleFilterError

REPO = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")


def stack(name="main", project="homelab", services=None, **extra):
    definition = {
        "name": name,
        "project": project,
        "root": "/opt/homelab",
        "data_root": "/opt/homelab/data",
        "compose_file": "docker-compose.yml",
        "services": services or {},
    }
    definition.update(extra)
    return definition


def main_catalogue():
    with open(os.path.join(REPO, "roles", "main_stack", "defaults", "main.yml"), encoding="utf-8") as stream:
        catalogue = yaml.safe_load(stream)["main_stack_catalogue"]
    # Coolify's four services as the default main_stack_coolify_enabled (true) renders them.
    for entry in catalogue.values():
        if entry.get("enabled") == "{{ main_stack_coolify_enabled }}":
            entry["enabled"] = True
    return catalogue


def test_the_main_stack_dumps_postgres_saves_redis_and_leaves_live_and_generated_files_out():
    adopt = {"n8n_encryption_key": {"path": "/opt/homelab/data/n8n/config", "json_key": "encryptionKey"}}
    plan = backup_plan([stack(services=main_catalogue(), adopt_secrets=adopt)])

    assert plan["postgres"] == [{"project": "homelab", "service": "coolify-db", "user": "coolify",
                                 "password_file": "secrets/coolify-db/coolify_db_password"}]
    assert plan["redis"] == [{"project": "homelab", "service": "coolify-redis", "data_path": "coolify-redis",
                              "config": "/usr/local/etc/redis/redis.conf"}]
    assert sorted(plan["exclude"]) == ["coolify-db", "coolify-redis", "coolify/source/.env", "n8n/config", "ollama/models"]
    assert plan["secret_paths"] == ["secrets", "data/n8n/config"]
    with_data = plan["stacks"][0]["services_with_data"]
    # The database being loaded stays up; Redis is stopped while its files are put back.
    assert "coolify-db" not in with_data
    assert {"coolify-redis", "n8n", "open-webui", "ollama", "coolify", "coolify-realtime"} <= set(with_data)
    # cloudflared has no data (and is off without a token).
    assert "cloudflared" not in with_data


def test_models_are_kept_only_when_asked():
    plan = backup_plan([stack(services=main_catalogue())], include_models=True)
    assert "ollama/models" not in plan["exclude"]
    assert "coolify-db" in plan["exclude"]


def test_a_disabled_service_is_not_dumped_but_its_live_directory_stays_out():
    services = {
        "db": {"enabled": False, "data": [{"path": "db"}], "backup": {"postgres": {"user": "app"}}},
        "app": {"data": [{"path": "app"}]},
    }
    plan = backup_plan([stack(services=services)])
    assert plan["postgres"] == []
    assert plan["exclude"] == ["db"]
    assert plan["stacks"][0]["services_with_data"] == ["app"]


def test_a_service_without_its_credentials_is_not_stopped_on_restore():
    services = {"x-mcp": {"credentials": ["x_bearer_token"], "data": [{"path": "mcp-servers/x-mcp"}]},
                "dashboard": {"data": [{"path": "mcp-servers/dashboard"}]}}
    plan = backup_plan([stack(name="mcp", project="homelab-mcp", services=services, inventory_secrets={})])
    assert plan["stacks"] == [{"project": "homelab-mcp", "compose_file": "docker-compose.yml",
                               "services_with_data": ["dashboard"]}]


def test_two_stacks_share_one_plan_and_no_secret_value_reaches_it():
    main = stack(services=main_catalogue(), inventory_secrets={"coolify_db_password": "s3cret-value"})
    mcp = stack(name="mcp", project="homelab-mcp", compose_file="docker-compose-mcp.yml",
                services={"dashboard": {"data": [{"path": "mcp-servers/dashboard"}]}})
    plan = backup_plan([main, mcp])
    assert [item["project"] for item in plan["stacks"]] == ["homelab", "homelab-mcp"]
    assert "s3cret-value" not in repr(plan)


def test_stacks_under_different_roots_are_refused():
    other = stack(name="other", project="other")
    other["root"] = "/srv/other"
    with pytest.raises(ValueError, match="outside /opt/homelab"):
        backup_plan([stack(), other])
    with pytest.raises(AnsibleFilterError, match="backup_plan: .*outside"):
        backup_plan_filter([stack(), other])
    with pytest.raises(AnsibleFilterError, match="at least one"):
        backup_plan_filter([])
