"""What a user observes on a host converged by site.yml with Debian's Docker packages."""

from __future__ import annotations

import json
import os
import sys

import pytest
from packaging.version import Version

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "integration"))
from junit_changes import changed_tasks, expected_changes, latest_report  # noqa: E402

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]


def daemon_config(host):
    return json.loads(host.file("/etc/docker/daemon.json").content_string)


def test_docker_service_is_enabled_and_running(host):
    service = host.service("docker")
    assert service.is_enabled
    assert service.is_running


def test_compose_v2_is_new_enough(host):
    version = host.check_output("docker compose version --short").lstrip("v")
    assert Version(version) >= Version("2.18.0")


def test_daemon_json_has_role_keys_and_keeps_the_foreign_key(host):
    config = daemon_config(host)
    assert config["log-driver"] == "json-file"
    assert config["log-opts"] == {"max-size": "10m", "max-file": "3"}
    assert config["labels"] == ["homelab-test=foreign-key"]
    daemon_json = host.file("/etc/docker/daemon.json")
    assert (daemon_json.user, daemon_json.group, daemon_json.mode) == ("root", "root", 0o644)


def test_running_daemon_loaded_the_merged_config(host):
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["LoggingDriver"] == "json-file"
    assert "homelab-test=foreign-key" in info["Labels"]


def test_a_container_runs_inside_the_target(host):
    # No registry is reachable: import a tiny image made of /usr/bin/echo and its libraries.
    host.check_output(
        "tar -chf /root/echo-rootfs.tar -C / usr/bin/echo "
        "$(ldd /usr/bin/echo | grep -o '/[^ ]*' | sed 's|^/||' | sort -u) "
        "&& docker import /root/echo-rootfs.tar homelab-test/echo:local"
    )
    output = host.check_output("docker run --rm homelab-test/echo:local /usr/bin/echo hello-from-inside")
    assert output == "hello-from-inside"


def test_last_converge_changed_only_the_drift(host):
    """First verify: the idempotence run changed nothing. After the side effect: only the repairs."""
    changed = changed_tasks(latest_report(os.path.join(EPHEMERAL, "junit")))
    assert changed == expected_changes(EPHEMERAL)


@pytest.mark.parametrize("path", ["/etc/apt/sources.list.d/docker.list", "/etc/apt/sources.list.d/docker.sources"])
def test_distro_install_adds_no_upstream_repository(host, path):
    assert not host.file(path).exists
