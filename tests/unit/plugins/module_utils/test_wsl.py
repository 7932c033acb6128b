# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""WSL detection and diagnoses of ``_wsl`` on recorded real-format strings, and the probe of ``wsl_info``.

Where each recorded string comes from:

- WSL1 ``/proc/sys/kernel/osrelease`` and ``/proc/version``, and an early WSL2 pair (``4.19.128-microsoft-standard``):
  github.com/powersj/whatsthis/issues/10 (output pasted by its author, 2020-12-27).
- ``5.4.72-microsoft-standard-WSL2``: github.com/twpayne/chezmoi/pull/1193 (``chezmoi data`` output).
- ``5.15.153.1-microsoft-standard-WSL2`` (WSL 2.3.17, Ubuntu 24.04.1): github.com/microsoft/WSL/issues/12013.
- ``5.15.90.2-microsoft-standard-WSL2``, ``/proc/sys/fs/binfmt_misc/WSLInterop`` and a ``/etc/wsl.conf`` with a
  comment line and ``systemd = true``: github.com/systemd/systemd/issues/28126.
- The ``WSLInterop-late`` entry name: github.com/microsoft/WSL/pull/13467 (WSL used it until 2025-09).
- /etc/wsl.conf rules: microsoft/WSL 2.9.4 ``src/shared/configfile/configfile.cpp`` and
  ``src/linux/init/WslDistributionConfig.{h,cpp}``; ``[boot]`` / ``systemd=true`` then ``wsl --shutdown``:
  learn.microsoft.com/windows/wsl/wsl-config and wsl.dev/technical-documentation/systemd.
- ``/usr/lib/wsl/lib/libcuda.so.1``, ``nvidia-smi``, ``libdxcore.so`` and ``/dev/dxg``: NVIDIA/nvidia-container-toolkit
  v1.20.0 ``pkg/nvcdi/driver-wsl.go`` and ``device-wsl.go``.
- PID 1 is WSL's ``init`` without systemd and ``systemd`` with it: wsl.dev/technical-documentation/systemd.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.homelab.core.plugins.module_utils import _wsl
from ansible_collections.homelab.core.plugins.modules import wsl_info

WSL1_RELEASE = "4.4.0-19041-Microsoft\n"
WSL1_VERSION = ("Linux version 4.4.0-19041-Microsoft (Microsoft@Microsoft.com) (gcc version 5.4.0 (GCC) ) #488-Microsoft"
                " Mon Sep 01 13:43:00 PST 2020\n")
WSL2_EARLY_RELEASE = "4.19.128-microsoft-standard\n"
WSL2_EARLY_VERSION = ("Linux version 4.19.128-microsoft-standard (oe-user@oe-host) (gcc version 8.2.0 (GCC)) #1 SMP Tue"
                      " Jun 23 12:58:10 UTC 2020\n")
WSL2_RELEASE = "5.15.153.1-microsoft-standard-WSL2\n"
WSL2_CHEZMOI_RELEASE = "5.4.72-microsoft-standard-WSL2\n"
WSL2_BOOKWORM_RELEASE = "5.15.90.2-microsoft-standard-WSL2\n"
# systemd/systemd#28126, verbatim.
WSL_CONF_SYSTEMD = "# https://learn.microsoft.com/en-us/windows/wsl/wsl-config\n[boot]\nsystemd = true\n"
# Debian 12's kernel release format (uname -r on a Debian host), not WSL.
DEBIAN_RELEASE = "6.1.0-18-amd64\n"


def reads(osrelease=WSL2_RELEASE, version=None, comm="systemd\n", conf=WSL_CONF_SYSTEMD, exists=None, env=None):
    """What the probe reads on a healthy WSL2 distribution with an NVIDIA GPU, with the given changes."""
    found = {
        _wsl.INTEROP_BINFMTS[0]: "file",
        _wsl.RUN_SYSTEMD: "dir",
        _wsl.SBIN_INIT: "link:/lib/systemd/systemd",
        _wsl.DEV_DXG: "char",
        _wsl.WSL_NVIDIA_SMI: "file",
        _wsl.WSL_LIBCUDA: "file",
        _wsl.WSL_LIBDXCORE: "file",
    }
    found.update(exists or {})
    environment = {"WSL_DISTRO_NAME": "Ubuntu-24.04", "WSL_INTEROP": "/run/WSL/2_interop"}
    if env is not None:
        environment = env
    return {
        "contents": {_wsl.OSRELEASE: osrelease, _wsl.PROC_VERSION: version, _wsl.PID1_COMM: comm, _wsl.WSL_CONF: conf},
        "exists": {path: found.get(path) for path in _wsl.paths_to_read()["exists"]},
        "environment": environment,
    }


def codes(problems):
    return [problem["code"] for problem in problems]


# --- Detection -------------------------------------------------------------------------------------------------------


def test_native_linux_is_not_wsl():
    facts, problems = _wsl.detect(reads(osrelease=DEBIAN_RELEASE, comm="systemd\n", conf=None, env={},
                                        exists={_wsl.INTEROP_BINFMTS[0]: None, _wsl.DEV_DXG: None,
                                                _wsl.WSL_NVIDIA_SMI: None, _wsl.WSL_LIBCUDA: None,
                                                _wsl.WSL_LIBDXCORE: None,
                                                "/usr/lib/x86_64-linux-gnu/libcuda.so.1": "link:libcuda.so.550.54.14"}))
    assert facts["wsl"] is False and facts["version"] is None
    assert problems == []
    # A Linux host's own driver is nobody's problem here.
    assert facts["linux_driver_files"] == []
    assert _wsl.summary(facts) == "not WSL"


def test_healthy_wsl2_with_gpu():
    facts, problems = _wsl.detect(reads())
    assert problems == []
    assert facts["wsl"] is True and facts["version"] == 2
    assert facts["distro"] == "Ubuntu-24.04"
    assert facts["systemd"] is True and facts["pid1"] == "systemd"
    assert facts["interop_binfmt"] == ["WSLInterop"]
    assert facts["gpu_paravirtualized"] is True
    assert facts["nvidia_smi"] == "/usr/lib/wsl/lib/nvidia-smi"
    assert facts["nvidia_libcuda"] == "/usr/lib/wsl/lib/libcuda.so.1"
    assert facts["cdi_mode"] == "wsl"
    assert facts["wsl_conf"]["boot.systemd"] is True
    assert _wsl.summary(facts) == ("WSL2, distribution Ubuntu-24.04, kernel 5.15.153.1-microsoft-standard-WSL2,"
                                   " systemd on, GPU shared from Windows (/dev/dxg)")


@pytest.mark.parametrize("release", [WSL2_RELEASE, WSL2_CHEZMOI_RELEASE, WSL2_BOOKWORM_RELEASE, WSL2_EARLY_RELEASE])
def test_wsl2_kernel_releases(release):
    assert _wsl.kernel_flavour(release) == 2
    facts, _problems = _wsl.detect(reads(osrelease=release, version=WSL2_EARLY_VERSION, env={},
                                         exists={_wsl.INTEROP_BINFMTS[0]: None, _wsl.WSL_LIBDXCORE: None}))
    # The kernel release alone is enough.
    assert facts["wsl"] is True and facts["version"] == 2
    assert facts["evidence"] == ["kernel release %s (WSL2)" % release.strip()]


def test_wsl1_is_refused_with_the_conversion_command():
    facts, problems = _wsl.detect(reads(osrelease=WSL1_RELEASE, version=WSL1_VERSION, comm="init\n", conf=None,
                                        env={"WSL_DISTRO_NAME": "Ubuntu"},
                                        exists={_wsl.DEV_DXG: None, _wsl.RUN_SYSTEMD: None}))
    assert facts["version"] == 1
    assert facts["gpu_paravirtualized"] is False and facts["cdi_mode"] is None
    assert codes(problems) == ["wsl1"]
    assert problems[0]["kind"] == "prerequisite"
    assert "4.4.0-19041-Microsoft" in problems[0]["msg"]
    assert "'wsl --set-version Ubuntu 2'" in problems[0]["msg"]


def test_distro_unknown_when_sudo_dropped_the_environment():
    facts, problems = _wsl.detect(reads(osrelease=WSL1_RELEASE, env={}))
    assert facts["wsl"] is True and facts["distro"] is None
    assert "'wsl --set-version <distro> 2'" in problems[0]["msg"]


def test_custom_kernel_is_wsl2_through_interop_late_and_environment():
    facts, problems = _wsl.detect(reads(osrelease="6.1.21-custom\n",
                                        exists={_wsl.INTEROP_BINFMTS[0]: None, _wsl.INTEROP_BINFMTS[1]: "file"}))
    assert facts["wsl"] is True and facts["version"] == 2
    assert facts["interop_binfmt"] == ["WSLInterop-late"]
    assert "WSL_INTEROP set" in facts["evidence"]
    assert problems == []


def test_lowercase_microsoft_alone_is_not_wsl():
    # Microsoft's cloud kernels carry a lower-case "microsoft" too (systemd/systemd#15614); constructed release.
    facts, problems = _wsl.detect(reads(osrelease="5.15.0-1-microsoft-cloud\n", env={},
                                        exists={_wsl.INTEROP_BINFMTS[0]: None, _wsl.WSL_LIBDXCORE: None}))
    assert facts["wsl"] is False and problems == []


# --- systemd ---------------------------------------------------------------------------------------------------------


def test_systemd_off_without_wsl_conf():
    facts, problems = _wsl.detect(reads(comm="init\n", conf=None, exists={_wsl.RUN_SYSTEMD: None}))
    assert facts["systemd"] is False and facts["pid1"] == "init"
    assert facts["wsl_conf_present"] is False and facts["wsl_conf"]["boot.systemd"] is False
    assert codes(problems) == ["systemd_off"]
    msg = problems[0]["msg"]
    assert "'[boot]' and 'systemd=true'" in msg and "/etc/wsl.conf" in msg and "'wsl --shutdown'" in msg


@pytest.mark.parametrize("conf, line, value", [
    ("[boot]\nsystemd=false\n", 2, "false"),
    ("[boot]\nsystemd = 0\n", 2, "0"),
    ("[boot]\nsystemd=yes\n", 2, "yes"),
    # The first occurrence wins: adding systemd=true below would change nothing, so the fix names line 2.
    ("# mine\n[boot]\nsystemd=false\nsystemd=true\n", 3, "false"),
])
def test_systemd_switched_off_in_wsl_conf_names_its_line(conf, line, value):
    facts, problems = _wsl.detect(reads(comm="init\n", conf=conf, exists={_wsl.RUN_SYSTEMD: None}))
    assert facts["wsl_conf"]["boot.systemd"] is False
    assert codes(problems) == ["systemd_off"]
    assert problems[0]["msg"] == (
        "/etc/wsl.conf line %d sets systemd=%s in its [boot] section, so WSL starts this distribution without systemd,"
        " which Docker and the GPU layer need: change that line to systemd=true, then run 'wsl --shutdown' from Windows"
        " and open the distribution again." % (line, value))


def test_systemd_set_but_not_restarted():
    facts, problems = _wsl.detect(reads(comm="init\n", exists={_wsl.RUN_SYSTEMD: None}))
    assert facts["wsl_conf"]["boot.systemd"] is True
    assert codes(problems) == ["systemd_off"]
    assert "has not restarted" in problems[0]["msg"]
    assert "'wsl --terminate Ubuntu-24.04'" in problems[0]["msg"]


def test_systemd_set_but_no_sbin_init():
    _facts, problems = _wsl.detect(reads(comm="init\n", exists={_wsl.RUN_SYSTEMD: None, _wsl.SBIN_INIT: None}))
    assert codes(problems) == ["systemd_off"]
    assert "systemd-sysv" in problems[0]["msg"]


def test_systemd_hidden_behind_an_invalid_line():
    conf = "; my settings\n[boot]\nsystemd=true\n"
    facts, problems = _wsl.detect(reads(comm="init\n", conf=conf, exists={_wsl.RUN_SYSTEMD: None}))
    assert facts["wsl_conf"]["boot.systemd"] is False
    assert facts["wsl_conf_warnings"] == [
        "/etc/wsl.conf line 1: a key must start with a letter (comments start with '#'); WSL ignores this line and"
        " everything after it."
    ]
    assert codes(problems) == ["systemd_off"]
    assert "invalid line (/etc/wsl.conf line 1)" in problems[0]["msg"]


def test_systemd_detected_from_run_when_comm_unreadable():
    facts, _problems = _wsl.detect(reads(comm=None))
    assert facts["systemd"] is True and facts["pid1"] is None


# --- NVIDIA ----------------------------------------------------------------------------------------------------------


def test_no_dxg_is_a_gpu_problem():
    facts, problems = _wsl.detect(reads(exists={_wsl.DEV_DXG: None, _wsl.WSL_LIBCUDA: None, _wsl.WSL_NVIDIA_SMI: None}))
    assert facts["gpu_paravirtualized"] is False and facts["cdi_mode"] is None
    assert codes(problems) == ["no_dxg"]
    assert problems[0]["kind"] == "gpu"
    assert "NVIDIA driver for the GPU on Windows" in problems[0]["msg"] and "'wsl --update'" in problems[0]["msg"]
    assert _wsl.summary(facts).endswith("GPU not shared")


def test_gpu_switched_off_in_wsl_conf():
    conf = WSL_CONF_SYSTEMD + "[gpu]\nenabled = false\n"
    _facts, problems = _wsl.detect(reads(conf=conf, exists={_wsl.DEV_DXG: None}))
    assert codes(problems) == ["no_dxg"]
    assert "[gpu] enabled=false" in problems[0]["msg"]


def test_dxg_without_the_windows_nvidia_driver():
    facts, problems = _wsl.detect(reads(exists={_wsl.WSL_LIBCUDA: None, _wsl.WSL_NVIDIA_SMI: None}))
    assert facts["gpu_paravirtualized"] is True and facts["nvidia_libcuda"] is None
    assert codes(problems) == ["no_wsl_nvidia_driver"]
    assert problems[0]["kind"] == "gpu"


@pytest.mark.parametrize("kind", ["link:libcuda.so.550.54.14", "file"])
def test_linux_driver_inside_wsl(kind):
    path = "/usr/lib/x86_64-linux-gnu/libcuda.so.1"
    facts, problems = _wsl.detect(reads(exists={path: kind}))
    assert facts["linux_driver_files"] == [path]
    assert codes(problems) == ["linux_driver_inside_wsl"]
    assert problems[0]["kind"] == "prerequisite"
    assert "'dpkg -S %s'" % path in problems[0]["msg"] and "'apt-get purge'" in problems[0]["msg"]


def test_link_into_the_wsl_libraries_is_no_linux_driver():
    facts, problems = _wsl.detect(reads(exists={"/usr/lib/x86_64-linux-gnu/libcuda.so.1": "link:/usr/lib/wsl/lib/libcuda.so.1"}))
    assert facts["linux_driver_files"] == [] and problems == []


def test_every_problem_at_once_in_order():
    _facts, problems = _wsl.detect(reads(comm="init\n", conf=None,
                                         exists={_wsl.RUN_SYSTEMD: None, _wsl.DEV_DXG: None,
                                                 "/usr/lib64/libcuda.so.1": "file"}))
    assert codes(problems) == ["systemd_off", "linux_driver_inside_wsl", "no_dxg"]
    assert all(problem["msg"].endswith(".") and problem["msg"].count(". ") == 0 for problem in problems)


# --- /etc/wsl.conf as WSL parses it -----------------------------------------------------------------------------------


def test_wsl_conf_from_systemd_issue():
    values, warnings = _wsl.parse_wsl_conf(WSL_CONF_SYSTEMD)
    assert values == {"boot.systemd": ("true", 3)} and warnings == []


@pytest.mark.parametrize("text, expected", [
    ("[Boot]\nSystemd=TRUE\n", True),
    ("[boot]\r\nsystemd=true\r\n", True),
    ("  [boot]   # trailing comment\n\tsystemd\t=\t1   # on\n", True),
    ('[boot]\nsystemd="true"\n', True),
    ("[boot]\nsystemd=false\nsystemd=true\n", False),
    ("[boot]\nsystemd=0\n", False),
    ("systemd=true\n", False),
    ("[boot]\nsystemd=yes\n", False),
    ("[ boot ]\nsystemd=true\n", False),
    ("[boot]\nsystemd true\n", False),
    ("[boot]\ncommand=\"echo #\n[boot]\nsystemd=true\n", False),
    ("[boot]\nsystemd=tr\\\nue\n", True),
    ("[user]\ndefault=me\n[boot]\nsystemd=true # WSL 0.67.6+\n", True),
])
def test_wsl_conf_rules(text, expected):
    settings, _warnings = _wsl.wsl_conf_settings(text)
    assert settings["boot.systemd"] is expected


def test_wsl_conf_values_and_warnings():
    text = '[user]\ndefault = "me " # mine\n[boot]\nsystemd = yes\nsystemd = true\n[network]\nhostname = a\\tb\n'
    values, warnings = _wsl.parse_wsl_conf(text)
    assert values["user.default"] == ("me ", 2)
    assert values["network.hostname"] == ("a\tb", 7)
    settings, all_warnings = _wsl.wsl_conf_settings(text)
    assert settings["boot.systemd"] is False and settings["user.default"] == "me "
    assert warnings == ["/etc/wsl.conf line 5: 'boot.systemd' is set again; WSL keeps the value from line 4."]
    assert all_warnings[-1] == ("/etc/wsl.conf line 4: 'yes' is not a boolean (true, false, 1 or 0); WSL uses its"
                                " default, false.")


def test_wsl_conf_unknown_escape_stops_the_parse():
    values, warnings = _wsl.parse_wsl_conf("[boot]\ncommand=a\\qb\nsystemd=true\n")
    assert values == {} and "unknown escape" in warnings[0]


# --- The probe of wsl_info --------------------------------------------------------------------------------------------


def test_paths_to_read_are_absolute_and_known():
    wanted = _wsl.paths_to_read()
    assert set(wanted) == {"contents", "exists", "environment"}
    assert all(path.startswith("/") for path in wanted["contents"] + wanted["exists"])
    assert wanted["environment"] == ["WSL_DISTRO_NAME", "WSL_INTEROP"]


def test_probe_reads_files_and_never_follows_links(tmp_path):
    target = tmp_path / "secret"
    target.write_text("do not read")
    conf = tmp_path / "wsl.conf"
    conf.write_text(WSL_CONF_SYSTEMD)
    link = tmp_path / "link"
    link.symlink_to(target)
    fifo = tmp_path / "fifo"
    os.mkfifo(str(fifo))
    assert wsl_info.read_text(str(conf), 100) == WSL_CONF_SYSTEMD
    assert wsl_info.read_text(str(conf), 6) == WSL_CONF_SYSTEMD[:6]
    assert wsl_info.read_text(str(link), 100) is None
    assert wsl_info.read_text(str(fifo), 100) is None
    assert wsl_info.read_text(str(tmp_path), 100) is None
    assert wsl_info.read_text(str(tmp_path / "missing"), 100) is None
    assert wsl_info.kind_of(str(link)) == "link:%s" % target
    assert wsl_info.kind_of(str(fifo)) == "fifo"
    assert wsl_info.kind_of(str(tmp_path)) == "dir"
    assert wsl_info.kind_of("/dev/null") == "char"
    assert wsl_info.kind_of(str(tmp_path / "missing")) is None


def test_probe_on_this_machine_is_consistent():
    probed = wsl_info.probe()
    facts, problems = _wsl.detect(probed)
    assert set(probed["contents"]) == set(_wsl.paths_to_read()["contents"])
    assert isinstance(facts["wsl"], bool)
    assert facts["wsl"] or problems == []


# --- Docker Desktop's WSL integration and docker_wsl_engine -----------------------------------------------------------

# docker/for-win#6441: the link Docker Desktop's WSL integration puts in the distribution.
DESKTOP_LINK = "link:/mnt/wsl/docker-desktop/cli-tools/usr/bin/docker"


def test_no_docker_desktop_on_a_fresh_distribution():
    facts, _problems = _wsl.detect(reads())
    assert facts["docker_desktop_integration"] is False
    assert facts["docker_desktop_cli"] is None and facts["docker_desktop_cli_present"] is False
    assert _wsl.docker_engine_problems(facts, "native") == []


def test_docker_engine_installed_in_the_distribution_is_no_integration():
    facts, _problems = _wsl.detect(reads(exists={_wsl.DOCKER_CLI: "file"}))
    assert facts["docker_desktop_integration"] is False
    assert _wsl.docker_engine_problems(facts, "native") == []


def test_docker_desktop_integration_with_native_engine_is_refused():
    facts, problems = _wsl.detect(reads(exists={_wsl.DOCKER_CLI: DESKTOP_LINK, _wsl.DOCKER_DESKTOP_CLI: "file"}))
    assert problems == []
    assert facts["docker_desktop_integration"] is True and facts["docker_desktop_cli_present"] is True
    assert facts["docker_desktop_cli"] == "/mnt/wsl/docker-desktop/cli-tools/usr/bin/docker"
    assert _wsl.summary(facts).endswith("GPU shared from Windows (/dev/dxg), Docker Desktop's WSL integration on")
    engine = _wsl.docker_engine_problems(facts, "native")
    assert codes(engine) == ["docker_desktop_conflict"] and engine[0]["kind"] == "prerequisite"
    msg = engine[0]["msg"]
    assert msg.startswith("Docker Desktop's WSL integration is on in this distribution (/usr/bin/docker links to"
                          " /mnt/wsl/docker-desktop/cli-tools/usr/bin/docker) while docker_wsl_engine is native,")
    assert "/var/run/docker.sock" in msg and "set docker_wsl_engine: desktop" in msg
    assert "Settings > Resources > WSL Integration" in msg and msg.count(". ") == 0 and msg.endswith(".")
    assert _wsl.docker_engine_problems(facts, "desktop") == []


def test_desktop_engine_without_docker_desktop_is_refused():
    facts, _problems = _wsl.detect(reads())
    engine = _wsl.docker_engine_problems(facts, "desktop")
    assert codes(engine) == ["docker_desktop_missing"]
    assert engine[0]["msg"].startswith("docker_wsl_engine is desktop but Docker Desktop's docker CLI is not in this"
                                       " distribution (/usr/bin/docker is not Docker Desktop's link into"
                                       " /mnt/wsl/docker-desktop/):")
    assert engine[0]["msg"].endswith("or set docker_wsl_engine: native to install Docker Engine here.")


def test_desktop_engine_with_a_dangling_link_is_refused():
    # docker/for-win#6441: the link stays when Docker Desktop's share is empty.
    facts, _problems = _wsl.detect(reads(exists={_wsl.DOCKER_CLI: DESKTOP_LINK}))
    assert facts["docker_desktop_integration"] is True and facts["docker_desktop_cli_present"] is False
    engine = _wsl.docker_engine_problems(facts, "desktop")
    assert codes(engine) == ["docker_desktop_missing"]
    assert "which does not exist (Docker Desktop is not running, or pauses in Resource Saver)" in engine[0]["msg"]


@pytest.mark.parametrize("osrelease", [DEBIAN_RELEASE, WSL1_RELEASE])
def test_docker_engine_is_not_judged_outside_wsl2(osrelease):
    facts, _problems = _wsl.detect(reads(osrelease=osrelease, env={},
                                         exists={_wsl.INTEROP_BINFMTS[0]: None, _wsl.WSL_LIBDXCORE: None,
                                                 _wsl.DOCKER_CLI: DESKTOP_LINK}))
    assert _wsl.docker_engine_problems(facts, "native") == []
    assert _wsl.docker_engine_problems(facts, "desktop") == []


def test_unknown_docker_engine_is_a_programming_error():
    facts, _problems = _wsl.detect(reads())
    with pytest.raises(ValueError):
        _wsl.docker_engine_problems(facts, "podman")
