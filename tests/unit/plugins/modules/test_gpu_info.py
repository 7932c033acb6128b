# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""gpu_info end to end, with recorded command outputs replayed through a patched AnsibleModule."""

from __future__ import annotations

import os

import pytest

from ansible.module_utils import basic

from ansible_collections.homelab.core.plugins.module_utils._gpu import PROBLEMS
from ansible_collections.homelab.core.plugins.modules import gpu_info

SMI = "/usr/bin/nvidia-smi"
WSL_SMI = "/usr/lib/wsl/lib/nvidia-smi"
CTK = "/usr/bin/nvidia-ctk"
DOCKER = "/usr/bin/docker"
TIMEOUT = "/usr/bin/timeout"
IMAGE = "nvidia/cuda:12.4.1-base-ubuntu22.04"
RTX4090_UUID = "GPU-5d3ec4a2-9a7f-2b61-0c3e-7f1d2a6b8e94"
QUERY = "--query-gpu=index,name,uuid,memory.total,memory.used,mig.mode.current,compute_cap,driver_version"
LEGACY_QUERY = "--query-gpu=index,name,uuid,memory.total,memory.used,mig.mode.current,driver_version"
CSV = "--format=csv,noheader,nounits"
RUNTIMES = (DOCKER, "info", "--format", "{{json .Runtimes}}")
CDI_DIRS = (DOCKER, "info", "--format", "{{json .CDISpecDirs}}")
PROBE_TAIL = (IMAGE, "nvidia-smi", "--query-gpu=uuid", "--format=csv,noheader")
PROBE_RUNTIME = (TIMEOUT, "--kill-after=10", "120", DOCKER, "run", "--rm", "--gpus", "all") + PROBE_TAIL
PROBE_CDI = (TIMEOUT, "--kill-after=10", "120", DOCKER, "run", "--rm", "--device", "nvidia.com/gpu=all") + PROBE_TAIL
NATIVE_NODES = ["nvidia-modeset", "nvidia-uvm", "nvidia-uvm-tools", "nvidia0", "nvidiactl"]
CDI_DEVICES = ["nvidia.com/gpu=0", "nvidia.com/gpu=" + RTX4090_UUID, "nvidia.com/gpu=all"]


class Host(object):
    """A fake target: which binaries exist, and the recorded result of each command line."""

    def __init__(self, fixture_text, root):
        self.fixture_text = fixture_text
        self.root = root
        self.binaries = set()
        self.commands = {}
        self.calls = []

    def recorded(self, name, rc=0):
        """``(rc, stdout, stderr)`` of a recording: ``<name>.stdout`` and ``<name>.stderr``, either may be absent."""
        streams = []
        for stream in ("stdout", "stderr"):
            path = "%s.%s" % (name, stream)
            exists = os.path.exists(os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "gpu", path))
            streams.append(self.fixture_text("gpu", path) if exists else "")
        return rc, streams[0], streams[1]

    def add(self, argv, name, rc=0):
        self.commands[tuple(argv)] = self.recorded(name, rc)

    def dev(self, *names):
        for name in names:
            open(os.path.join(self.root, "dev", name), "w").close()

    def spec_dir(self, index):
        return os.path.join(self.root, ("etc/cdi", "var/run/cdi")[index])

    def cdi_list(self):
        return [CTK, "cdi", "list", "--spec-dir", self.spec_dir(0), "--spec-dir", self.spec_dir(1)]

    def install_spec(self, name):
        with open(os.path.join(self.spec_dir(0), name), "w") as spec:
            spec.write(self.fixture_text("gpu", name))

    # --- the machinery the four scenarios below share ---

    def driver(self, name="smi_rtx4090", path=SMI):
        self.binaries.add(path)
        self.add([path, QUERY, CSV], name + "_query")
        self.add([path], name + "_default")
        self.dev(*NATIVE_NODES)

    def toolkit(self):
        self.binaries.add(CTK)
        self.add([CTK, "--version"], "nvidia_ctk_version")
        self.add(self.cdi_list(), "nvidia_ctk_cdi_list")
        self.install_spec("cdi_nvidia.yaml")

    def docker(self, runtimes="docker_runtimes_nvidia", cdi_dirs="docker_cdi_spec_dirs"):
        self.binaries.update([DOCKER, TIMEOUT])
        self.add(RUNTIMES, runtimes)
        self.add(CDI_DIRS, cdi_dirs)

    def healthy(self):
        self.driver()
        self.toolkit()
        self.docker()

    def ran(self, argv):
        return tuple(argv) in self.calls


@pytest.fixture
def host(monkeypatch, tmp_path, fixture_text):
    fake = Host(fixture_text, str(tmp_path))
    for directory in ("dev", "etc/cdi", "var/run/cdi"):
        os.makedirs(os.path.join(fake.root, directory))

    def get_bin_path(self, arg, required=False, opt_dirs=None):
        for directory in list(opt_dirs or []) + ["/usr/bin"]:
            if os.path.join(directory, arg) in fake.binaries:
                return os.path.join(directory, arg)
        return None

    def run_command(self, args, check_rc=False, **kwargs):
        fake.calls.append(tuple(args))
        assert tuple(args) in fake.commands, "unexpected command %r" % (args,)
        return fake.commands[tuple(args)]

    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", get_bin_path)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(gpu_info, "DEV_DIR", os.path.join(fake.root, "dev"))
    return fake


@pytest.fixture
def run(run_module, host):
    """Run gpu_info against ``host`` with the spec dirs pointed into it."""
    return lambda **args: run_module(gpu_info, dict(args, cdi_spec_dirs=[host.spec_dir(0), host.spec_dir(1)]))


def codes(result):
    return [problem["code"] for problem in result["problems"]]


def not_run(error):
    return {"ran": False, "rc": None, "uuids": [], "matches_host": False, "error": error}


def test_no_gpu(run, host):
    result = run()
    assert result["changed"] is False
    assert result["failed"] is False
    assert result["gpu_count"] == 0
    assert result["gpus"] == []
    assert result["usable"] is False
    assert codes(result) == ["no_driver"]
    assert result["diagnosis"].startswith("no_driver: nvidia-smi was found neither on PATH")
    assert result["remedy"] == PROBLEMS["no_driver"][1]
    assert result["driver"] == {"present": False, "path": None, "version": None, "cuda_version": None, "wsl": False}
    assert result["device_nodes"] == []
    assert result["toolkit"] == {"installed": False, "path": None, "version": None}
    assert result["docker"] == {"available": False, "runtimes": [], "nvidia_runtime": False, "cdi_spec_dirs": None}
    assert result["cdi"] == {"spec_files": [], "devices": []}
    assert result["probe"] is None
    assert host.calls == []


def test_no_gpu_required_fails_with_the_facts(run, host):
    result = run(required=True)
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["msg"] == "%s %s" % (result["diagnosis"], result["remedy"])
    assert result["msg"].startswith("no_driver: ")
    assert result["gpu_count"] == 0


@pytest.fixture
def warnings(monkeypatch):
    """The warnings the module emits, in order."""
    emitted = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, message: emitted.append(message))
    return emitted


def test_no_gpu_warns_only_when_asked(run, host, warnings):
    run()
    assert warnings == []
    result = run(warn_on_problem=True, check_toolkit=False, check_docker=False)
    assert result["failed"] is False
    assert warnings == ["%s %s" % (result["diagnosis"], result["remedy"])]
    assert warnings[0].startswith("no_driver: nvidia-smi was found neither on PATH")


def test_warn_on_problem_warns_every_problem(run, host, warnings):
    host.healthy()
    host.add(PROBE_RUNTIME, "probe_gpus_no_device_driver", rc=125)
    host.add(PROBE_CDI, "probe_nvml_unknown_error", rc=255)
    result = run(probe_container=True, warn_on_problem=True)
    assert result["failed"] is False
    assert warnings == ["%s %s" % (problem["diagnosis"], problem["remedy"]) for problem in result["problems"]]
    assert len(warnings) == 2


def test_healthy_host_emits_no_warning(run, host, warnings):
    host.healthy()
    result = run(warn_on_problem=True)
    assert result["problems"] == []
    assert warnings == []


@pytest.mark.parametrize("check_mode", [False, True])
def test_healthy_single_gpu(run, host, check_mode):
    host.healthy()
    result = run(_ansible_check_mode=check_mode, required=True)
    assert result["failed"] is False
    assert result["changed"] is False
    assert result["usable"] is True
    assert result["gpu_count"] == 1
    assert result["gpus"][0]["uuid"] == RTX4090_UUID
    assert result["gpus"][0]["compute_capability"] == "8.9"
    assert result["driver"] == {
        "present": True,
        "path": SMI,
        "version": "550.54.14",
        "cuda_version": "12.4",
        "wsl": False,
    }
    assert result["device_nodes"] == [os.path.join(host.root, "dev", name) for name in NATIVE_NODES]
    assert result["toolkit"] == {"installed": True, "path": CTK, "version": "1.17.4"}
    assert result["docker"] == {
        "available": True,
        "runtimes": ["io.containerd.runc.v2", "nvidia", "runc"],
        "nvidia_runtime": True,
        "cdi_spec_dirs": ["/etc/cdi", "/var/run/cdi"],
    }
    assert result["cdi"] == {
        "spec_files": [os.path.join(host.spec_dir(0), "cdi_nvidia.yaml")],
        "devices": CDI_DEVICES,
    }
    assert (result["problems"], result["diagnosis"], result["remedy"], result["probe"]) == ([], None, None, None)
    assert not any(DOCKER in call and "run" in call for call in host.calls)


def test_runtime_not_registered(run, host):
    host.healthy()
    host.docker(runtimes="docker_runtimes_default", cdi_dirs="docker_cdi_spec_dirs_disabled")
    result = run()
    assert result["failed"] is False
    assert result["docker"]["nvidia_runtime"] is False
    assert codes(result) == ["runtime_not_registered"]
    assert result["diagnosis"].endswith("(Registered runtimes: io.containerd.runc.v2, runc.)")
    assert "nvidia-ctk runtime configure --runtime=docker" in result["remedy"]


def test_cdi_enabled_daemon_needs_no_runtime(run, host):
    host.healthy()
    host.docker(runtimes="docker_runtimes_default")
    result = run()
    assert result["problems"] == []


def test_docker_without_cdi_support(run, host):
    host.healthy()
    host.add(CDI_DIRS, "docker_cdi_spec_dirs_unsupported", rc=1)
    result = run()
    assert result["docker"]["cdi_spec_dirs"] is None
    assert result["docker"]["nvidia_runtime"] is True
    assert result["problems"] == []


def test_docker_unreachable(run, host):
    host.healthy()
    host.add(RUNTIMES, "docker_info_unreachable", rc=1)
    result = run()
    assert result["docker"]["available"] is False
    assert codes(result) == ["docker_unreachable"]
    assert "Cannot connect to the Docker daemon" in result["diagnosis"]
    assert not host.ran(CDI_DIRS)


def test_toolkit_missing_reads_cdi_specs_itself(run, host):
    host.driver()
    host.docker()
    host.install_spec("cdi_nvidia.yaml")
    host.install_spec("cdi_nvidia.json")
    result = run()
    assert result["toolkit"] == {"installed": False, "path": None, "version": None}
    assert codes(result) == ["toolkit_missing"]
    assert result["diagnosis"].startswith("toolkit_missing: ")
    assert [os.path.basename(name) for name in result["cdi"]["spec_files"]] == ["cdi_nvidia.json", "cdi_nvidia.yaml"]
    assert result["cdi"]["devices"].count("nvidia.com/gpu=all") == 2


def test_failing_cdi_list_falls_back_to_spec_files(run, host):
    host.healthy()
    host.add(host.cdi_list(), "missing", rc=1)
    result = run()
    assert result["cdi"]["devices"] == CDI_DEVICES


def test_checks_can_be_switched_off(run, host):
    host.driver()
    result = run(check_toolkit=False, check_docker=False)
    assert result["problems"] == []
    assert result["toolkit"] == {"installed": None, "path": None, "version": None}
    assert result["docker"] == {"available": None, "runtimes": None, "nvidia_runtime": None, "cdi_spec_dirs": None}
    assert not any(call[0] in (CTK, DOCKER) for call in host.calls)


def test_old_driver_retries_without_compute_cap(run, host):
    host.driver("smi_old_driver")
    host.add([SMI, QUERY, CSV], "smi_old_driver_invalid_field", rc=2)
    host.add([SMI, LEGACY_QUERY, CSV], "smi_old_driver_query")
    result = run(check_toolkit=False, check_docker=False)
    assert result["usable"] is True
    assert result["gpus"][0]["compute_capability"] is None
    assert result["driver"]["version"] == "470.182.03"
    assert result["driver"]["cuda_version"] == "11.4"


@pytest.mark.parametrize(
    "name, rc, code",
    [
        ("smi_driver_unreachable", 9, "driver_unreachable"),
        ("smi_no_devices", 6, "no_devices"),
        ("smi_nvml_unknown_error", 255, "nvml_unknown_error"),
        ("smi_driver_library_mismatch", 18, "driver_library_mismatch"),
    ],
)
def test_driver_errors(run, host, name, rc, code):
    host.healthy()
    host.add([SMI, QUERY, CSV], name, rc=rc)
    result = run(probe_container=True)
    assert result["usable"] is False
    assert result["gpu_count"] == 0
    assert codes(result) == [code]
    assert result["diagnosis"].startswith("%s: %s (nvidia-smi exited %d: " % (code, PROBLEMS[code][0], rc))
    assert result["remedy"] == PROBLEMS[code][1]
    assert result["driver"]["present"] is True
    assert result["driver"]["version"] is None
    assert not host.ran([SMI])
    assert result["probe"]["runtime"] == not_run("the host has no usable GPU")
    assert not host.ran(PROBE_RUNTIME)


def test_wsl2(run, host):
    host.driver("smi_wsl", path=WSL_SMI)
    for node in NATIVE_NODES:
        os.remove(os.path.join(host.root, "dev", node))
    host.dev("dxg")
    result = run(check_toolkit=False, check_docker=False)
    assert result["usable"] is True
    assert result["driver"] == {
        "present": True,
        "path": WSL_SMI,
        "version": "552.44",
        "cuda_version": "12.4",
        "wsl": True,
    }
    assert result["device_nodes"] == []
    assert result["gpus"][0]["name"] == "NVIDIA GeForce RTX 4070 Laptop GPU"
    assert result["problems"] == []


def test_wsl2_recorded_590_table(run, host):
    """The 590 driver's table (github.com/AlexsJones/llmfit/issues/52), which molecule wsl-sim's stand-in replays."""
    host.driver("smi_wsl_rtx5080", path=WSL_SMI)
    for node in NATIVE_NODES:
        os.remove(os.path.join(host.root, "dev", node))
    host.dev("dxg")
    result = run(check_toolkit=False, check_docker=False)
    assert result["usable"] is True and result["problems"] == []
    assert result["driver"] == {"present": True, "path": WSL_SMI, "version": "591.86", "cuda_version": "13.1", "wsl": True}
    assert result["gpus"] == [{
        "index": 0, "name": "NVIDIA GeForce RTX 5080", "uuid": "GPU-7c1e4b92-3a58-d6f0-2b94-e81a5c0d3f67",
        "memory_total_mib": 16303, "memory_used_mib": 1138, "mig_mode": None, "compute_capability": "12.0",
    }]


def test_probe_success(run, host):
    host.healthy()
    host.add(PROBE_RUNTIME, "probe_rtx4090_ok")
    host.add(PROBE_CDI, "probe_rtx4090_ok")
    result = run(probe_container=True)
    expected = {"ran": True, "rc": 0, "uuids": [RTX4090_UUID], "matches_host": True, "error": None}
    assert result["probe"] == {"runtime": expected, "cdi": expected}
    assert result["problems"] == []
    assert result["changed"] is False
    assert host.ran(PROBE_RUNTIME) and host.ran(PROBE_CDI)


def test_probe_failure(run, host):
    host.healthy()
    host.add(PROBE_RUNTIME, "probe_gpus_no_device_driver", rc=125)
    host.add(PROBE_CDI, "probe_nvml_unknown_error", rc=255)
    result = run(probe_container=True, required=True)
    assert result["failed"] is True
    assert result["changed"] is False
    assert codes(result) == ["probe_no_gpu", "probe_no_gpu"]
    runtime, cdi = result["problems"]
    assert "runtime path: '/usr/bin/docker run --rm --gpus all %s nvidia-smi" % IMAGE in runtime["diagnosis"]
    assert 'could not select device driver "" with capabilities: [[gpu]]' in runtime["diagnosis"]
    assert "restart Docker" in runtime["remedy"]
    assert cdi["diagnosis"].endswith("exited 255: Failed to initialize NVML: Unknown Error)")
    assert cdi["remedy"] == PROBLEMS["nvml_unknown_error"][1]
    assert result["probe"]["runtime"]["rc"] == 125
    assert result["probe"]["runtime"]["matches_host"] is False
    assert result["probe"]["cdi"]["error"].startswith("exited 255: ")
    assert result["msg"] == "%s %s" % (runtime["diagnosis"], runtime["remedy"])


def test_probe_sees_other_gpu(run, host):
    host.healthy()
    host.commands[PROBE_RUNTIME] = (0, "GPU-8f6e2b1c-4d3a-9e07-b5c2-1a9f0d7e6c34\n", "")
    host.commands[PROBE_CDI] = (124, "", "")
    result = run(probe_container=True)
    assert result["probe"]["runtime"]["error"] == (
        "saw GPU-8f6e2b1c-4d3a-9e07-b5c2-1a9f0d7e6c34, the host has %s" % RTX4090_UUID
    )
    assert result["probe"]["cdi"]["error"] == "did not finish within 120 seconds"
    assert codes(result) == ["probe_no_gpu", "probe_no_gpu"]
    assert result["remedy"] == PROBLEMS["probe_no_gpu"][1]


def test_probe_without_cdi_device_or_docker(run, host):
    host.driver()
    host.toolkit()
    host.add(host.cdi_list(), "missing")
    result = run(probe_container=True, check_docker=False)
    assert codes(result) == ["probe_no_gpu"]
    assert result["probe"]["runtime"]["error"] == "the docker CLI is not installed"

    host.docker()
    host.add(PROBE_RUNTIME, "probe_rtx4090_ok")
    result = run(probe_container=True)
    assert result["probe"]["runtime"]["matches_host"] is True
    assert result["probe"]["cdi"] == not_run("no CDI device nvidia.com/gpu=all is defined")
    assert result["problems"] == []


def test_probe_timeout_must_be_positive(run, host):
    result = run(probe_timeout=0)
    assert result["failed"] is True
    assert result["msg"] == "probe_timeout must be at least 1 second, got 0."
