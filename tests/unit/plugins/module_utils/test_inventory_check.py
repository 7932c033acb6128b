"""_inventory_check.check: the one check of the inventory, one parametrized case per rule.

Each case changes one thing of a sound inventory and expects exactly the one sentence that names
the variable and the fix, never the value of a secret.
"""

from __future__ import annotations

import base64
import copy
import json

import pytest

from ansible_collections.homelab.core.plugins.module_utils._catalogue import validation_reads
from ansible_collections.homelab.core.plugins.module_utils._inventory_check import check

from test_catalogue import PERSISTED  # pylint: disable=import-error
from test_catalogue_ownership import account, owned  # pylint: disable=import-error

RECIPIENT = "age1cratkq57les6908fut5ha0c9pf8ga77e5vnj449hmfa5k64q3gesw4e59l"
BACKUP = {"homelab_root": "/opt/homelab", "homelab_data_root": "/opt/homelab/data", "backup_age_recipients": [RECIPIENT],
          "backup_keep": 7, "backup_lock_timeout": 900, "backup_destination": "/var/backups/homelab",
          "backup_restore_name": "latest"}
SPECS = {"docker": {"argument_specs": {"main": {"options": {
    "docker_install_source": {"type": "str", "choices": ["upstream", "distro"]}, "docker_users": {"type": "list"}}}}}}
TOKEN_SECRET = {"value": "bm90LWEtdG9rZW4tYXQtYWxs", "variable": "homelab_cloudflared_tunnel_token",
                "format": "cloudflared_tunnel_token"}
KEY_SECRET = {"pinned": True, "length": 48, "pattern": "^[A-Za-z0-9_-]{32,}$",
              "pattern_rule": "32 or more letters, digits, \"-\" or \"_\""}
X_OAUTH = ["x_key", "x_secret", "x_token", "x_token_secret"]


def reads(persisted=None, adopted=None, nonempty=()):
    """What read_files returns for the stack's validation reads on a host that has ``persisted``."""
    contents = {"/opt/homelab/secrets/main-stack.json": base64.b64encode(json.dumps(persisted).encode()).decode()} if persisted else {}
    contents.update(adopted or {})
    return {"contents": contents, "missing": [], "nonempty_dirs": list(nonempty)}


def with_secrets(**specs):
    secrets = copy.deepcopy(owned()["secrets"])
    secrets.update(specs)
    return secrets


def sound():
    return {"stacks": [owned()], "reads": reads(PERSISTED), "role_specs": SPECS, "host_vars": {}, "backup": BACKUP,
            "restore": BACKUP}


def case(stack_changes=None, **changes):
    arguments = sound()
    if stack_changes:
        arguments["stacks"] = [owned(**stack_changes)]
    arguments.update(changes)
    return arguments


def test_a_sound_inventory_passes_with_no_warning():
    assert check(**sound()) == {"problems": [], "warnings": []}


RULES = [
    # The fleet and Ollama's model list are worked out by their own pure code; the check passes them on.
    ("fleet", case(fleet_problems=["homelab_private_address is empty on gpu1; give its private address."]),
     "homelab_private_address is empty on gpu1; give its private address."),
    ("ollama-models", case(ollama_problem="ollama_models entry 2 ('Not A Model!') is not a model name."),
     "ollama_models entry 2 ('Not A Model!') is not a model name."),
    # Role argument specs.
    ("spec-choice", case(host_vars={"docker_install_source": "snap"}),
     "docker_install_source is 'snap', which role docker does not know; choose one of upstream, distro."),
    ("spec-type", case(host_vars={"docker_users": "alice"}),
     "docker_users must be a list (role docker); see roles/docker/README.md."),
    # Secret rules a definition declares as data.
    ("secret-format", case({"secrets": with_secrets(tunnel_token=TOKEN_SECRET)}),
     "homelab_cloudflared_tunnel_token does not decode to JSON; copy the whole token from the Cloudflare dashboard."),
    ("secret-pattern", case({"secrets": with_secrets(web_key=dict(KEY_SECRET, pinned=False)),
                             "inventory_secrets": {"web_key": "only-19-characters1"}}),
     "main_stack_secrets.web_key must be 32 or more letters, digits, \"-\" or \"_\"; leave it out to have one generated."),
    ("secret-group", case({"secrets": with_secrets(**{name: {"credential": True} for name in X_OAUTH}),
                           "secret_groups": [{"secrets": X_OAUTH, "reason": "X posts only with all four OAuth 1.0a keys"}],
                           "inventory_secrets": {"x_key": "k", "x_token": "t"}}),
     "main_stack_secrets gives x_key, x_token but not x_secret, x_token_secret; X posts only with all four OAuth 1.0a keys: "
     "add the missing ones, or remove these."),
    # The stack definitions (_catalogue.stack_problems).
    ("catalogue-unknown-key", case({"services": dict(owned()["services"], db=dict(owned()["services"]["db"], probe_path="/x")),
                                    "variables": dict(owned()["variables"], catalogue="main_stack_catalogue")}),
     "main stack: main_stack_catalogue.db has the key probe_path, which no part of homelab.core reads; did you mean probe?"),
    ("relative-root", case({"root": "opt/homelab"}), "homelab_root (opt/homelab) must be an absolute path"),
    ("bind-any", case({"bind_address": "0.0.0.0"}), "homelab_bind_address (0.0.0.0) would publish every port beyond this host"),
    ("domain", case({"public_domain": "lab.example.org/evil"}), "homelab_public_domain (lab.example.org/evil) is not a DNS name"),
    ("subnet", case({"subnets": {"main_stack_coolify_subnet": "8.8.8.0/24"}}), "main_stack_coolify_subnet (8.8.8.0/24) is not a private network"),
    ("image-override-shape", case({"overrides": {"images": {"ollama": "1.0"}, "ports": {}}}),
     "main_stack_images.ollama must be a mapping such as {tag: \"1.2.3\"}"),
    ("image-override-latest", case({"overrides": {"images": {"ollama": {"tag": "latest"}}, "ports": {}}}),
     "main_stack_images.ollama.tag 'latest' is not a pinned tag"),
    ("port-unknown-service", case({"overrides": {"images": {}, "ports": {"olama": 1}}}), "main_stack_ports has an unknown service 'olama'"),
    ("port-range", case({"overrides": {"images": {}, "ports": {"ollama": 99999}}}),
     "main_stack_ports.ollama is 99999, which is not a port; give a whole number from 1 to 65535."),
    ("port-collision", case({"overrides": {"images": {}, "ports": {"open-webui": 11434}}}),
     "main_stack_ports.ollama and main_stack_ports.open-webui publish the same host port 11434"),
    ("secret-unknown", case({"inventory_secrets": {"db_pasword": "x" * 20}}), "main_stack_secrets has unknown key(s) db_pasword"),
    ("secret-character", case({"inventory_secrets": {"web_key": "Pa55word\nrename-command"}}),
     "main_stack_secrets.web_key has a character that a file it is written to would misread"),
    ("secret-short", case({"inventory_secrets": {"web_key": "short"}}), "main_stack_secrets.web_key must be a string of 16 characters or more"),
    ("rotate-unknown", case({"rotate_secrets": ["nothing"]}), "main_stack_rotate_secrets names unknown secret(s) nothing"),
    ("pinned-change", case({"inventory_secrets": {"db_password": "another-db-password-0123"}}),
     "main_stack_secrets changes db_password, which this host already uses"),
    ("pinned-lost", case({}, reads=reads({"web_key": PERSISTED["web_key"]}, nonempty=["/opt/homelab/data/db"])),
     "/opt/homelab/secrets/main-stack.json does not hold db_password, but /opt/homelab/data/db already hold data"),
    ("account-missing-with-tunnel", case({"accounts": account(0, email="", password="")}),
     "homelab_cloudflared_tunnel_token is set, so the tunnel can reach Open-WebUI before anyone owns it"),
    ("account-email", case({"accounts": account(0, email="not-an-address")}),
     "main_stack_open_webui_admin_email (not-an-address) is not an email address"),
    ("account-password", case({"accounts": account(0, password="short")}), "main_stack_open_webui_admin_password must be 8 to 64 characters"),
    ("account-reserved-tld", case({"accounts": account(1, email="root@homelab.test")}),
     "main_stack_coolify_root_email ends in .test, which Coolify's root-user check refuses"),
    ("version-minimum", case({"services": dict(owned()["services"], ollama=dict(
        owned()["services"]["ollama"], min_version={"version": "0.6.0", "feature": "a feature"}))}),
     "main_stack_images.ollama.tag '0.5.12' is older than 0.6.0, the first with a feature"),
    # Backups and restores, for the playbooks that back up or restore.
    ("backup-no-recipient", case(backup=dict(BACKUP, backup_age_recipients=[])), "backup_age_recipients is empty:"),
    ("backup-not-a-key", case(backup=dict(BACKUP, backup_age_recipients=["ssh-ed25519 AAAA"])),
     "backup_age_recipients has ssh-ed25519 AAAA, which is not an age public key;"),
    ("backup-keep", case(backup=dict(BACKUP, backup_keep=0)), "backup_keep must be 1 or more, not 0."),
    ("backup-lock-timeout", case(backup=dict(BACKUP, backup_lock_timeout=-1)), "backup_lock_timeout must be 0 or more seconds, not -1."),
    ("backup-inside-root", case(backup=dict(BACKUP, backup_destination="/opt/homelab/data/backups")),
     "backup_destination must be an absolute path outside homelab_root (/opt/homelab), not /opt/homelab/data/backups:"),
    ("restore-name", case(restore=dict(BACKUP, backup_restore_name="yesterday")),
     "backup_restore_name must be latest or a backup's directory name such as 20261203T051500Z"),
]


@pytest.mark.parametrize("arguments, sentence", [rule[1:] for rule in RULES], ids=[rule[0] for rule in RULES])
def test_each_rule_refuses_with_one_sentence_naming_the_variable(arguments, sentence):
    problems = check(**arguments)["problems"]
    assert len(problems) == 1 and problems[0].startswith(sentence), problems
    assert "rename-command" not in problems[0] and "bm90LWEtdG9rZW4" not in problems[0]


def test_nothing_read_checks_the_inventory_alone():
    # A unit test of the inventory, or a playbook with no stack: no host reads, no reset check.
    assert check([owned()])["problems"] == []
    assert validation_reads([]) == {"files": [], "dirs": []}


def test_backup_and_restore_settings_are_checked_only_when_asked():
    quiet = sound()
    quiet.update(backup=None, restore=None)
    assert check(**quiet)["problems"] == []
    quiet["backup"] = dict(BACKUP, backup_keep=0)
    assert check(**quiet)["problems"] == ["backup_keep must be 1 or more, not 0."]


def test_the_health_check_asks_the_setup_page_of_each_service_whose_account_the_inventory_gives():
    from ansible_collections.homelab.core.plugins.filter.stack_plan import stack_plan

    definition = owned()
    definition["services"]["open-webui"]["setup_page"] = {"path": "/api/config", "rule": "open-webui"}
    probes = {probe["service"]: probe for probe in stack_plan(definition, persisted=PERSISTED)["probes"]}
    assert probes["open-webui"]["setup_page"] == {"url": "http://127.0.0.1:3000/api/config", "rule": "open-webui"}
    assert "setup_page" not in probes["ollama"]
    # Without the account in the inventory, the page is a warning of the first play, not a health failure.
    unowned = owned(accounts=account(0, email="", password=""))
    unowned["services"]["open-webui"]["setup_page"] = {"path": "/api/config", "rule": "open-webui"}
    assert "setup_page" not in {probe["service"]: probe for probe in stack_plan(unowned, persisted=PERSISTED)["probes"]}["open-webui"]


def test_a_secret_a_service_keeps_itself_is_a_warning_that_names_it_never_its_value():
    definition = owned()
    definition["adopt_secrets"] = {"db_password": {"path": "/opt/homelab/data/db/config", "json_key": "encryptionKey"}}
    kept = {"/opt/homelab/data/db/config": base64.b64encode(json.dumps({"encryptionKey": "the-key-in-use-0123"}).encode()).decode()}
    found = check([definition], reads=reads(PERSISTED, adopted=kept))
    assert found["problems"] == []
    assert found["warnings"] == ["db_password differed from /opt/homelab/secrets/main-stack.json and is kept as the service "
                                 "itself uses it; the secrets file now holds that value."]
    assert "the-key-in-use" not in found["warnings"][0]
