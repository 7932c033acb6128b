"""The schema of a catalogue entry (module_utils/_catalogue_schema.py): the roles' catalogues pass, every rule
names the stack, the variable, the service and the key, and the compose_stack README's key table is generated."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from ansible_collections.homelab.core.plugins.filter.mcp_gateway import mcp_gateway_files
from ansible_collections.homelab.core.plugins.module_utils import _catalogue, _catalogue_schema, _fleet
from ansible_collections.homelab.core.plugins.module_utils._catalogue_schema import (
    SCHEMA,
    catalogue_problems,
    schema_markdown_table,
)

REPOSITORY = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
DELETE = object()


def _yaml(path):
    with open(os.path.join(REPOSITORY, path), encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def _networks(variables):
    """The networks of the stack definition in a role's vars (main_stack_definition, mcp_stack_definition)."""
    return [value for key, value in variables.items() if key.lstrip("_").endswith("stack_definition")][0]["networks"]


def _templated(value, known):
    """The value as Ansible would template it: a known expression gets a plausible value, any other
    "{{ ... }}" string becomes "x"."""
    if isinstance(value, dict):
        return dict((key, _templated(item, known)) for key, item in value.items())
    if isinstance(value, list):
        return [_templated(item, known) for item in value]
    if isinstance(value, str) and "{{" in value:
        return copy.deepcopy(known.get(value.strip(), "x"))
    return value


def role_stack(name, known):
    """The stack definition as the check sees it: a role's catalogue, secrets and networks, its Jinja values
    replaced by ``known`` (else "x")."""
    defaults, variables = _yaml("roles/%s_stack/defaults/main.yml" % name), _yaml("roles/%s_stack/vars/main.yml" % name)
    return {
        "name": name,
        "services": _templated(defaults["%s_stack_catalogue" % name], known(defaults, variables)),
        "secrets": defaults["%s_stack_secret_catalogue" % name],
        "networks": _networks(variables),
        "variables": {"catalogue": "%s_stack_catalogue" % name},
    }


def main_stack():
    return role_stack("main", lambda _defaults, _variables: {
        "{{ main_stack_coolify_enabled }}": True,
        "{{ homelab_cloudflared_tunnel_token | length > 0 }}": True,
        # Ollama's memory settings that the inventory sets (none by default).
        "{{ __main_stack_ollama_settings.env }}": {"OLLAMA_KEEP_ALIVE": "30m"},
    })


def _mcp_known(defaults, variables):
    routes = variables["__mcp_stack_routes"]
    known = dict(("{{ mcp_stack_base_images.%s }}" % kind, image) for kind, image in defaults["mcp_stack_base_images"].items())
    known["{{ __mcp_stack_build_files }}"] = _templated(variables["__mcp_stack_build_files"], {})
    known["{{ __mcp_stack_gateway_config }}"] = [
        {"path": "config/mcp-gateway/nginx.conf", "target": "/etc/nginx/nginx.conf", "owner": 0, "group": 0, "mode": "0444",
         "content": "events {}\n"},
        {"path": "config/mcp-gateway/mcp-keys.map", "target": "/etc/nginx/mcp-keys.map", "owner": 0, "group": 0, "mode": "0400",
         "content": variables["__mcp_stack_keys_map"]},
    ] + mcp_gateway_files(routes, "gateway")
    known["{{ __mcp_stack_dashboard_config }}"] = mcp_gateway_files(routes, "dashboard")
    # The dashboard joins the main stack's status networks that a deployed main-stack service joins (status_page).
    known["{{ __mcp_stack_dashboard_networks }}"] = ["mcp-dashboard", "status", "status-coolify"]
    return known


def mcp_stack():
    return role_stack("mcp", _mcp_known)


@pytest.mark.parametrize("definition", [main_stack, mcp_stack], ids=["main", "mcp"])
def test_the_roles_catalogues_have_no_problem(definition):
    assert catalogue_problems(definition()) == []


def test_the_schema_knows_every_key_the_engine_reads_and_its_constants():
    assert {"setup_page", "probe", "backup", "placement"} <= set(SCHEMA)
    assert _catalogue_schema.PLACEMENTS == _fleet.PLACEMENTS
    assert _catalogue_schema.PLACEHOLDER.pattern == _catalogue.PLACEHOLDER.pattern
    assert _catalogue_schema.HASH_KEY_SECRET == _catalogue.HASH_KEY_SECRET


IMAGE = {"registry": "docker.io", "repository": "library/postgres", "tag": "16-alpine", "digest": ""}
BUILD = {"base": {"registry": "docker.io", "repository": "library/node", "tag": "24-slim", "digest": ""},
         "dockerfile": "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
         "files": [{"path": "run.sh", "content": "#!/bin/sh\n", "mode": "0755"}],
         "args": {"VERSION": "1.2.3", "RETRIES": 3}}
SERVICES = {
    "ollama": {
        "description": "LLM inference engine",
        "image": {"registry": "docker.io", "repository": "ollama/ollama", "tag": "0.32.15", "digest": ""},
        "port": 11434,
        "container_port": 11434,
        "gpu": True,
        "placement": "gpu_nodes",
        "fleet_port": True,
        "unauthenticated": "no login",
        "networks": ["intranet"],
        "data": [{"path": "ollama", "target": "/root/.ollama", "owner": 0, "group": 0, "mode": "0755"}],
        "backup": {"models": ["ollama/models"]},
        "probe": {"path": "/api/version"},
        "compose": {"healthcheck": {"test": ["CMD", "ollama", "list"]}},
    },
    "web": {
        "image": {"registry": "ghcr.io", "repository": "open-webui/open-webui", "tag": "v0.12.4", "digest": ""},
        "gpu_image_tag_suffix": "-cuda",
        "gpu": "true",
        "min_version": {"version": "0.6.14", "feature": "WEBUI_SECRET_KEY_FILE"},
        "port": 3000,
        "container_port": 8080,
        "user": "0:0",
        "networks": ["intranet"],
        "env": {"OLLAMA": "http://ollama:<<port:ollama>>", "SIGNUP": False, "PORT": 8080, "UNSET": None, "RATIO": 0.5},
        "secret_files": [{"secret": "web_key", "target": "/run/secrets/web_key", "owner": 0}],
        "depends_on": {"ollama": "service_healthy"},
        "probe": {},
    },
    "db": {
        "enabled": True,
        "image": IMAGE,
        "data": [{"path": "db", "target": "/var/lib/postgresql/data", "owner": 70, "group": 70, "mode": "0700"}],
        "env": {"POSTGRES_PASSWORD_FILE": "/run/secrets/db_password"},
        "secret_files": [{"secret": "db_password", "target": "/run/secrets/db_password", "owner": 70}],
        "backup": {"postgres": {"user": "coolify", "password_secret": "db_password"}},
        "probe": {},
    },
    "cache": {
        "enabled": "yes",
        "image": {"registry": "docker.io", "repository": "library/redis", "tag": "7-alpine", "digest": ""},
        "user": 999,
        "data": [{"path": "cache", "target": "/data", "owner": 999, "group": "redis", "mode": "0750"}],
        "config_files": [{"path": "config/cache/redis.conf", "target": "/etc/redis.conf", "owner": 999, "group": 1000,
                          "dir_group": 1000, "mode": "0400", "content": "requirepass <<secret:cache_password>>\n"}],
        "backup": {"redis": {"config": "/etc/redis.conf"}},
    },
    "tool": {
        "credentials": ["tool_token"],
        "port": 3303,
        "publish_via": "gateway",
        "build": BUILD,
        "secret_files": [{"secret": "tool_token", "target": "/run/secrets/token", "owner": 1000, "path": "secrets/tool-token"}],
    },
    "gateway": {
        "build": {"base": IMAGE, "dockerfile": "FROM ${BASE_IMAGE}\n", "files": []},
        "config_files": [{"path": "config/gateway/tool.conf", "target": "/etc/nginx/tool.conf", "owner": 0, "group": 0,
                          "mode": "0444", "content": "key <<secret:access_key>>;\n", "with_service": "tool"},
                         {"base": "data", "path": "gateway/.env", "target": "/app/.env", "content": "A=1\n"}],
        "depends_on": {"tool": "service_healthy"},
    },
    "dashboard": {
        "build": BUILD,
        "port": 3304,
        "container_port": 8080,
        "extra_ports": [{"host": 3305, "container": 8081}],
        "probe": {"path": "/api/status"},
    },
}


def stack(service=None, **changes):
    definition = {
        "name": "main",
        "services": copy.deepcopy(SERVICES),
        "secrets": {"web_key": {}, "db_password": {"pinned": True}, "cache_password": {}, "tool_token": {"credential": True},
                    "access_key": {"length": 48}},
        "networks": {"intranet": {"driver": "bridge"}},
        "variables": {"catalogue": "main_stack_catalogue"},
    }
    for key, value in changes.items():
        if value is DELETE:
            definition["services"][service].pop(key)
        else:
            definition["services"][service][key] = value
    return definition


def test_the_example_stack_has_no_problem():
    assert catalogue_problems(stack()) == []


def test_a_null_value_is_a_key_left_out_except_where_the_engine_reads_null():
    assert catalogue_problems(stack("db", port=None, user=None, env=None, probe=None, networks=None)) == []
    assert catalogue_problems(stack("db", enabled=None)) == [
        "main stack: main_stack_catalogue.db.enabled is null, but it must be true or false; give true or false instead."
    ]


def test_an_unknown_key_is_named_with_the_closest_known_one():
    assert catalogue_problems(stack("ollama", probe_path="/api/version")) == [
        "main stack: main_stack_catalogue.ollama has the key probe_path, which no part of homelab.core reads; "
        "did you mean probe? Rename it."
    ]
    assert catalogue_problems(stack("db", healthcheck={"test": ["CMD", "true"]})) == [
        "main stack: main_stack_catalogue.db has the key healthcheck, which no part of homelab.core reads; remove it "
        "(the keys are listed in the compose_stack role's README)."
    ]


def test_without_a_variable_name_the_sentence_says_catalogue():
    definition = stack("db", healthcheck={})
    del definition["variables"]
    assert catalogue_problems(definition)[0].startswith("main stack: catalogue.db has the key healthcheck")


def test_a_catalogue_that_is_not_a_mapping_is_one_sentence():
    definition = stack()
    definition["services"] = ["ollama"]
    assert catalogue_problems(definition) == [
        "main stack: main_stack_catalogue must be a mapping of service name to entry, not a list; write one entry per service."
    ]


# (service, changes, the key path the sentence names, what else it says)
RULES = [
    # Unknown keys, at the top and inside.
    ("ollama", {"probe_path": "/x"}, "ollama has the key probe_path", "did you mean probe? Rename it."),
    ("db", {"healthcheck": {}}, "db has the key healthcheck", "remove it (the keys are listed"),
    ("ollama", {"probe": {"paht": "/x"}}, "ollama.probe has the key paht", "did you mean path? Rename it."),
    ("ollama", {"data": [{"path": "ollama", "taget": "/root"}]}, "ollama.data[0] has the key taget", "did you mean target?"),
    ("db", {"backup": {"mysql": {}}}, "db.backup has the key mysql", "remove it (backup may have only postgres, redis"),
    ("web", {"image": dict(IMAGE, digets="")}, "web.image has the key digets", "did you mean digest?"),
    # Wrong types.
    ("ollama", {"port": "11434"}, "ollama.port is '11434' (a string)", "must be a whole number from 1 to 65535; give a whole number from 1 to 65535 instead."),
    ("ollama", {"port": 70000}, "ollama.port is 70000", "must be a whole number from 1 to 65535"),
    ("ollama", {"port": True}, "ollama.port is true (a boolean)", "must be a whole number from 1 to 65535"),
    ("ollama", {"container_port": "11434"}, "ollama.container_port is '11434'", "must be a whole number from 1 to 65535"),
    ("db", {"enabled": "ture"}, "db.enabled is 'ture' (a string)", "must be true or false"),
    ("ollama", {"gpu": 1}, "ollama.gpu is 1 (a whole number)", "must be true or false"),
    ("ollama", {"fleet_port": "false"}, "ollama.fleet_port is 'false' (a string)", "must be true or false"),
    ("db", {"user": [70]}, "db.user is [70] (a list)", "must be a whole number or a string"),
    ("db", {"description": 5}, "db.description is 5", "must be a string"),
    ("ollama", {"unauthenticated": True}, "ollama.unauthenticated is true", "must be a string"),
    ("ollama", {"placement": "gpu_node"}, "ollama.placement is 'gpu_node'",
     "is not one of gpu_nodes, control; did you mean gpu_nodes? Use one of those."),
    ("ollama", {"placement": None}, "ollama.placement is null", "must be a string"),
    ("web", {"image": "ghcr.io/open-webui/open-webui:v0.12.4"}, "web.image is 'ghcr.io", "must be a mapping"),
    ("web", {"image": dict(IMAGE, tag=1.1)}, "web.image.tag is 1.1 (a number)", "quote it, as in \"1.10\""),
    ("web", {"image": {"tag": "1"}}, "web.image has no repository", "add it."),
    ("web", {"gpu_image_tag_suffix": ["-cuda"]}, "web.gpu_image_tag_suffix is ['-cuda']", "must be a string"),
    ("db", {"data": {"path": "db"}}, "db.data is {'path': 'db'} (a mapping)", "must be a list"),
    ("db", {"data": [{"target": "/var/lib"}]}, "db.data[0] has no path", "add it."),
    ("db", {"data": [{"path": "db", "mode": 493}]}, "db.data[0].mode is 493 (a whole number)", "quote it, as in \"0755\""),
    ("db", {"data": [{"path": "db", "mode": "u+rwx"}]}, "db.data[0].mode is 'u+rwx'", "is not an octal file mode"),
    ("db", {"data": [{"path": "db", "owner": 7.5}]}, "db.data[0].owner is 7.5", "must be a whole number or a string"),
    ("db", {"data": ["db"]}, "db.data[0] is 'db' (a string)", "must be a mapping"),
    ("web", {"env": ["A=1"]}, "web.env is ['A=1']", "must be a mapping"),
    ("web", {"env": {"A": ["1"]}}, "web.env.A is ['1']", "a list or mapping is not an environment value"),
    ("web", {"env": {1: "x"}}, "web.env has the key 1 (a whole number)", "keys are strings, quote it."),
    ("web", {"secret_files": [{"secret": "web_key"}]}, "web.secret_files[0] has no target", "add it."),
    ("web", {"secret_files": [{"secret": "web_key", "target": "/x", "owner": None}]}, "web.secret_files[0].owner is null",
     "must be a whole number or a string"),
    ("cache", {"config_files": [{"path": "c", "target": "/c"}]}, "cache.config_files[0] has no content", "add it."),
    ("gateway", {"config_files": [{"path": "c", "target": "/c", "content": "", "base": "date"}]},
     "gateway.config_files[0].base is 'date'", "did you mean data?"),
    ("cache", {"config_files": [{"path": "c", "target": "/c", "content": {"a": 1}}]}, "cache.config_files[0].content is",
     "must be a string"),
    ("web", {"probe": "/health"}, "web.probe is '/health'", "must be a mapping"),
    ("ollama", {"probe": {"path": "api/version"}}, "ollama.probe.path is 'api/version'", "does not begin with /"),
    ("web", {"depends_on": {"ollama": "healthy"}}, "web.depends_on.ollama is 'healthy'", "did you mean service_healthy?"),
    ("web", {"depends_on": ["ollama"]}, "web.depends_on is ['ollama']", "must be a mapping"),
    ("db", {"compose": ["healthcheck"]}, "db.compose is ['healthcheck']", "must be a mapping"),
    ("web", {"min_version": {"version": "latest", "feature": "x"}}, "web.min_version.version is 'latest'", "is not a version"),
    ("web", {"min_version": {"version": 0.6, "feature": "x"}}, "web.min_version.version is 0.6", "quote it"),
    ("web", {"min_version": {"version": "0.6.14"}}, "web.min_version has no feature", "add it."),
    ("web", {"networks": "intranet"}, "web.networks is 'intranet'", "must be a list"),
    ("dashboard", {"extra_ports": [{"host": 3305}]}, "dashboard.extra_ports[0] has no container", "add it."),
    ("dashboard", {"extra_ports": [{"host": "3305", "container": 8081}]}, "dashboard.extra_ports[0].host is '3305'",
     "must be a whole number from 1 to 65535"),
    ("tool", {"credentials": "tool_token"}, "tool.credentials is 'tool_token'", "must be a list"),
    ("tool", {"build": dict(BUILD, dockerfile=None)}, "tool.build.dockerfile is null", "must be a string"),
    ("tool", {"build": {"dockerfile": "FROM x\n"}}, "tool.build has no base", "add it."),
    ("tool", {"build": dict(BUILD, files=[{"path": "run.sh"}])}, "tool.build.files[0] has no content", "add it."),
    ("tool", {"build": dict(BUILD, args={"V": ["1"]})}, "tool.build.args.V is ['1']", "must be a string or a number"),
    ("tool", {"build": dict(BUILD, base="node:24")}, "tool.build.base is 'node:24'", "must be a mapping"),
    ("tool", {"publish_via": 3}, "tool.publish_via is 3", "must be a string"),
    ("db", {"backup": {"postgres": {"password_secret": "db_password"}}}, "db.backup.postgres has no user", "add it."),
    ("ollama", {"backup": {"models": "ollama/models"}}, "ollama.backup.models is 'ollama/models'", "must be a list"),
    ("db", {"image": None}, "db has neither image nor build", "give it an image {registry, repository, tag, digest} or a build."),
    # Combinations the engine cannot honour.
    ("web", {"port": DELETE}, "web.container_port is set, but the service has no port", "add port, or remove container_port."),
    ("tool", {"container_port": 3000}, "tool.container_port is never used: with publish_via", "remove container_port"),
    ("tool", {"port": DELETE}, "tool.publish_via names gateway, but the service has no port", "add port, or remove publish_via."),
    ("tool", {"publish_via": "gatewy"}, "tool.publish_via names gatewy, which is no other service",
     "did you mean gateway? Name the gateway service"),
    ("tool", {"publish_via": "tool"}, "tool.publish_via names tool, which is no other service", "remove publish_via."),
    ("db", {"probe": {"path": "/health"}}, "db.probe has a path, but the service publishes no port",
     "make the probe {} (container health only)."),
    ("db", {"fleet_port": True}, "db.fleet_port is true, but the service has no port", "remove fleet_port."),
    ("tool", {"image": IMAGE}, "tool.image is never pulled: the service has a build", "remove image"),
    ("tool", {"gpu_image_tag_suffix": "-cuda"}, "tool.gpu_image_tag_suffix is never used: a built image",
     "remove gpu_image_tag_suffix."),
    ("db", {"gpu_image_tag_suffix": "-cuda"}, "db.gpu_image_tag_suffix is never used: the suffix is appended only for a service with gpu",
     "add gpu: true, or remove gpu_image_tag_suffix."),
    ("tool", {"min_version": {"version": "1.0", "feature": "x"}}, "tool.min_version cannot be checked: a built image",
     "remove min_version"),
    ("db", {"compose": {"logging": {"driver": "local"}}}, "db.compose.logging is replaced by the engine's own logging",
     "remove compose.logging."),
    ("ollama", {"compose": {"deploy": {"resources": {}}}}, "ollama.compose.deploy is replaced by the GPU reservation",
     "remove compose.deploy, or gpu."),
    ("cache", {"data": DELETE}, "cache.backup.redis needs the service's data", "add data, or remove backup.redis."),
    ("db", {"backup": {"postgres": {"user": "coolify", "password_secret": "web_key"}}},
     "db.backup.postgres.password_secret names web_key, which is not one of the service's secret_files",
     "add a secret_files entry for web_key, or name one of db_password."),
    ("web", {"depends_on": {"olama": "service_healthy"}}, "web.depends_on names olama, which is no other service",
     "did you mean ollama? Rename it, or remove it."),
    ("gateway", {"config_files": [{"path": "c", "target": "/c", "content": "", "with_service": "tol"}]},
     "gateway.config_files[0].with_service names tol, which is no service", "did you mean tool? Rename it, or remove with_service."),
    ("web", {"env": {"KEY": "<<secret:web_kye>>"}}, "web.env.KEY has <<secret:web_kye>>, but the stack declares no secret",
     "did you mean web_key? Rename it, or declare it in the stack's secret catalogue."),
    ("cache", {"config_files": [{"path": "c", "target": "/c", "content": "<<port:db>>"}]},
     "cache.config_files[0].content has <<port:db>>, but db is no service of this catalogue with a port",
     "name a service that has a port."),
    ("web", {"secret_files": [{"secret": "web_kee", "target": "/x"}]}, "web.secret_files[0].secret names web_kee",
     "did you mean web_key? Rename it, or declare it there."),
    ("tool", {"credentials": ["tool_tokn"]}, "tool.credentials names tool_tokn, which the stack's secret catalogue does not declare",
     "the service is never deployed"),
    ("web", {"networks": ["intarnet"]}, "web.networks names intarnet, which the stack does not define",
     "did you mean intranet? Use one of intranet"),
]


@pytest.mark.parametrize("service, changes, names, says", RULES, ids=["%s-%s" % (rule[0], rule[2].split(" ")[0]) for rule in RULES])
def test_each_rule_is_one_sentence_naming_stack_service_and_key(service, changes, names, says):
    problems = catalogue_problems(stack(service, **changes))
    assert len(problems) == 1, problems
    assert problems[0].startswith("main stack: main_stack_catalogue." + names), problems[0]
    assert says in problems[0], problems[0]


def test_cross_references_are_checked_only_against_what_the_definition_gives():
    definition = stack("web", networks=["elsewhere"], secret_files=[{"secret": "other", "target": "/x"}])
    del definition["networks"], definition["secrets"]
    assert catalogue_problems(definition) == []


# --- The README table -------------------------------------------------------------------


def test_the_table_has_one_row_per_key_in_the_schema_order():
    rows = [line for line in schema_markdown_table().splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == list(SCHEMA)
    assert "| `image` | dict {registry, repository, tag, digest} | unless `build` |" in schema_markdown_table()
    assert "| `placement` | str (gpu_nodes, control) | no |" in schema_markdown_table()


def _readme_tree(tmp_path):
    """The files role_docs.py reads for the compose_stack role, laid out as in the repository."""
    for path in ("tests/scripts/role_docs.py", "plugins/module_utils/_catalogue_schema.py",
                 "roles/compose_stack/README.md", "roles/compose_stack/meta/argument_specs.yml"):
        os.makedirs(os.path.dirname(str(tmp_path / path)), exist_ok=True)
        shutil.copy(os.path.join(REPOSITORY, path), str(tmp_path / path))
    return tmp_path


def _role_docs(tree, *args):
    return subprocess.run([sys.executable, str(tree / "tests/scripts/role_docs.py")] + list(args),
                          capture_output=True, text=True, check=False)


def test_role_docs_writes_the_catalogue_table_and_check_fails_when_it_drifts(tmp_path):
    tree = _readme_tree(tmp_path)
    readme = tree / "roles/compose_stack/README.md"
    assert _role_docs(tree).returncode == 0
    assert schema_markdown_table() in readme.read_text(encoding="utf-8")
    assert _role_docs(tree, "--check").returncode == 0
    readme.write_text(readme.read_text(encoding="utf-8").replace("| `gpu` | bool |", "| `gpu` | str |"), encoding="utf-8")
    result = _role_docs(tree, "--check")
    assert result.returncode == 1
    assert "roles/compose_stack/README.md (from plugins/module_utils/_catalogue_schema.py)" in result.stderr
    assert _role_docs(tree).returncode == 0
    assert _role_docs(tree, "--check").returncode == 0


def test_role_docs_refuses_a_readme_without_the_catalogue_markers(tmp_path):
    tree = _readme_tree(tmp_path)
    readme = tree / "roles/compose_stack/README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace("<!-- catalogue-keys:end -->", ""), encoding="utf-8")
    result = _role_docs(tree, "--check")
    assert result.returncode != 0
    assert "catalogue-keys" in result.stderr
