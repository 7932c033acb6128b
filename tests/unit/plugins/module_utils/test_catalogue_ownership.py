"""Ownership and exposure checks of the catalogue (issue 22): one parametrized case per rule.

Each rule is a sentence of _catalogue.stack_problems (a refusal of the first play's check,
homelab.core.check_inventory) or of _catalogue.stack_warnings (a warning), naming the variable and
never printing a secret.
"""

from __future__ import annotations

import copy
import os

import bcrypt
import pytest

from ansible_collections.homelab.core.plugins.module_utils import _catalogue, _stack_files
from ansible_collections.homelab.core.plugins.module_utils._catalogue import stack_problems, stack_warnings, validation_reads
from ansible_collections.homelab.core.plugins.module_utils._inventory_check import argument_spec_problems as inventory_problems
from ansible_collections.homelab.core.plugins.module_utils._setup_pages import is_open
from ansible_collections.homelab.core.plugins.plugin_utils._collection_data import role_specs

from test_catalogue import PERSISTED, STACK  # pylint: disable=import-error

ACCOUNTS = [
    {"service": "open-webui", "label": "Open-WebUI", "email": "admin@homelab.test", "password": "Admin-Pass-1",
     "password_rule": "basic", "names": {"main_stack_open_webui_admin_name": "Homelab Admin"},
     "variables": {"email": "main_stack_open_webui_admin_email", "password": "main_stack_open_webui_admin_password"}},
    {"service": "db", "label": "the database", "email": "root@homelab.org", "password": "Root-Pass-1",
     "password_rule": "coolify", "names": {},
     "variables": {"email": "main_stack_coolify_root_email", "password": "main_stack_coolify_root_password"}},
]


def owned(**changes):
    definition = copy.deepcopy(STACK)
    definition.update(accounts=copy.deepcopy(ACCOUNTS), tunnel=True, public_domain="lab.example.org",
                      subnets={"main_stack_coolify_subnet": "172.31.250.0/24"})
    for key, value in changes.items():
        definition[key] = value
    return definition


def account(index, **changes):
    accounts = copy.deepcopy(ACCOUNTS)
    accounts[index].update(changes)
    return accounts


def test_a_sound_inventory_has_no_problem_and_no_warning():
    assert stack_problems([owned()], persisted={"main": PERSISTED}, nonempty_dirs=["/opt/homelab/data/db"]) == []
    assert stack_warnings([owned()]) == []


HOSTILE = "Pa55word\nrename-command CONFIG \"\""


@pytest.mark.parametrize(
    "changes, sentence",
    [
        ({"inventory_secrets": {"db_password": HOSTILE}},
         "main_stack_secrets.db_password has a character that a file it is written to would misread; use only letters, "
         "digits and ! % & ( ) * + , - . / : ; < = > ? @ [ ] ^ _ { | } ~."),
        ({"inventory_secrets": {"db_password": "a password with spaces in it"}},
         "main_stack_secrets.db_password has a character that a file it is written to would misread;"),
        ({"inventory_secrets": {"db_password": "dollar$sign-and-more-0123"}},
         "main_stack_secrets.db_password has a character"),
        ({"accounts": account(0, password=HOSTILE)},
         "main_stack_open_webui_admin_password has a character that a file it is written to would misread;"),
        ({"accounts": account(0, names={"main_stack_open_webui_admin_name": "Admin\nEVIL=1"})},
         "main_stack_open_webui_admin_name must be a non-empty name without quotes, backslashes, $, # or line breaks"),
        ({"bind_address": "0.0.0.0"},
         "homelab_bind_address (0.0.0.0) would publish every port beyond this host, where Docker's published ports bypass "
         "the firewall; keep 127.0.0.1 and reach the services through the tunnel, or set homelab_expose_on_lan: true to "
         "accept that."),
        ({"bind_address": "192.168.1.20"}, "homelab_bind_address (192.168.1.20) would publish every port beyond this host"),
        ({"public_domain": "lab.example.org/evil"},
         "homelab_public_domain (lab.example.org/evil) is not a DNS name; give a bare domain such as lab.example.org"),
        ({"public_domain": "https://lab.example.org"}, "homelab_public_domain (https://lab.example.org) is not a DNS name"),
        ({"accounts": account(0, email="", password="")},
         "homelab_cloudflared_tunnel_token is set, so the tunnel can reach Open-WebUI before anyone owns it; set "
         "main_stack_open_webui_admin_email and main_stack_open_webui_admin_password (vault) so its admin account exists "
         "before its port opens."),
        ({"accounts": account(0, email="not-an-address")},
         "main_stack_open_webui_admin_email (not-an-address) is not an email address"),
        ({"accounts": account(0, password="")},
         "main_stack_open_webui_admin_password is required when main_stack_open_webui_admin_email is set"),
        ({"accounts": account(0, password="short")}, "main_stack_open_webui_admin_password must be 8 to 64 characters"),
        ({"accounts": account(1, email="root@homelab.test")},
         "main_stack_coolify_root_email ends in .test, which Coolify's root-user check refuses"),
        ({"accounts": account(1, password="Rootpass1")},
         "main_stack_coolify_root_password must be 8 characters or more with upper- and lowercase letters, a digit and a "
         "symbol"),
        ({"subnets": {"main_stack_coolify_subnet": "8.8.8.0/24"}},
         "main_stack_coolify_subnet (8.8.8.0/24) is not a private network of 8 addresses or more in CIDR form"),
        ({"subnets": {"main_stack_coolify_subnet": "172.31.250.1/24"}},
         "main_stack_coolify_subnet (172.31.250.1/24) is not a private network"),
        ({"accounts": account(1, password="weak-pass-1", password_rule="n8n")},
         "main_stack_coolify_root_password must be 8 to 64 characters with a digit and an uppercase letter (n8n's rule)"),
    ],
    ids=["newline-secret", "space-secret", "dollar-secret", "hostile-account-password", "hostile-name", "bind-any",
         "bind-lan", "domain-with-path", "domain-with-scheme", "tunnel-without-account", "bad-email",
         "missing-password", "short-password", "coolify-reserved-tld", "coolify-weak-password", "public-subnet",
         "host-bits-set", "n8n-weak-password"],
)
def test_each_rule_is_one_sentence_naming_the_variable_and_never_the_value(changes, sentence):
    # A new host: nothing persisted yet.
    problems = stack_problems([owned(**changes)], persisted={"main": {}})
    assert len(problems) == 1 and problems[0].startswith(sentence), problems
    assert "Pa55word" not in problems[0] and "rename-command" not in problems[0]


def test_a_lost_pinned_secret_over_live_data_is_refused_until_restored_given_or_rotated():
    lost = {key: value for key, value in PERSISTED.items() if key != "db_password"}
    reads = validation_reads([owned()])
    assert reads == {"files": ["/opt/homelab/secrets/main-stack.json"], "dirs": ["/opt/homelab/data/db"]}
    assert stack_problems([owned()], persisted={"main": lost}, nonempty_dirs=["/opt/homelab/data/db"]) == [
        "/opt/homelab/secrets/main-stack.json does not hold db_password, but /opt/homelab/data/db already hold data set up "
        "with it, and a new value would lock the services out of it; put the file back (playbooks/restore.yml restores "
        "it from a backup), give the old value in main_stack_secrets, or list the name in main_stack_rotate_secrets to "
        "accept a reset."]
    # A new host (empty data), the value from the vault, or a reset asked for: no problem.
    assert stack_problems([owned()], persisted={"main": {}}, nonempty_dirs=[]) == []
    given = owned(inventory_secrets={"db_password": "the-old-db-password-0123"})
    assert stack_problems([given], persisted={"main": lost}, nonempty_dirs=["/opt/homelab/data/db"]) == []
    rotated = owned(rotate_secrets=["db_password"])
    assert stack_problems([rotated], persisted={"main": lost}, nonempty_dirs=["/opt/homelab/data/db"]) == []


def test_without_a_tunnel_a_missing_account_is_a_warning_with_the_local_url():
    definition = owned(tunnel=False, accounts=account(0, email="", password=""))
    assert stack_problems([definition], persisted={"main": PERSISTED}) == []
    assert stack_warnings([definition]) == [
        "Open-WebUI has no admin account from the inventory (main_stack_open_webui_admin_email), so whoever first opens "
        "http://127.0.0.1:3000/ owns it; set main_stack_open_webui_admin_email and main_stack_open_webui_admin_password, "
        "or claim it yourself now."]


def test_exposure_on_purpose_is_accepted_and_names_each_port_without_a_login():
    definition = owned(bind_address="0.0.0.0", expose_on_lan=True)
    definition["services"]["ollama"]["unauthenticated"] = "Ollama's API has no login"
    assert stack_problems([definition], persisted={"main": PERSISTED}) == []
    assert stack_warnings([definition]) == [
        "homelab_bind_address is 0.0.0.0 and homelab_expose_on_lan is true, so these answer anyone who reaches this host, "
        "with no login of their own: ollama on port 11434 (Ollama's API has no login)."]


def test_the_bcrypt_hash_is_stable_per_host_and_password_and_never_persisted():
    first = _catalogue.bcrypt_hash("Owner-Pass-1", "k" * 48, "n8n_owner_password_hash")
    assert bcrypt.checkpw(b"Owner-Pass-1", first.encode()) and first.startswith("$2b$10$") and len(first) == 60
    assert _catalogue.bcrypt_hash("Owner-Pass-1", "k" * 48, "n8n_owner_password_hash") == first
    assert _catalogue.bcrypt_hash("Owner-Pass-2", "k" * 48, "n8n_owner_password_hash") != first
    assert _catalogue.bcrypt_hash("Owner-Pass-1", "another-host-key", "n8n_owner_password_hash") != first
    assert _catalogue.bcrypt_hash("", "k" * 48) == ""
    definition = owned(secrets=dict(STACK["secrets"], owner_hash={"bcrypt_of": "Owner-Pass-1"}))
    values = _catalogue.resolve_secrets(definition, PERSISTED)
    assert bcrypt.checkpw(b"Owner-Pass-1", values["owner_hash"].encode())
    assert "owner_hash" not in _stack_files.persisted_secrets(definition, values)


SPECS = {"docker": {"argument_specs": {"main": {"options": {
    "docker_install_source": {"type": "str", "choices": ["upstream", "distro"]},
    "docker_users": {"type": "list"}, "docker_restart_handler": {"type": "bool"}}}}}}


@pytest.mark.parametrize(
    "host_vars, sentences",
    [
        ({"docker_install_source": "snap"},
         ["docker_install_source is 'snap', which role docker does not know; choose one of upstream, distro."]),
        ({"docker_users": "alice"}, ["docker_users must be a list (role docker); see roles/docker/README.md."]),
        ({"docker_restart_handler": "maybe"}, ["docker_restart_handler must be true or false (role docker); see roles/docker/README.md."]),
        ({"docker_install_source": "distro", "docker_users": ["alice"], "docker_restart_handler": "yes", "other": 1}, []),
    ],
    ids=["unknown-choice", "not-a-list", "not-a-bool", "all-fine"],
)
def test_the_inventory_is_checked_against_every_roles_argument_spec(host_vars, sentences):
    assert inventory_problems(SPECS, host_vars) == sentences


@pytest.mark.parametrize(
    "rule, status, answer, expected",
    [
        ("n8n", 200, {"data": {"userManagement": {"showSetupOnFirstLoad": False}}}, False),
        ("n8n", 200, {"data": {"userManagement": {"showSetupOnFirstLoad": True}}}, True),
        ("n8n", 200, None, True),
        ("open-webui", 200, {"features": {"enable_signup": False}}, False),
        ("open-webui", 200, {"onboarding": True, "features": {"enable_signup": False}}, True),
        ("open-webui", 200, {"features": {"enable_signup": True}}, True),
        ("coolify", 302, None, False),
        ("coolify", 200, None, True),
    ],
    ids=["n8n-owned", "n8n-setup", "n8n-unreadable", "webui-owned", "webui-onboarding", "webui-signup",
         "coolify-redirects", "coolify-form"],
)
def test_a_setup_page_counts_as_open_as_each_upstream_answers(rule, status, answer, expected):
    assert is_open(rule, status, answer) is expected


def test_the_collections_own_role_specs_are_read_and_applied():
    roles = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "roles")
    assert inventory_problems(role_specs(roles), {"docker_install_source": "snap", "homelab_gpu_mode": "sometimes"}) == [
        "docker_install_source is 'snap', which role docker does not know; choose one of upstream, distro.",
        "homelab_gpu_mode is 'sometimes', which role homelab does not know; choose one of auto, required, off."]
