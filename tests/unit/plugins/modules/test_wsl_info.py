# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""wsl_info end to end on the stand-in roots that tests/stand-ins/wsl/make-probe-root.sh writes (the roots the
molecule wsl-sim and fresh-host scenarios give their targets), through its test-only ``root`` option."""

from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.homelab.core.plugins.modules import wsl_info

MAKE_ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "stand-ins", "wsl", "make-probe-root.sh")
# The script makes /dev/dxg with mknod, which needs root (as the Molecule targets have it).
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mknod of the stand-in /dev/dxg needs root")


@pytest.fixture
def stand_in_root(tmp_path, monkeypatch):
    """Write a stand-in root of the given kind; the module's own environment has no WSL variables."""
    monkeypatch.delenv("WSL_DISTRO_NAME", raising=False)
    monkeypatch.delenv("WSL_INTEROP", raising=False)

    def _make(kind):
        root = tmp_path / kind
        subprocess.run(["sh", MAKE_ROOT, kind, str(root)], check=True)
        return str(root)

    return _make


def codes(result):
    return [problem["code"] for problem in result["problems"]]


@needs_root
def test_healthy_wsl2_root(run_module, stand_in_root):
    result = run_module(wsl_info, {"root": stand_in_root("wsl2")})
    assert result["changed"] is False and result["failed"] is False
    facts = result["wsl"]
    assert facts["wsl"] is True and facts["version"] == 2
    assert facts["kernel_release"] == "5.15.167.4-microsoft-standard-WSL2"
    assert facts["kernel_version"].startswith("Linux version 5.15.167.4-microsoft-standard-WSL2 (root@f9c826d3017f)")
    assert facts["interop_binfmt"] == ["WSLInterop"]
    assert facts["systemd"] is True and facts["wsl_conf"]["boot.systemd"] is True
    assert facts["gpu_paravirtualized"] is True and facts["cdi_mode"] == "wsl"
    assert facts["nvidia_smi"] == "/usr/lib/wsl/lib/nvidia-smi"
    assert facts["nvidia_libcuda"] == "/usr/lib/wsl/lib/libcuda.so.1"
    assert facts["docker_desktop_integration"] is False
    assert result["problems"] == []
    assert result["summary"] == ("WSL2, kernel 5.15.167.4-microsoft-standard-WSL2, systemd on, GPU shared from Windows"
                                 " (/dev/dxg)")


@needs_root
def test_systemd_off_root_is_a_prerequisite_problem(run_module, stand_in_root):
    result = run_module(wsl_info, {"root": stand_in_root("wsl2-systemd-off")})
    assert codes(result) == ["systemd_off"]
    assert result["problems"][0]["kind"] == "prerequisite"
    assert result["problems"][0]["msg"] == (
        "/etc/wsl.conf line 3 sets systemd=false in its [boot] section, so WSL starts this distribution without systemd,"
        " which Docker and the GPU layer need: change that line to systemd=true, then run 'wsl --shutdown' from Windows"
        " and open the distribution again.")


def test_wsl1_root_is_a_prerequisite_problem(run_module, stand_in_root):
    result = run_module(wsl_info, {"root": stand_in_root("wsl1")})
    assert result["wsl"]["version"] == 1
    assert codes(result) == ["wsl1"]
    assert "'wsl --set-version <distro> 2'" in result["problems"][0]["msg"]


@needs_root
def test_docker_desktop_root_refuses_the_native_engine_first(run_module, stand_in_root):
    root = stand_in_root("wsl2-docker-desktop")
    native = run_module(wsl_info, {"root": root})
    assert native["wsl"]["docker_desktop_integration"] is True and native["wsl"]["docker_desktop_cli_present"] is True
    assert codes(native) == ["docker_desktop_conflict"]
    desktop = run_module(wsl_info, {"root": root, "docker_engine": "desktop"})
    assert desktop["problems"] == []


@needs_root
def test_desktop_engine_on_a_root_without_docker_desktop(run_module, stand_in_root):
    result = run_module(wsl_info, {"root": stand_in_root("wsl2"), "docker_engine": "desktop"})
    assert codes(result) == ["docker_desktop_missing"]


def test_engine_refusal_comes_before_gpu_problems(run_module, tmp_path, monkeypatch):
    """A WSL2 root without /dev/dxg: the refusal of the engine is listed before the GPU problem."""
    monkeypatch.delenv("WSL_DISTRO_NAME", raising=False)
    (tmp_path / "proc" / "sys" / "kernel").mkdir(parents=True)
    (tmp_path / "proc" / "sys" / "kernel" / "osrelease").write_text("5.15.167.4-microsoft-standard-WSL2\n")
    (tmp_path / "proc" / "1").mkdir()
    (tmp_path / "proc" / "1" / "comm").write_text("systemd\n")
    result = run_module(wsl_info, {"root": str(tmp_path), "docker_engine": "desktop"})
    assert codes(result) == ["docker_desktop_missing", "no_dxg"]


def test_this_machine_is_read_from_slash_by_default(run_module):
    result = run_module(wsl_info, {})
    assert result["failed"] is False and isinstance(result["wsl"]["wsl"], bool)
    assert result["wsl"]["wsl"] or result["problems"] == []


def test_a_relative_root_is_refused(run_module):
    result = run_module(wsl_info, {"root": "stand-in"})
    assert result["failed"] is True
    assert result["msg"] == "root must be an absolute path (it is for tests only; leave it at /), got stand-in."


def test_unknown_stand_in_kind_fails(tmp_path):
    completed = subprocess.run(["sh", MAKE_ROOT, "wsl3", str(tmp_path / "x")], capture_output=True, text=True,
                               check=False)
    assert completed.returncode == 2 and "unknown kind 'wsl3'" in completed.stderr
