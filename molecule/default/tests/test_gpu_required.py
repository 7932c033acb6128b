"""The GPU layer on a host without a GPU: auto skips with a warning, required fails, off looks at nothing."""

from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "integration"))
from playbook_runs import assert_refused, flat, gpu_facts, recap_changed, run_site  # noqa: E402

NO_DRIVER = "no_driver: nvidia-smi was found neither on PATH nor at /usr/lib/wsl/lib/nvidia-smi: no NVIDIA driver is installed"
NO_DRIVER_REMEDY = "Install the NVIDIA driver for this GPU (Debian: the nvidia-driver package from non-free), reboot"
CPU_ONLY = {"count": 0, "reservation": "none"}


def test_required_mode_fails_with_the_diagnosis_and_changes_nothing(host):
    daemon_json = host.file("/etc/docker/daemon.json").sha256sum
    rc, output = run_site("-e", "homelab_gpu_mode=required")
    assert "fatal: [%s]" % host.backend.host in output
    assert_refused(rc, output, host.backend.host, NO_DRIVER, NO_DRIVER_REMEDY)
    assert host.file("/etc/docker/daemon.json").sha256sum == daemon_json


def test_auto_mode_warns_and_the_facts_say_cpu_only(host):
    rc, output, facts = gpu_facts()
    assert rc == 0, output
    assert "[WARNING]: " + NO_DRIVER in output
    assert "the stacks run CPU-only" in flat(output)
    assert facts == CPU_ONLY
    assert recap_changed(output, host.backend.host) == 0


def test_the_decision_is_recorded_on_the_host_for_later_stack_runs(host):
    fact = host.file("/etc/ansible/facts.d/homelab_gpu.fact")
    assert (fact.user, fact.mode) == ("root", 0o644)
    assert json.loads(fact.content_string) == {"mode": "auto", "reservation": "none", "gpu_count": 0}


def test_off_mode_looks_at_nothing(host):
    try:
        rc, output, facts = gpu_facts("-e", "homelab_gpu_mode=off")
        assert rc == 0, output
        assert "no_driver" not in output
        assert facts == CPU_ONLY
        assert json.loads(host.file("/etc/ansible/facts.d/homelab_gpu.fact").content_string)["mode"] == "off"
    finally:
        # Put the converged decision back, so the next converge repairs only the side effect's drift.
        rc, output, _facts = gpu_facts()
        assert rc == 0, output


def test_bad_gpu_mode_fails_with_the_choices(host):
    rc, output = run_site("-e", "homelab_gpu_mode=maybe")
    assert_refused(rc, output, host.backend.host,
                   "homelab_gpu_mode is 'maybe', which role homelab does not know; choose one of auto, required, off.")
    # Refused by the first play's one check, before anything was gathered.
    assert "PLAY [Install and configure Docker Engine" not in output


def test_daemon_json_has_no_nvidia_runtime(host):
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert "nvidia" not in config.get("runtimes", {})
    assert "default-runtime" not in config
    assert "features" not in config


@pytest.mark.parametrize(
    "path",
    [
        "/etc/apt/sources.list.d/nvidia-container-toolkit.sources",
        "/etc/apt/keyrings/nvidia-container-toolkit.asc",
        "/etc/udev/rules.d/71-nvidia-dev-char.rules",
        "/etc/cdi/nvidia.yaml",
        "/usr/bin/nvidia-ctk",
    ],
)
def test_nothing_gpu_related_is_installed(host, path):
    assert not host.file(path).exists
