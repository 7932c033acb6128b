"""What a user observes on the stand-in WSL2 host after site.yml with homelab_gpu_mode: required.

WSL is a stand-in: the target is a Debian container. What only WSL has is a stand-in root that
homelab.core.wsl_info reads through homelab_wsl_probe_root (tests/stand-ins/wsl/make-probe-root.sh:
the WSL2 kernel release, /proc/version, the interop entry, /etc/wsl.conf, /dev/dxg, the Windows
driver's libraries), and nvidia-smi is the gpu-sim stand-in at WSL's path, answering with a recorded
WSL table. The toolkit is the gpu-sim stand-in. Docker, apt, daemon.json, CDI resolution, and every
decision taken from wsl_info's result, are real. docs/windows.md lists what this cannot prove.
"""

from __future__ import annotations

import json
import os
import re
import sys
import xml.etree.ElementTree as ET

import pytest

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "integration"))
from junit_changes import changed_tasks, expected_changes, latest_report  # noqa: E402
from playbook_runs import gpu_facts, recap_changed  # noqa: E402

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
STANDIN_ROOT = "/usr/local/share/homelab-standin-wsl/root"
WSL_SMI = "/usr/lib/wsl/lib/nvidia-smi"
# tests/unit/fixtures/gpu/smi_wsl_rtx5080_query.stdout
UUID = "GPU-7c1e4b92-3a58-d6f0-2b94-e81a5c0d3f67"
PROBE_IMAGE = "homelab-test/nvidia-smi-standin:probe"
PROBE_COMMAND = "nvidia-smi --query-gpu=uuid --format=csv,noheader"
CTK_LOG = "/var/log/homelab-standin-nvidia-ctk.log"
SPEC = "/etc/cdi/nvidia.yaml"
SUMMARY = "WSL2, kernel 5.15.167.4-microsoft-standard-WSL2, systemd on, GPU shared from Windows (/dev/dxg)"


def after_drift():
    """Whether the side effect (the Windows driver upgraded) has run."""
    return bool(expected_changes(EPHEMERAL))


def driver_version():
    return "596.36" if after_drift() else "591.86"


def ctk_calls(host, subcommand):
    return [line for line in host.file(CTK_LOG).content_string.splitlines() if line.startswith(subcommand)]


def test_the_target_itself_is_not_wsl(host):
    """So every WSL decision below came from wsl_info's result on the stand-in root."""
    if "microsoft" in host.file("/proc/sys/kernel/osrelease").content_string.lower():
        pytest.skip("the machine running the tests is itself WSL2, so its kernel cannot show where the decisions came from")
    assert not host.file("/dev/dxg").exists


def test_the_stand_in_root_is_a_wsl2_distribution(host):
    assert host.file(STANDIN_ROOT + "/proc/sys/kernel/osrelease").content_string == "5.15.167.4-microsoft-standard-WSL2\n"
    assert host.run("test -c %s/dev/dxg" % STANDIN_ROOT).rc == 0
    assert host.file(STANDIN_ROOT + "/STAND-IN.txt").content_string.startswith("STAND-IN WSL root (wsl2)")


def test_nvidia_smi_is_only_where_wsl_puts_it(host):
    assert host.run("command -v nvidia-smi").rc != 0
    assert host.check_output("%s --query-gpu=name,driver_version --format=csv,noheader" % WSL_SMI) == \
        "NVIDIA GeForce RTX 5080, %s" % driver_version()


def test_cdi_spec_was_generated_in_wsl_mode(host):
    # Once on the first converge, once more after the driver upgrade; never on a no-op or check run.
    assert ctk_calls(host, "cdi generate") == ["cdi generate --mode=wsl --output=%s" % SPEC] * (2 if after_drift() else 1)
    spec = host.file(SPEC)
    assert (spec.user, spec.group, spec.mode) == ("root", "root", 0o644)
    assert "STAND-IN CDI spec written by the stand-in nvidia-ctk for tests, not NVIDIA's (mode wsl)." in spec.content_string
    # WSL mode yields one device: a single GPU cannot be named.
    assert host.check_output("nvidia-ctk cdi list") == "nvidia.com/gpu=all"
    assert host.file("/var/lib/homelab-core/nvidia-cdi-spec.driver-version").content_string == driver_version() + "\n"


def test_no_udev_rule_on_wsl(host):
    assert not host.file("/etc/udev/rules.d/71-nvidia-dev-char.rules").exists
    assert ctk_calls(host, "system") == []


def test_daemon_json_has_the_runtime_and_cdi(host):
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert config["runtimes"]["nvidia"] == {"path": "nvidia-container-runtime", "args": []}
    assert config["runtimes"]["homelab-test-foreign"] == {"path": "runc"}
    # Debian 13's Docker 26 needs the CDI feature flag.
    assert config["features"] == {"cdi": True}
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["CDISpecDirs"] == ["/etc/cdi", "/var/run/cdi"]


def test_the_cdi_device_gives_containers_the_gpu(host):
    assert host.check_output("docker run --rm --device nvidia.com/gpu=all %s %s" % (PROBE_IMAGE, PROBE_COMMAND)) == UUID
    by_index = host.run("docker run --rm --device nvidia.com/gpu=0 %s %s" % (PROBE_IMAGE, PROBE_COMMAND))
    assert by_index.rc == 125
    assert "unresolvable CDI devices nvidia.com/gpu=0" in by_index.stderr


def test_the_decision_is_recorded_with_wsl(host):
    recorded = json.loads(host.file("/etc/ansible/facts.d/homelab_gpu.fact").content_string)
    assert recorded == {"mode": "required", "reservation": "cdi", "gpu_count": 1, "wsl": True}


def test_the_role_on_its_own_takes_the_same_decision(host):
    """tests/integration/gpu_facts.yml runs the GPU role without site.yml's first play: it calls wsl_info itself."""
    rc, output, facts = gpu_facts()
    assert rc == 0, output
    assert facts == {"count": 1, "reservation": "cdi"}
    assert not re.search(r"\[WARNING\]: [a-z_]+: ", output), "gpu_info or wsl_info warned about a problem"
    assert recap_changed(output, host.backend.host) == 0


def test_the_run_shows_the_wsl_distribution(host):
    """The first play's summary line, from the JUnit report of the last converge (check runs included)."""
    report = ET.parse(latest_report(os.path.join(EPHEMERAL, "junit"))).getroot()
    shown = [case.findtext("system-out") or "" for case in report.iter("testcase")
             if case.get("name").endswith(": Show the WSL distribution")]
    assert len(shown) == 1 and SUMMARY in shown[0]


def test_last_converge_changed_only_the_drift(host):
    """First verify: the check run predicted nothing. After the side effect: only the repairs."""
    changed = changed_tasks(latest_report(os.path.join(EPHEMERAL, "junit")))
    assert changed == expected_changes(EPHEMERAL)
