"""The requirements.yml range check used by `make lint`."""

from __future__ import annotations

import importlib.util
import os

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "check_collection_versions.py")
spec = importlib.util.spec_from_file_location("check_collection_versions", SCRIPT)
check_collection_versions = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_collection_versions)

REQUIREMENTS = {"collections": [{"name": "community.docker", "version": ">=4.0.0,<5.0.0"}]}


def test_version_inside_range_passes():
    assert check_collection_versions.check(REQUIREMENTS, {"community.docker": "4.8.5"}) == []


def test_version_outside_range_fails_with_names():
    problems = check_collection_versions.check(REQUIREMENTS, {"community.docker": "5.0.1"})
    assert problems == ["community.docker 5.0.1 is installed but requirements.yml wants >=4.0.0,<5.0.0"]


def test_missing_collection_fails():
    problems = check_collection_versions.check(REQUIREMENTS, {})
    assert problems == ["community.docker is not installed (requirements.yml wants >=4.0.0,<5.0.0)"]


KNOWN = {"community.docker": "4.8.5", "community.general": "11.4.0", "ansible.posix": "2.1.0", "ansible.builtin": "2.19.0"}


def test_fqcns_in_tasks_filters_lookups_and_connections_are_found():
    text = """
- name: An ini file
  community.general.ini_file:
    path: /x
- name: A compose project
  community.docker.docker_compose_v2: {project_src: /x}
  vars:
    key: "{{ lookup('ansible.posix.profile_tasks_is_not_a_lookup') }}"
connection: community.docker.docker
- ansible.builtin.debug:
    msg: host.docker.internal:host-gateway org.homelab.config-hash
"""
    assert check_collection_versions.used_collections(text, KNOWN) == {"community.general", "community.docker", "ansible.posix"}


def test_a_used_collection_missing_from_the_declarations_fails_with_its_file():
    uses = {"community.crypto": "roles/main_stack/tasks/coolify.yml", "community.docker": "roles/x.yml"}
    assert check_collection_versions.undeclared(uses, ["community.docker"], "requirements.yml") == [
        "community.crypto is used (roles/main_stack/tasks/coolify.yml) but not declared in requirements.yml"
    ]


def test_the_repository_declares_every_collection_it_uses():
    root = os.path.join(os.path.dirname(__file__), "..", "..", "..")
    uses = check_collection_versions.repository_uses(root, check_collection_versions.SCANNED, KNOWN)
    assert "community.general" in uses and "community.docker" in uses
    # Coolify's key is a module of this collection now (root_login_key): nothing uses community.crypto.
    assert "community.crypto" not in check_collection_versions.repository_uses(
        root, check_collection_versions.SCANNED, dict(KNOWN, **{"community.crypto": "3.0.5"}))
