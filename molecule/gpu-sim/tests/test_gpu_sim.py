"""What a user observes on the stand-in GPU host after site.yml with homelab_gpu_mode: required.

The GPU, its driver and the toolkit are stand-ins (tests/stand-ins/gpu/); Docker, apt, the
signature check, daemon.json, CDI resolution and the OCI hook path are real.
"""

from __future__ import annotations

import json
import os
import re
import sys

import pytest

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "integration"))
from junit_changes import changed_tasks, expected_changes, latest_report  # noqa: E402
from playbook_runs import gpu_facts, recap_changed  # noqa: E402

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
UUID = "GPU-5d3ec4a2-9a7f-2b61-0c3e-7f1d2a6b8e94"
PROBE_IMAGE = "homelab-test/nvidia-smi-standin:probe"
PROBE_COMMAND = "nvidia-smi --query-gpu=uuid --format=csv,noheader"
PACKAGES = ["nvidia-container-toolkit", "nvidia-container-toolkit-base", "libnvidia-container-tools", "libnvidia-container1"]
CTK_LOG = "/var/log/homelab-standin-nvidia-ctk.log"


def after_drift():
    """Whether the side effect (driver upgrade, runtime removed) has run."""
    return bool(expected_changes(EPHEMERAL))


def ctk_calls(host, subcommand):
    return [line for line in host.file(CTK_LOG).content_string.splitlines() if line.startswith(subcommand)]


def test_toolkit_is_the_pinned_stand_in_version(host):
    for name in PACKAGES:
        package = host.package(name)
        assert package.is_installed, name
        assert package.version == "1.17.3-1", name
    assert "Candidate: 1.17.4-1" in host.check_output("apt-cache policy nvidia-container-toolkit")
    assert host.check_output("dpkg-query -W -f='${Description}' nvidia-container-toolkit").startswith("STAND-IN for tests")
    assert host.check_output("nvidia-ctk --version").startswith("NVIDIA Container Toolkit CLI version 1.17.3")


def test_repository_is_a_deb822_source_with_its_own_key(host):
    sources = host.file("/etc/apt/sources.list.d/nvidia-container-toolkit.sources")
    assert "URIs: http://127.0.0.1:8731/stable/deb/$(ARCH)" in sources.content_string
    assert "Suites: /" in sources.content_string
    assert "Signed-By: /etc/apt/keyrings/nvidia-container-toolkit.asc" in sources.content_string
    key = host.file("/etc/apt/keyrings/nvidia-container-toolkit.asc")
    assert key.content_string.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    # apt verified the repository's signature: its packages are trusted candidates.
    policy = host.check_output("apt-cache policy")
    assert "http://127.0.0.1:8731/stable/deb/amd64  Packages" in policy
    assert "o=homelab.core STAND-IN" in policy


@pytest.mark.parametrize(
    "path",
    [
        "/etc/apt/sources.list.d/nvidia-container-toolkit.list",
        "/etc/apt/sources.list.d/nvidia-docker.list",
        "/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg",
    ],
)
def test_legacy_repository_files_are_gone(host, path):
    assert not host.file(path).exists


def test_daemon_json_has_the_runtime_and_keeps_foreign_keys(host):
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert config["runtimes"] == {
        "homelab-test-foreign": {"path": "runc"},
        "nvidia": {"path": "nvidia-container-runtime", "args": []},
    }
    assert config["labels"] == ["homelab-test=foreign-key"]
    assert config["log-driver"] == "json-file"
    # Debian 13's Docker 26 needs the CDI feature flag.
    assert config["features"] == {"cdi": True}
    assert "default-runtime" not in config


def test_running_daemon_loaded_the_runtime_and_cdi(host):
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert {"nvidia", "homelab-test-foreign", "runc"} <= set(info["Runtimes"])
    assert info["CDISpecDirs"] == ["/etc/cdi", "/var/run/cdi"]
    assert info["DefaultRuntime"] == "runc"


@pytest.mark.parametrize(
    "request_args",
    ["--gpus all", "--device nvidia.com/gpu=all", "--runtime=nvidia --gpus all"],
)
def test_gpu_containers_see_the_gpu(host, request_args):
    output = host.check_output("docker run --rm %s %s %s" % (request_args, PROBE_IMAGE, PROBE_COMMAND))
    assert output == UUID


def test_gpu_requests_go_through_the_hook_and_the_runtime(host):
    assert "prestart" in host.file("/var/log/homelab-standin-nvidia-container-runtime-hook.log").content_string
    assert host.file("/var/log/homelab-standin-nvidia-container-runtime.log").size > 0


def test_probe_image_sees_no_gpu_without_a_request(host):
    """The probe can fail: without a GPU request the stand-in answers like a GPU-less host."""
    result = host.run("docker run --rm %s %s" % (PROBE_IMAGE, PROBE_COMMAND))
    assert result.rc == 6
    assert result.stdout.strip() == "No devices were found"


def test_cdi_spec_was_generated_for_the_running_driver(host):
    driver = "555.42.02" if after_drift() else "550.54.14"
    assert host.check_output("nvidia-smi --query-gpu=driver_version --format=csv,noheader") == driver
    assert host.file("/var/lib/homelab-core/nvidia-cdi-spec.driver-version").content_string == driver + "\n"
    assert "nvidia.com/gpu=all" in host.check_output("nvidia-ctk cdi list")
    # Once on the first converge, once more after the driver upgrade; never on a no-op run.
    assert len(ctk_calls(host, "cdi generate")) == (2 if after_drift() else 1)


def test_udev_rule_keeps_the_gpu_across_daemon_reload(host):
    rule = host.file("/etc/udev/rules.d/71-nvidia-dev-char.rules")
    assert (rule.user, rule.group, rule.mode) == ("root", "root", 0o644)
    assert (
        'ACTION=="add", DEVPATH=="/bus/pci/drivers/nvidia", '
        'RUN+="/usr/bin/nvidia-ctk system create-dev-char-symlinks --create-all"'
    ) in rule.content_string
    assert ctk_calls(host, "system create-dev-char-symlinks") == ["system create-dev-char-symlinks --create-all"]


def test_the_decision_is_recorded_on_the_host_for_later_stack_runs(host):
    recorded = json.loads(host.file("/etc/ansible/facts.d/homelab_gpu.fact").content_string)
    assert recorded == {"mode": "required", "reservation": "nvidia", "gpu_count": 1}


def test_facts_for_the_stacks_say_gpu(host):
    rc, output, facts = gpu_facts()
    assert rc == 0, output
    assert facts == {"count": 1, "reservation": "nvidia"}
    assert not re.search(r"\[WARNING\]: [a-z_]+: ", output), "gpu_info warned about a problem"
    assert recap_changed(output, host.backend.host) == 0


def test_last_converge_changed_only_the_drift(host):
    """First verify: the check run predicted nothing. After the side effect: only the repairs."""
    changed = changed_tasks(latest_report(os.path.join(EPHEMERAL, "junit")))
    assert changed == expected_changes(EPHEMERAL)
