"""homelab.core's catalogue: overrides, validation, secrets, keyed hashes, files and compose rendering."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re

import pytest

from ansible_collections.homelab.core.plugins.filter.stack_plan import stack_plan
from ansible_collections.homelab.core.plugins.module_utils import _catalogue, _catalogue_schema, _stack_files
from ansible_collections.homelab.core.plugins.module_utils._catalogue import stack_problems

import yaml

REPOSITORY = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")

STACK = {
    "name": "main",
    "project": "homelab",
    "root": "/opt/homelab",
    "data_root": "/opt/homelab/data",
    "compose_file": "docker-compose.yml",
    "secrets_file": "secrets/main-stack.json",
    "bind_address": "127.0.0.1",
    "image_registry": "",
    "networks": {"intranet": {"driver": "bridge"}},
    "secrets": {
        "db_password": {"pinned": True},
        "web_key": {},
        "app_key": {"pinned": True, "generate": "laravel_key"},
        "tunnel_token": {"value": ""},
    },
    "services": {
        "ollama": {
            "image": {"registry": "docker.io", "repository": "ollama/ollama", "tag": "0.5.12", "digest": ""},
            "port": 11434,
            "container_port": 11434,
            "gpu": True,
            "data": [{"path": "ollama", "target": "/root/.ollama", "owner": 0, "group": 0, "mode": "0755"}],
            "probe": {"path": "/api/version"},
        },
        "open-webui": {
            "image": {"registry": "ghcr.io", "repository": "open-webui/open-webui", "tag": "v0.5.20", "digest": ""},
            "gpu_image_tag_suffix": "-cuda",
            "port": 3000,
            "container_port": 8080,
            "gpu": True,
            "env": {"OLLAMA_BASE_URL": "http://ollama:11434", "SELF": "http://localhost:<<port:open-webui>>/"},
            "secret_files": [{"secret": "web_key", "target": "/app/backend/.webui_secret_key", "owner": 0}],
            "depends_on": {"ollama": "service_healthy", "tunnel": "service_started"},
            "probe": {"path": "/health"},
        },
        "db": {
            "image": {"registry": "docker.io", "repository": "library/postgres", "tag": "16-alpine", "digest": ""},
            "data": [{"path": "db", "target": "/var/lib/postgresql/data", "owner": 70, "group": 70, "mode": "0700"}],
            "env": {"DB_PASSWORD": "<<secret:db_password>>"},
            "config_files": [
                {"path": "config/db/db.conf", "target": "/etc/db.conf", "owner": 70, "group": 70, "mode": "0400", "dir_group": 70,
                 "content": "password <<secret:db_password>>\n"}
            ],
            "compose": {"healthcheck": {"test": ["CMD", "pg_isready"]}},
        },
        "tunnel": {
            "enabled": False,
            "image": {"registry": "docker.io", "repository": "cloudflare/cloudflared", "tag": "2025.4.0", "digest": ""},
            "user": 65532,
            "secret_files": [{"secret": "tunnel_token", "target": "/etc/token", "owner": 65532, "path": "secrets/tunnel-token"}],
        },
    },
    "overrides": {"images": {}, "ports": {}},
    "inventory_secrets": {},
    "rotate_secrets": [],
    "variables": {"images": "main_stack_images", "ports": "main_stack_ports", "secrets": "main_stack_secrets",
                  "rotate_secrets": "main_stack_rotate_secrets"},
}
PERSISTED = {"db_password": "persisted-db-password-0123456789", "web_key": "persisted-web-key-0123456789",
             "app_key": "base64:cGVyc2lzdGVkLWFwcC1rZXktMDEyMzQ1Njc4OTAxMjM0NQ==", "config_hash_key": "k" * 48}


def stack(**changes):
    value = copy.deepcopy(STACK)
    for key, change in changes.items():
        if isinstance(change, dict) and isinstance(value.get(key), dict):
            value[key].update(change)
        else:
            value[key] = change
    return value


def compose(definition, reservation="none", persisted=None):
    persisted = PERSISTED if persisted is None else persisted
    return yaml.safe_load(stack_plan(definition, persisted=persisted, gpu_reservation=reservation)["compose"])


# --- Overrides ---------------------------------------------------------------------------


def test_an_image_override_changes_only_the_named_fields_of_the_named_service():
    services = _catalogue.resolve_services(stack(overrides={"images": {"open_webui": {"tag": "v0.6.0"}}}))
    assert services["open-webui"]["image"] == {"registry": "ghcr.io", "repository": "open-webui/open-webui", "tag": "v0.6.0", "digest": ""}
    assert services["ollama"]["image"] == STACK["services"]["ollama"]["image"]


def test_a_port_override_changes_only_that_service_and_its_placeholders():
    plan = stack_plan(stack(overrides={"ports": {"open-webui": 3005}}), persisted=PERSISTED)
    document = yaml.safe_load(plan["compose"])
    assert document["services"]["open-webui"]["ports"] == ["127.0.0.1:3005:8080"]
    assert document["services"]["ollama"]["ports"] == ["127.0.0.1:11434:11434"]
    env = [entry for entry in plan["files"] if entry["path"] == "/opt/homelab/env/open-webui.env"][0]
    assert "SELF=http://localhost:3005/\n" in env["content"]


def test_the_registry_override_replaces_every_registry():
    plan = stack_plan(stack(image_registry="127.0.0.1:5000"), persisted=PERSISTED)
    assert plan["images"] == {"ollama": "127.0.0.1:5000/ollama/ollama:0.5.12", "open-webui": "127.0.0.1:5000/open-webui/open-webui:v0.5.20",
                              "db": "127.0.0.1:5000/library/postgres:16-alpine"}


def test_a_digest_pins_further():
    ref = _catalogue.image_ref({"registry": "docker.io", "repository": "a/b", "tag": "1", "digest": "sha256:" + "0" * 64})
    assert ref == "docker.io/a/b:1@sha256:" + "0" * 64


# --- Validation --------------------------------------------------------------------------


def test_a_valid_stack_has_no_problem():
    assert stack_problems([stack()], persisted={"main": PERSISTED}) == []


@pytest.mark.parametrize(
    "changes, sentence",
    [
        ({"root": "opt/homelab"}, "homelab_root (opt/homelab) must be an absolute path; set it to something like /opt/homelab."),
        ({"data_root": "data"}, "homelab_data_root (data) must be an absolute path"),
        ({"bind_address": "localhost"}, "homelab_bind_address (localhost) is not an IP address"),
        ({"overrides": {"ports": {"ollama": 99999}}}, "main_stack_ports.ollama is 99999, which is not a port; give a whole number from 1 to 65535."),
        ({"overrides": {"ports": {"ollama": "11434"}}}, "main_stack_ports.ollama is '11434', which is not a port"),
        ({"overrides": {"ports": {"ollama": True}}}, "main_stack_ports.ollama is True, which is not a port"),
        ({"overrides": {"ports": {"open_webui": 0}}}, "main_stack_ports.open_webui is 0, which is not a port"),
        ({"overrides": {"ports": {"olama": 1}}}, "main_stack_ports has an unknown service 'olama'; the services are db, ollama, open-webui, tunnel."),
        ({"overrides": {"ports": {"db": 5432}}}, "main_stack_ports.db: that service publishes no port; remove the key."),
        ({"overrides": {"images": {"ollama": "0.6.0"}}},
         "main_stack_images.ollama must be a mapping such as {tag: \"1.2.3\"} that names only the fields to change, not '0.6.0'."),
        ({"overrides": {"images": {"ollama": {"version": "0.6.0"}}}},
         "main_stack_images.ollama has unknown field(s) version; an image override may set only registry, repository, tag, digest."),
        ({"overrides": {"images": {"ollama": {"tag": 0.6}}}}, "main_stack_images.ollama.tag must be a string"),
        ({"overrides": {"images": {"ollama": {"tag": "latest"}}}}, "main_stack_images.ollama.tag 'latest' is not a pinned tag"),
        ({"overrides": {"images": {"ollama": {"digest": "md5:1"}}}}, "main_stack_images.ollama.digest must look like sha256:<64 hex digits>"),
        ({"overrides": {"images": {"nope": {"tag": "1"}}}}, "main_stack_images has an unknown service 'nope'"),
        ({"overrides": {"ports": {"ollama": 3000}}}, "main_stack_ports.ollama and main_stack_ports.open-webui publish the same host port 3000"),
        ({"inventory_secrets": {"unknown_secret": "x" * 20}},
         "main_stack_secrets has unknown key(s) unknown_secret; the known ones are app_key, db_password, web_key."),
        ({"inventory_secrets": {"tunnel_token": "x" * 20}}, "main_stack_secrets has unknown key(s) tunnel_token"),
        ({"inventory_secrets": {"web_key": "short"}}, "main_stack_secrets.web_key must be a string of 16 characters or more"),
        ({"rotate_secrets": ["nope"]}, "main_stack_rotate_secrets names unknown secret(s) nope"),
        ({"inventory_secrets": {"db_password": "a-different-password-0123"}},
         "main_stack_secrets changes db_password, which this host already uses (/opt/homelab/secrets/main-stack.json)"),
        ({"problems": ["", "homelab_cloudflared_tunnel_token is not base64."]}, "homelab_cloudflared_tunnel_token is not base64."),
    ],
)
def test_each_bad_input_is_one_sentence_naming_the_variable(changes, sentence):
    problems = stack_problems([stack(**changes)], persisted={"main": PERSISTED})
    assert len(problems) == 1, problems
    assert problems[0].startswith(sentence)


def test_a_typo_in_a_catalogue_key_is_refused_not_ignored():
    definition = stack()
    definition["variables"] = dict(definition.get("variables") or {}, catalogue="main_stack_catalogue")
    definition["services"]["ollama"]["probe_path"] = "/api/version"
    definition["services"]["db"]["healthcheck"] = {"test": ["CMD", "true"]}
    assert stack_problems([definition], persisted={"main": PERSISTED}) == [
        "main stack: main_stack_catalogue.db has the key healthcheck, which no part of homelab.core reads; remove it (the keys "
        "are listed in the compose_stack role's README).",
        "main stack: main_stack_catalogue.ollama has the key probe_path, which no part of homelab.core reads; did you mean "
        "probe? Rename it.",
    ]


def test_the_roles_catalogues_use_only_known_keys():
    for path, variable in (("roles/main_stack/defaults/main.yml", "main_stack_catalogue"),
                           ("roles/mcp_stack/defaults/main.yml", "mcp_stack_catalogue")):
        with open(os.path.join(REPOSITORY, path), encoding="utf-8") as stream:
            catalogue = yaml.safe_load(stream)[variable]
        for name, entry in catalogue.items():
            assert set(entry) <= set(_catalogue_schema.SCHEMA), (variable, name, set(entry) - set(_catalogue_schema.SCHEMA))


def test_the_compose_stack_readme_lists_every_catalogue_key():
    # The table is generated from the schema by tests/scripts/role_docs.py (see test_catalogue_schema.py).
    with open(os.path.join(REPOSITORY, "roles", "compose_stack", "README.md"), encoding="utf-8") as stream:
        section = stream.read().split("## The catalogue entry", 1)[1].split("\n## ", 1)[0]
    assert _catalogue_schema.schema_markdown_table() in section


def test_a_disabled_service_publishes_nothing_and_collides_with_nothing():
    definition = stack()
    definition["services"]["tunnel"]["port"] = 3000
    assert stack_problems([definition]) == []
    definition["services"]["tunnel"]["enabled"] = True
    assert stack_problems([definition]) == [
        "main_stack_ports.open-webui and main_stack_ports.tunnel publish the same host port 3000; give each service its own port."
    ]


def test_ports_collide_across_stacks():
    other = stack(name="mcp", variables={"ports": "mcp_stack_ports"})
    other["services"] = {"dashboard": {"image": STACK["services"]["ollama"]["image"], "port": 11434}}
    problems = stack_problems([stack(), other])
    assert problems == ["main_stack_ports.ollama and mcp_stack_ports.dashboard publish the same host port 11434; give each service its own port."]


def test_a_pinned_secret_may_rotate_when_listed_and_a_new_one_never_conflicts():
    changed = {"inventory_secrets": {"db_password": "a-different-password-0123"}}
    assert stack_problems([stack(rotate_secrets=["db_password"], **changed)], persisted={"main": PERSISTED}) == []
    assert stack_problems([stack(**changed)], persisted={}) == []
    # Not pinned: may change freely.
    assert stack_problems([stack(inventory_secrets={"web_key": "another-web-key-0123456789"})], persisted={"main": PERSISTED}) == []


# --- Secrets -----------------------------------------------------------------------------


def test_secrets_come_from_value_then_inventory_then_persisted_then_generation():
    definition = stack(inventory_secrets={"web_key": "inventory-web-key-0123456789"})
    definition["secrets"]["tunnel_token"] = {"value": "the-token"}
    values = _catalogue.resolve_secrets(definition, {"db_password": PERSISTED["db_password"]})
    assert values["tunnel_token"] == "the-token"
    assert values["web_key"] == "inventory-web-key-0123456789"
    assert values["db_password"] == PERSISTED["db_password"]
    assert values["app_key"].startswith("base64:") and len(values["app_key"]) == len("base64:") + 44
    assert len(values["config_hash_key"]) == 48
    again = _catalogue.resolve_secrets(definition, {})
    assert again["app_key"] != values["app_key"]


def test_the_persisted_file_keeps_generated_secrets_but_not_explicit_values():
    definition = stack()
    definition["secrets"]["tunnel_token"] = {"value": "the-token"}
    plan = stack_plan(definition, persisted=PERSISTED)
    secrets_file = [entry for entry in plan["files"] if entry["path"] == "/opt/homelab/secrets/main-stack.json"][0]
    assert "content" not in secrets_file
    assert json.loads(secrets_file["secret_content"]) == PERSISTED
    assert (secrets_file["owner"], secrets_file["mode"]) == ("0", "0600")


# --- Keyed config hashes -----------------------------------------------------------------


def label(document, service):
    return document["services"][service]["labels"]["org.homelab.config-hash"]


def test_config_hashes_are_keyed_and_reveal_no_plain_hash_of_a_secret():
    first = compose(stack())
    other_key = dict(PERSISTED, config_hash_key="z" * 48)
    second = compose(stack(), persisted=other_key)
    assert label(first, "db") != label(second, "db")
    plain = hashlib.sha256(PERSISTED["db_password"].encode()).hexdigest()
    assert label(first, "db") not in plain


def test_a_changed_secret_changes_the_hash_of_exactly_the_services_that_read_it():
    before = compose(stack())
    after = compose(stack(), persisted=dict(PERSISTED, db_password="rotated-db-password-0123456789"))
    changed = [service for service in before["services"] if label(before, service) != label(after, service)]
    assert changed == ["db"]
    after = compose(stack(), persisted=dict(PERSISTED, web_key="rotated-web-key-0123456789"))
    assert [service for service in before["services"] if label(before, service) != label(after, service)] == ["open-webui"]


def test_the_plan_is_stable_for_the_same_persisted_secrets():
    assert stack_plan(stack(), persisted=PERSISTED) == stack_plan(stack(), persisted=PERSISTED)


# --- Compose rendering: the GPU paths ----------------------------------------------------


def test_without_a_gpu_nothing_is_reserved_and_the_plain_tag_is_used():
    document = compose(stack(), "none")
    assert all("deploy" not in service for service in document["services"].values())
    assert document["services"]["open-webui"]["image"].endswith(":v0.5.20")


def test_the_nvidia_reservation_has_the_gpu_capability_and_the_cuda_tag():
    document = compose(stack(), "nvidia")
    for service in ("ollama", "open-webui"):
        assert document["services"][service]["deploy"] == {
            "resources": {"reservations": {"devices": [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]}}
        }
    assert "deploy" not in document["services"]["db"]
    assert document["services"]["open-webui"]["image"] == "ghcr.io/open-webui/open-webui:v0.5.20-cuda"
    assert document["services"]["ollama"]["image"] == "docker.io/ollama/ollama:0.5.12"


def test_the_cdi_reservation_names_every_nvidia_gpu():
    document = compose(stack(), "cdi")
    assert document["services"]["ollama"]["deploy"]["resources"]["reservations"]["devices"] == [
        {"driver": "cdi", "device_ids": ["nvidia.com/gpu=all"], "capabilities": ["gpu"]}
    ]
    assert document["services"]["open-webui"]["image"].endswith("-cuda")


# --- Compose rendering: the rest ---------------------------------------------------------


def test_a_disabled_service_is_left_out_with_every_dependency_on_it():
    document = compose(stack())
    assert sorted(document["services"]) == ["db", "ollama", "open-webui"]
    assert document["services"]["open-webui"]["depends_on"] == {"ollama": {"condition": "service_healthy"}}
    definition = stack()
    definition["services"]["tunnel"]["enabled"] = "true"
    definition["secrets"]["tunnel_token"] = {"value": "the-token"}
    document = compose(definition)
    assert document["services"]["open-webui"]["depends_on"]["tunnel"] == {"condition": "service_started"}
    assert document["services"]["tunnel"]["user"] == "65532"
    assert document["services"]["tunnel"]["volumes"] == ["/opt/homelab/secrets/tunnel-token:/etc/token:ro"]


def test_mounts_ports_env_and_passthrough_keys():
    document = compose(stack(bind_address="127.0.0.2"))
    service = document["services"]["db"]
    assert service["volumes"] == ["/opt/homelab/data/db:/var/lib/postgresql/data", "/opt/homelab/config/db/db.conf:/etc/db.conf:ro"]
    assert service["env_file"] == ["env/db.env"]
    assert service["healthcheck"] == {"test": ["CMD", "pg_isready"]}
    assert "ports" not in service
    assert document["services"]["open-webui"]["ports"] == ["127.0.0.2:3000:8080"]
    assert document["services"]["open-webui"]["volumes"][0] == "/opt/homelab/secrets/open-webui/web_key:/app/backend/.webui_secret_key:ro"
    assert document["name"] == "homelab" and document["networks"] == {"intranet": {"driver": "bridge"}}


# --- Files -------------------------------------------------------------------------------


def by_path(plan):
    return {entry["path"]: entry for entry in plan["files"]}


def test_files_with_a_secret_are_secret_and_the_others_show_their_content():
    files = by_path(stack_plan(stack(), persisted=PERSISTED))
    db_env = files["/opt/homelab/env/db.env"]
    assert "content" not in db_env and "DB_PASSWORD=" + PERSISTED["db_password"] in db_env["secret_content"]
    assert "OLLAMA_BASE_URL=http://ollama:11434\n" in files["/opt/homelab/env/open-webui.env"]["content"]
    config = files["/opt/homelab/config/db/db.conf"]
    assert config["secret_content"] == "password %s\n" % PERSISTED["db_password"]
    assert (config["owner"], config["group"], config["mode"]) == ("70", "70", "0400")
    assert (files["/opt/homelab/config/db"]["group"], files["/opt/homelab/config/db"]["mode"]) == ("70", "0750")
    key = files["/opt/homelab/secrets/open-webui/web_key"]
    assert (key["secret_content"], key["mode"], key["owner_service"]) == (PERSISTED["web_key"], "0400", "open-webui")


def test_a_disabled_service_loses_its_files_but_never_its_data():
    definition = stack()
    definition["services"]["db"]["enabled"] = False
    files = by_path(stack_plan(definition, persisted=PERSISTED))
    assert files["/opt/homelab/env/db.env"]["state"] == "absent"
    assert files["/opt/homelab/config/db/db.conf"]["state"] == "absent"
    assert files["/opt/homelab/secrets/tunnel-token"]["state"] == "absent"
    assert "/opt/homelab/data/db" not in files


def test_parents_come_before_their_children_and_the_compose_file_is_validated_last():
    plan = stack_plan(stack(), persisted=PERSISTED)
    paths = [entry["path"] for entry in plan["files"]]
    for index, path in enumerate(paths):
        parent = path.rsplit("/", 1)[0]
        if parent in paths:
            assert paths.index(parent) < index, path
    assert paths[-1] == "/opt/homelab/docker-compose.yml"
    assert plan["files"][-1]["validate"] == "docker compose --project-directory /opt/homelab --file %s config --quiet"


def test_recreated_data_directories_name_their_services():
    plan = stack_plan(stack(), persisted=PERSISTED)
    assert plan["data_dirs"] == {"/opt/homelab/data/ollama": ["ollama"], "/opt/homelab/data/db": ["db"]}
    assert _stack_files.services_to_restart(_stack_files.data_dirs(stack(), _catalogue.resolve_services(stack())),
                                            ["/opt/homelab/data/db", "/x"]) == ["db"]


def test_probes_use_the_published_port_on_a_reachable_address():
    probes = stack_plan(stack(bind_address="0.0.0.0", overrides={"ports": {"ollama": 11435}}), persisted=PERSISTED)["probes"]
    assert probes == [
        {"service": "ollama", "url": "http://127.0.0.1:11435/api/version"},
        {"service": "open-webui", "url": "http://127.0.0.1:3000/health"},
        {"service": "db"},
    ]


# --- Shared data, per-service networks, extra ports, config files in the data tree ---------


def test_a_data_directory_two_services_mount_is_made_once_and_restarts_both():
    definition = stack()
    definition["services"]["db"]["data"].append({"path": "shared", "target": "/shared", "owner": 1, "group": 1, "mode": "0700"})
    definition["services"]["ollama"]["data"].insert(0, {"path": "shared", "target": "/srv/shared", "owner": 1, "group": 1, "mode": "0700"})
    plan = stack_plan(definition, persisted=PERSISTED)
    assert [entry["path"] for entry in plan["files"]].count("/opt/homelab/data/shared") == 1
    assert plan["data_dirs"]["/opt/homelab/data/shared"] == ["ollama", "db"]
    assert _stack_files.services_to_restart(_stack_files.data_dirs(definition, _catalogue.resolve_services(definition)),
                                            ["/opt/homelab/data/shared"]) == ["ollama", "db"]


def test_networks_extra_ports_and_a_config_file_in_the_data_tree():
    definition = stack(networks={"intranet": {"driver": "bridge"}, "coolify": {"name": "coolify", "driver": "bridge"}})
    definition["services"]["db"]["networks"] = ["coolify"]
    definition["services"]["db"]["extra_ports"] = [{"host": 6002, "container": 6002}]
    definition["services"]["db"]["config_files"].append(
        {"base": "data", "path": "db/.env", "target": "/app/.env", "owner": 9999, "group": 0, "mode": "0600", "content": "KEY=<<secret:app_key>>\n"})
    plan = stack_plan(definition, persisted=PERSISTED)
    document = yaml.safe_load(plan["compose"])
    assert document["services"]["db"]["networks"] == ["coolify"]
    assert document["services"]["ollama"]["networks"] == ["intranet", "coolify"]
    assert plan["networks"] == ["intranet", "coolify"]
    assert document["services"]["db"]["ports"] == ["127.0.0.1:6002:6002"]
    assert "/opt/homelab/data/db/.env:/app/.env:ro" in document["services"]["db"]["volumes"]
    files = by_path(plan)
    assert files["/opt/homelab/data/db/.env"]["secret_content"] == "KEY=%s\n" % PERSISTED["app_key"]
    # Its directory is a data directory: no second entry with other attributes.
    assert [entry["path"] for entry in plan["files"]].count("/opt/homelab/data/db") == 1
    definition["services"]["ollama"]["port"] = 6002
    assert stack_problems([definition]) == [
        "main_stack_ports.ollama and db's extra port (catalogue) publish the same host port 6002; give each service its own port."
    ]


def test_only_the_networks_an_enabled_service_joins_are_declared():
    """An external network that no service here joins need not exist, so compose must not be told about it."""
    definition = stack(networks={"intranet": {"driver": "bridge"}, "coolify": {"name": "coolify", "external": True}})
    for name in definition["services"]:
        definition["services"][name]["networks"] = ["intranet"]
    plan = stack_plan(definition, persisted=PERSISTED)
    assert plan["networks"] == ["intranet"]
    assert yaml.safe_load(plan["compose"])["networks"] == {"intranet": {"driver": "bridge"}}
    definition["services"]["db"]["networks"] = ["intranet", "coolify"]
    plan = stack_plan(definition, persisted=PERSISTED)
    assert plan["networks"] == ["intranet", "coolify"]
    assert yaml.safe_load(plan["compose"])["networks"]["coolify"] == {"name": "coolify", "external": True}


# --- Secrets a service keeps itself (n8n's key in its settings file) ----------------------


def with_adoption():
    definition = stack()
    definition["adopt_secrets"] = {"db_password": {"path": "/opt/homelab/data/db/config", "json_key": "encryptionKey"}}
    return definition


def encoded(value):
    return base64.b64encode(json.dumps({"encryptionKey": value}).encode()).decode()


def test_the_key_a_service_uses_wins_over_the_persisted_one_and_is_reported():
    plan = stack_plan(with_adoption(), persisted=PERSISTED, adopted={"/opt/homelab/data/db/config": encoded("the-key-in-use-0123456789")})
    assert plan["adopted"] == ["db_password"]
    assert json.loads(by_path(plan)["/opt/homelab/secrets/main-stack.json"]["secret_content"])["db_password"] == "the-key-in-use-0123456789"
    assert plan["adopt_files"] == [{"stack": "main", "secret": "db_password", "path": "/opt/homelab/data/db/config", "json_key": "encryptionKey"}]
    same = stack_plan(with_adoption(), persisted=PERSISTED, adopted={"/opt/homelab/data/db/config": encoded(PERSISTED["db_password"])})
    assert same["adopted"] == []
    unreadable = stack_plan(with_adoption(), persisted=PERSISTED, adopted={"/opt/homelab/data/db/config": "bm90IGpzb24="})
    # What homelab.core.read_files registers for the secrets file and the adopted file, in one.
    from_read = stack_plan(with_adoption(), read={"contents": {
        "/opt/homelab/secrets/main-stack.json": base64.b64encode(json.dumps(PERSISTED).encode()).decode(),
        "/opt/homelab/data/db/config": encoded("the-key-in-use-0123456789")}, "missing": []})
    assert from_read["adopted"] == ["db_password"]
    assert json.loads(by_path(from_read)["/opt/homelab/secrets/main-stack.json"]["secret_content"])["web_key"] == PERSISTED["web_key"]
    assert json.loads(by_path(unreadable)["/opt/homelab/secrets/main-stack.json"]["secret_content"]) == PERSISTED


def test_an_inventory_value_that_differs_from_the_key_in_use_is_refused():
    definition = with_adoption()
    definition["inventory_secrets"] = {"db_password": "an-inventory-password-0123"}
    adopted = {"/opt/homelab/data/db/config": encoded("the-key-in-use-0123456789")}
    assert stack_problems([definition], persisted={"main": PERSISTED}, adopted=adopted) == [
        "main_stack_secrets.db_password differs from the key the service already uses (/opt/homelab/data/db/config), so it would "
        "refuse to start; set it to that value, or leave it out to keep using it."
    ]
    definition["inventory_secrets"] = {"db_password": "the-key-in-use-0123456789"}
    assert stack_problems([definition], persisted={"main": PERSISTED}, adopted=adopted) == []


# --- Version guards -----------------------------------------------------------------------


def test_an_override_below_the_version_a_feature_needs_is_refused():
    definition = stack()
    definition["services"]["tunnel"]["enabled"] = True
    definition["services"]["tunnel"]["min_version"] = {"version": "2025.4.0", "feature": "--token-file / TUNNEL_TOKEN_FILE"}
    assert stack_problems([definition]) == []
    definition["overrides"]["images"] = {"tunnel": {"tag": "2025.2.1"}}
    assert stack_problems([definition]) == [
        "main_stack_images.tunnel.tag '2025.2.1' is older than 2025.4.0, the first with --token-file / TUNNEL_TOKEN_FILE, "
        "which the role relies on; pin 2025.4.0 or newer."
    ]
    definition["overrides"]["images"] = {"tunnel": {"tag": "2025.4"}}
    assert stack_problems([definition]) == []
    definition["overrides"]["images"] = {"tunnel": {"tag": "nightly"}}
    assert stack_problems([definition])[0].startswith("main_stack_images.tunnel.tag 'nightly' is not a version")


@pytest.mark.parametrize("tag, expected", [("4.3.10", (4, 3, 10)), ("v0.12.4-cuda", (0, 12, 4)), ("16-alpine", (16,)), ("latest", None)])
def test_version_tuples(tag, expected):
    assert _catalogue.version_tuple(tag) == expected


# --- Credential-gated services -------------------------------------------------------------


def gated():
    """A stack with one service that needs two inventory credentials (an MCP server and its API keys)."""
    definition = stack()
    definition["secrets"].update({"api_key": {"credential": True}, "api_secret": {"credential": True}})
    definition["services"]["social"] = {
        "image": {"registry": "docker.io", "repository": "homelab/social", "tag": "1.0.0", "digest": ""},
        "port": 3302,
        "container_port": 8000,
        "credentials": ["api_key", "api_secret"],
        "secret_files": [{"secret": "api_key", "target": "/run/secrets/api_key", "owner": 1000},
                         {"secret": "api_secret", "target": "/run/secrets/api_secret", "owner": 1000}],
    }
    return definition


def test_a_gated_service_is_deployed_only_with_every_credential():
    assert "social" not in compose(gated())["services"]
    definition = gated()
    definition["inventory_secrets"] = {"api_key": "k", "api_secret": "s"}
    assert "social" in compose(definition)["services"]
    assert stack_problems([definition]) == []


def test_credentials_given_in_part_fail_naming_the_missing_variable():
    definition = gated()
    definition["inventory_secrets"] = {"api_key": "short-is-fine"}
    assert stack_problems([definition]) == [
        "main_stack_secrets gives api_key but not api_secret, which social also needs; add main_stack_secrets.api_secret "
        "to deploy social, or remove main_stack_secrets.api_key to leave it out."]
    # Blank counts as not given, and nothing is deployed half-configured.
    definition["inventory_secrets"] = {"api_key": "k", "api_secret": "  "}
    assert "not api_secret" in stack_problems([definition])[0]
    assert "social" not in compose(definition)["services"]


def test_credentials_are_never_generated_nor_persisted():
    definition = gated()
    definition["inventory_secrets"] = {"api_key": "k", "api_secret": "s"}
    plan = stack_plan(definition, persisted=PERSISTED)
    kept = json.loads(by_path(plan)["/opt/homelab/secrets/main-stack.json"]["secret_content"])
    assert "api_key" not in kept and "api_secret" not in kept
    assert by_path(plan)["/opt/homelab/secrets/social/api_key"]["secret_content"] == "k"
    # A key taken out of the inventory takes its file with it.
    without = stack_plan(gated(), persisted=PERSISTED)
    assert by_path(without)["/opt/homelab/secrets/social/api_key"]["state"] == "absent"


# --- Images built on the host --------------------------------------------------------------


def with_build(**build_changes):
    definition = stack()
    build = {"base": {"registry": "docker.io", "repository": "library/node", "tag": "24-trixie-slim", "digest": ""},
             "dockerfile": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG VERSION\nRUN npm install -g tool@${VERSION}\n",
             "files": [{"path": "entrypoint.sh", "content": "#!/bin/sh\nexec \"$@\"\n", "mode": "0755"}],
             "args": {"VERSION": "1.2.3"}}
    build.update(build_changes)
    definition["services"]["tool"] = {"build": build, "port": 3303, "container_port": 3000}
    return definition


def test_a_built_service_runs_its_local_tag_which_is_never_pulled():
    plan = stack_plan(with_build(), persisted=PERSISTED)
    service = yaml.safe_load(plan["compose"])["services"]["tool"]
    assert re.match(r"^homelab\.local/homelab/tool:[0-9a-f]{16}$", service["image"])
    assert service["pull_policy"] == "never"
    assert plan["builds"] == [{"service": "tool", "tag": service["image"], "context": "/opt/homelab/build/tool",
                               "args": {"BASE_IMAGE": "docker.io/library/node:24-trixie-slim", "VERSION": "1.2.3"},
                               "argv": ["docker", "build", "--tag", service["image"],
                                        "--build-arg", "BASE_IMAGE=docker.io/library/node:24-trixie-slim",
                                        "--build-arg", "VERSION=1.2.3", "/opt/homelab/build/tool"]}]
    files = by_path(plan)
    assert files["/opt/homelab/build/tool/Dockerfile"]["content"].startswith("ARG BASE_IMAGE\n")
    assert files["/opt/homelab/build/tool/entrypoint.sh"]["mode"] == "0755"


def test_the_tag_changes_with_every_input_and_only_then():
    tag = stack_plan(with_build(), persisted=PERSISTED)["builds"][0]["tag"]
    assert stack_plan(with_build(), persisted=PERSISTED)["builds"][0]["tag"] == tag
    mirrored = with_build()
    mirrored["image_registry"] = "registry.lan:5000"
    changed = [
        stack_plan(with_build(args={"VERSION": "1.2.4"}), persisted=PERSISTED),
        stack_plan(with_build(dockerfile="FROM x\n"), persisted=PERSISTED),
        stack_plan(with_build(files=[]), persisted=PERSISTED),
        stack_plan(mirrored, persisted=PERSISTED),
    ]
    assert all(plan["builds"][0]["tag"] != tag for plan in changed)
    # The base image goes through the registry override like every pulled image.
    assert changed[3]["builds"][0]["args"]["BASE_IMAGE"] == "registry.lan:5000/library/node:24-trixie-slim"


def test_a_disabled_built_service_builds_nothing_and_loses_its_context_files():
    definition = with_build()
    definition["services"]["tool"]["enabled"] = False
    plan = stack_plan(definition, persisted=PERSISTED)
    assert plan["builds"] == []
    assert by_path(plan)["/opt/homelab/build/tool/Dockerfile"]["state"] == "absent"


# --- A gateway in front of gated servers ---------------------------------------------------


def with_gateway():
    definition = gated()
    definition["services"]["social"]["publish_via"] = "gateway"
    definition["services"]["gateway"] = {
        "image": {"registry": "docker.io", "repository": "library/nginx", "tag": "1.26", "digest": ""},
        "config_files": [
            {"path": "config/gateway/keys.map", "target": "/etc/nginx/keys.map", "owner": 0, "group": 0, "mode": "0400",
             "content": "~^Bearer <<secret:web_key>>$ 1;\n"},
            {"path": "config/gateway/social.conf", "target": "/etc/nginx/conf.d/social.conf", "with_service": "social",
             "owner": 0, "group": 0, "mode": "0444", "content": "server { listen <<port:social>>; }\n"},
        ],
        "depends_on": {"social": "service_healthy"},
    }
    return definition


def test_the_gateway_publishes_each_deployed_server_and_routes_only_to_those():
    definition = with_gateway()
    assert "ports" not in compose(definition)["services"]["gateway"]
    assert by_path(stack_plan(definition, persisted=PERSISTED))["/opt/homelab/config/gateway/social.conf"]["state"] == "absent"
    definition["inventory_secrets"] = {"api_key": "k", "api_secret": "s"}
    document = compose(definition)
    assert "ports" not in document["services"]["social"]
    assert document["services"]["gateway"]["ports"] == ["127.0.0.1:3302:3302"]
    assert "/opt/homelab/config/gateway/social.conf:/etc/nginx/conf.d/social.conf:ro" in document["services"]["gateway"]["volumes"]
    assert by_path(stack_plan(definition, persisted=PERSISTED))["/opt/homelab/config/gateway/social.conf"]["content"] == (
        "server { listen 3302; }\n")


def test_adding_a_server_changes_the_gateways_config_hash():
    without = compose(with_gateway())["services"]["gateway"]["labels"]
    definition = with_gateway()
    definition["inventory_secrets"] = {"api_key": "k", "api_secret": "s"}
    assert compose(definition)["services"]["gateway"]["labels"] != without


def test_a_port_published_via_the_gateway_still_collides_across_stacks():
    definition = with_gateway()
    definition["inventory_secrets"] = {"api_key": "k", "api_secret": "s"}
    definition["overrides"]["ports"] = {"social": 3000}
    # The gateway routes to the service's own port: a container_port of its own would never be used.
    del definition["services"]["social"]["container_port"]
    assert stack_problems([definition]) == [
        "main_stack_ports.open-webui and main_stack_ports.social publish the same host port 3000; give each service its own port."]


def test_the_services_a_stack_deploys_are_the_plans_without_planning():
    from ansible_collections.homelab.core.plugins.filter.stack_services import stack_services

    gated = stack(inventory_secrets={})
    gated["services"]["tunnel"]["enabled"] = True
    assert stack_services(gated) == stack_plan(gated, persisted=PERSISTED)["enabled"]
    assert stack_services(stack()) == ["ollama", "open-webui", "db"]
