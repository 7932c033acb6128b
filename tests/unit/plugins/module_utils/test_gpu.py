# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Parsers and classifier of ``_gpu`` on the recorded outputs in tests/unit/fixtures/gpu."""

from __future__ import annotations

import pytest

from ansible_collections.homelab.core.plugins.module_utils import _gpu

RTX4090_UUID = "GPU-5d3ec4a2-9a7f-2b61-0c3e-7f1d2a6b8e94"
CDI_DEVICES = ["nvidia.com/gpu=0", "nvidia.com/gpu=" + RTX4090_UUID, "nvidia.com/gpu=all"]


@pytest.fixture
def gpu_text(fixture_text):
    return lambda name: fixture_text("gpu", name)


def test_query_single_gpu(gpu_text):
    gpus, driver = _gpu.parse_query_gpu(gpu_text("smi_rtx4090_query.stdout"))
    assert driver == "550.54.14"
    assert gpus == [
        {
            "index": 0,
            "name": "NVIDIA GeForce RTX 4090",
            "uuid": RTX4090_UUID,
            "memory_total_mib": 24564,
            "memory_used_mib": 612,
            "mig_mode": None,
            "compute_capability": "8.9",
        }
    ]


def test_query_multi_gpu(gpu_text):
    gpus, driver = _gpu.parse_query_gpu(gpu_text("smi_a100x4_query.stdout"))
    assert driver == "535.129.03"
    assert [gpu["index"] for gpu in gpus] == [0, 1, 2, 3]
    assert {gpu["name"] for gpu in gpus} == {"NVIDIA A100-SXM4-40GB"}
    assert len({gpu["uuid"] for gpu in gpus}) == 4
    assert [gpu["memory_used_mib"] for gpu in gpus] == [4, 4, 18245, 4]
    assert {gpu["mig_mode"] for gpu in gpus} == {"Disabled"}
    assert {gpu["compute_capability"] for gpu in gpus} == {"8.0"}


def test_query_mig_enabled(gpu_text):
    gpus, driver = _gpu.parse_query_gpu(gpu_text("smi_h100_mig_query.stdout"))
    assert driver == "550.90.07"
    assert [(gpu["mig_mode"], gpu["memory_total_mib"], gpu["compute_capability"]) for gpu in gpus] == [
        ("Enabled", 81559, "9.0"),
        ("Disabled", 81559, "9.0"),
    ]


def test_query_old_driver_without_compute_cap(gpu_text):
    refused = gpu_text("smi_old_driver_invalid_field.stdout")
    assert _gpu.is_invalid_field_error(refused, "compute_cap")
    assert not _gpu.is_invalid_field_error(refused, "memory.used")
    assert not _gpu.is_invalid_field_error(gpu_text("smi_rtx4090_query.stdout"), "compute_cap")

    gpus, driver = _gpu.parse_query_gpu(gpu_text("smi_old_driver_query.stdout"), _gpu.LEGACY_QUERY_FIELDS)
    assert driver == "470.182.03"
    assert gpus[0]["name"] == "Tesla T4"
    assert gpus[0]["memory_total_mib"] == 15109
    assert gpus[0]["compute_capability"] is None
    assert "compute_cap" not in _gpu.LEGACY_QUERY_FIELDS


def test_query_wsl_reports_windows_driver(gpu_text):
    gpus, driver = _gpu.parse_query_gpu(gpu_text("smi_wsl_query.stdout"))
    assert driver == "552.44"
    assert gpus[0]["name"] == "NVIDIA GeForce RTX 4070 Laptop GPU"


def test_query_not_supported_becomes_none():
    gpus, dummy = _gpu.parse_query_gpu("0, NVIDIA GH200 480GB, GPU-0, 97871, [Not Supported], [N/A], 9.0, 560.35.03\n")
    assert gpus[0]["memory_used_mib"] is None
    assert gpus[0]["mig_mode"] is None


def test_query_rejects_wrong_field_count(gpu_text):
    with pytest.raises(ValueError, match="expected 8 fields"):
        _gpu.parse_query_gpu(gpu_text("smi_old_driver_query.stdout"))


@pytest.mark.parametrize(
    "name, version",
    [
        ("smi_rtx4090_default.stdout", "12.4"),
        ("smi_a100x4_default.stdout", "12.2"),
        ("smi_old_driver_default.stdout", "11.4"),
        ("smi_wsl_default.stdout", "12.4"),
        ("smi_driver_unreachable.stdout", None),
    ],
)
def test_cuda_version_from_header(gpu_text, name, version):
    assert _gpu.parse_cuda_version(gpu_text(name)) == version


@pytest.mark.parametrize(
    "name, rc, code",
    [
        ("smi_driver_unreachable.stdout", 9, "driver_unreachable"),
        ("smi_no_devices.stdout", 6, "no_devices"),
        ("smi_nvml_unknown_error.stdout", 255, "nvml_unknown_error"),
        ("smi_driver_library_mismatch.stdout", 18, "driver_library_mismatch"),
        ("smi_rtx4090_query.stdout", 0, None),
    ],
)
def test_classify_recorded_runs(gpu_text, name, rc, code):
    assert _gpu.classify_nvidia_smi(rc, gpu_text(name), "") == code


def test_classify_reads_stderr_too(gpu_text):
    assert _gpu.classify_nvidia_smi(255, "", gpu_text("smi_nvml_unknown_error.stdout")) == "nvml_unknown_error"


@pytest.mark.parametrize(
    "rc, code",
    [(9, "driver_unreachable"), (6, "no_devices"), (18, "driver_library_mismatch"), (15, "nvidia_smi_error")],
)
def test_classify_falls_back_to_exit_code(rc, code):
    assert _gpu.classify_nvidia_smi(rc, "", "") == code


def test_classify_message_wins_over_exit_code(gpu_text):
    assert _gpu.classify_nvidia_smi(9, gpu_text("smi_driver_library_mismatch.stdout"), "") == "driver_library_mismatch"


def test_ctk_version(gpu_text):
    assert _gpu.parse_ctk_version(gpu_text("nvidia_ctk_version.stdout")) == "1.17.4"
    assert _gpu.parse_ctk_version("") is None


@pytest.mark.parametrize(
    "name, expected",
    [
        ("docker_runtimes_nvidia.stdout", ["io.containerd.runc.v2", "nvidia", "runc"]),
        ("docker_runtimes_default.stdout", ["io.containerd.runc.v2", "runc"]),
        ("docker_runtimes_20.10.stdout", ["io.containerd.runc.v2", "io.containerd.runtime.v1.linux", "runc"]),
    ],
)
def test_docker_runtimes(gpu_text, name, expected):
    runtimes = _gpu.parse_json_output(gpu_text(name))
    assert sorted(runtimes) == expected
    assert all("path" in runtime for runtime in runtimes.values())


@pytest.mark.parametrize(
    "name, expected",
    [
        ("docker_cdi_spec_dirs.stdout", ["/etc/cdi", "/var/run/cdi"]),
        ("docker_cdi_spec_dirs_disabled.stdout", []),
        ("docker_cdi_spec_dirs_unsupported.stdout", None),
        ("docker_info_unreachable.stdout", None),
    ],
)
def test_docker_json_values(gpu_text, name, expected):
    assert _gpu.parse_json_output(gpu_text(name)) == expected


def test_cdi_list_ignores_log_lines(gpu_text):
    assert _gpu.parse_cdi_list(gpu_text("nvidia_ctk_cdi_list.stdout")) == CDI_DEVICES
    assert _gpu.parse_cdi_list(gpu_text("nvidia_ctk_cdi_list.stderr")) == []


@pytest.mark.parametrize("name, is_json", [("cdi_nvidia.yaml", False), ("cdi_nvidia.json", True)])
def test_cdi_spec_devices(gpu_text, name, is_json):
    assert _gpu.parse_cdi_spec(gpu_text(name), is_json) == CDI_DEVICES


@pytest.mark.parametrize("text", ["cdiVersion: [unclosed", "- just\n- a list\n", "cdiVersion: 0.5.0\ndevices: []\n"])
def test_cdi_spec_unusable(text):
    assert _gpu.parse_cdi_spec(text, False) is None


def test_cdi_spec_without_pyyaml_reads_json_only(gpu_text, monkeypatch):
    monkeypatch.setattr(_gpu, "HAS_YAML", False)
    assert _gpu.parse_cdi_spec(gpu_text("cdi_nvidia.yaml"), False) is None
    assert _gpu.parse_cdi_spec(gpu_text("cdi_nvidia.json"), True)[-1] == "nvidia.com/gpu=all"
    assert _gpu.parse_cdi_spec(gpu_text("cdi_nvidia.yaml"), True) is None


def test_probe_uuids_skip_the_cuda_banner(gpu_text):
    assert _gpu.parse_probe_uuids(gpu_text("probe_rtx4090_ok.stdout")) == [RTX4090_UUID]
    assert _gpu.parse_probe_uuids(gpu_text("probe_nvml_unknown_error.stdout")) == []


@pytest.mark.parametrize(
    "name, phrase",
    [
        ("probe_gpus_no_device_driver.stderr", "install the NVIDIA Container Toolkit"),
        ("probe_cdi_unresolvable.stderr", "nvidia-ctk cdi generate"),
        ("probe_cdi_disabled.stderr", "features.cdi"),
    ],
)
def test_docker_run_remedies(gpu_text, name, phrase):
    assert phrase in _gpu.docker_run_remedy(gpu_text(name))


def test_docker_run_remedy_unknown_error():
    assert _gpu.docker_run_remedy("docker: Error response from daemon: No such image: foo.") is None


@pytest.mark.parametrize("code", sorted(_gpu.PROBLEMS))
def test_problem_entries(code):
    problem = _gpu.make_problem(code)
    assert problem["code"] == code
    assert problem["diagnosis"].startswith(code + ": ")
    assert problem["diagnosis"].endswith(".")
    assert problem["remedy"] == _gpu.PROBLEMS[code][1]


def test_problem_detail_and_remedy_override():
    problem = _gpu.make_problem("probe_no_gpu", "(runtime path: exited 125)", "Restart Docker.")
    assert problem["diagnosis"] == "probe_no_gpu: %s (runtime path: exited 125)" % _gpu.PROBLEMS["probe_no_gpu"][0]
    assert problem["remedy"] == "Restart Docker."


def test_output_tail_keeps_last_non_empty_lines():
    assert _gpu.output_tail("a\n\nb\nc\n", "d\n", lines=3) == "b | c | d"
    assert _gpu.output_tail(None, "") == ""


def test_last_block_drops_the_cuda_banner(gpu_text):
    assert _gpu.last_block(gpu_text("probe_nvml_unknown_error.stdout")) == "Failed to initialize NVML: Unknown Error\n"
    assert _gpu.last_block(gpu_text("smi_driver_unreachable.stdout")).startswith("NVIDIA-SMI has failed")
    assert _gpu.last_block("\n\n") == ""
