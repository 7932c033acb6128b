# -*- coding: utf-8 -*-
# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure helpers for the wsl_info module: tell a WSL distribution from a Linux host, WSL1 from WSL2, and say what
stops the homelab from running in it.

Nothing here reads the host. ``paths_to_read()`` names what a read-only probe reads; ``detect(reads)`` takes what it
read and returns the facts and the problems, each problem one sentence that names the fix.

Sources (read December 2026):

- microsoft/WSL 2.9.4: ``src/shared/configfile/configfile.cpp`` (how /etc/wsl.conf is parsed),
  ``src/linux/init/WslDistributionConfig.{h,cpp}`` (its keys and defaults: ``boot.systemd`` false, ``gpu.enabled``
  true; the distribution's file is parsed without ``CFG_SKIP_INVALID_LINES``, so an invalid line ends the parse),
  ``src/linux/init/binfmt.h`` (the ``WSLInterop`` binfmt_misc entry), ``src/linux/init/util.h`` (``WSL_DISTRO_NAME``).
- Kernel release strings: WSL1 ``4.4.0-19041-Microsoft`` (github.com/powersj/whatsthis/issues/10), WSL2
  ``4.19.128-microsoft-standard`` (same thread), ``5.4.72-microsoft-standard-WSL2`` (github.com/twpayne/chezmoi/pull/1193),
  and Microsoft's own kernels never use an upper-case "Microsoft" (github.com/systemd/systemd/pull/15614).
- ``WSLInterop-late``: the name WSL's systemd unit registered before github.com/microsoft/WSL/pull/13467 (2025-09)
  went back to ``WSLInterop``; systemd-binfmt can wipe either (github.com/ubuntu/WSL/issues/334), so neither is
  required.
- NVIDIA: the Windows driver provides CUDA inside WSL2 as ``/usr/lib/wsl/lib/libcuda.so.1`` and no Linux driver may be
  installed in the distribution (docs.nvidia.com/cuda/wsl-user-guide); the toolkit's CDI ``wsl`` mode uses ``/dev/dxg``
  and ``/usr/lib/wsl/lib`` (NVIDIA/nvidia-container-toolkit v1.20.0 ``pkg/nvcdi/device-wsl.go``, ``driver-wsl.go``).
- Docker Desktop's WSL integration links the distribution's ``/usr/bin/docker`` to
  ``/mnt/wsl/docker-desktop/cli-tools/usr/bin/docker`` (github.com/docker/for-win/issues/6441, #14850, #5096) and serves
  ``/var/run/docker.sock`` there through its proxy (docker/for-win#14686, a Docker maintainer's listing), the socket a
  Docker Engine inside the distribution listens on too. ``/mnt/wsl`` is one tmpfs shared by every distribution of the
  VM (microsoft/WSL 2.9.4 ``src/linux/init/main.cpp`` lines 72, 1265-1272), so only the link in this distribution's own
  ``/usr/bin`` says that the integration is on here. Docker's docs ask to remove an Engine installed inside the
  distribution before using Desktop: "Running both can cause conflicts" (docker/docs
  ``content/manuals/desktop/features/wsl/_index.md`` lines 35-36, commit 02abccb5).
"""

from __future__ import annotations

import re

OSRELEASE = "/proc/sys/kernel/osrelease"
PROC_VERSION = "/proc/version"
PID1_COMM = "/proc/1/comm"
WSL_CONF = "/etc/wsl.conf"
INTEROP_BINFMTS = ("/proc/sys/fs/binfmt_misc/WSLInterop", "/proc/sys/fs/binfmt_misc/WSLInterop-late")
RUN_SYSTEMD = "/run/systemd/system"
SBIN_INIT = "/sbin/init"
DEV_DXG = "/dev/dxg"
WSL_LIB_DIR = "/usr/lib/wsl/lib"
WSL_NVIDIA_SMI = WSL_LIB_DIR + "/nvidia-smi"
WSL_LIBCUDA = WSL_LIB_DIR + "/libcuda.so.1"
WSL_LIBDXCORE = WSL_LIB_DIR + "/libdxcore.so"
# Where a Linux NVIDIA driver package (Debian/Ubuntu libnvidia-compute, cuda-drivers; RPM distributions) puts libcuda.
LINUX_LIBCUDA = (
    "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
    "/usr/lib/aarch64-linux-gnu/libcuda.so.1",
    "/usr/lib64/libcuda.so.1",
)
ENVIRONMENT = ("WSL_DISTRO_NAME", "WSL_INTEROP")
# Docker Desktop's WSL integration: the CLI link it puts in the distribution, and where that link points.
DOCKER_CLI = "/usr/bin/docker"
DOCKER_DESKTOP_SHARE = "/mnt/wsl/docker-desktop/"
DOCKER_DESKTOP_CLI = DOCKER_DESKTOP_SHARE + "cli-tools/usr/bin/docker"
# The Docker engines a WSL distribution can use (docker_wsl_engine of role homelab.core.docker).
DOCKER_ENGINES = ("native", "desktop")

# The largest /etc/wsl.conf the probe reads; the proc files are one line.
MAX_CONF_SIZE = 65536

# Keys of /etc/wsl.conf this module interprets, with WSL's defaults (WslDistributionConfig.h).
_BOOL_DEFAULTS = {"boot.systemd": False, "gpu.enabled": True, "interop.enabled": True}

_HSPACE = " \t"


def paths_to_read():
    """What a read-only probe reads: ``contents`` (small text files), ``exists`` (looked at with lstat, never
    followed) and ``environment`` (variables of the module's own process)."""
    return {
        "contents": [OSRELEASE, PROC_VERSION, PID1_COMM, WSL_CONF],
        "exists": list(INTEROP_BINFMTS) + [RUN_SYSTEMD, SBIN_INIT, DEV_DXG, WSL_NVIDIA_SMI, WSL_LIBCUDA, WSL_LIBDXCORE]
        + list(LINUX_LIBCUDA) + [DOCKER_CLI, DOCKER_DESKTOP_CLI],
        "environment": list(ENVIRONMENT),
    }


def _isalpha(char):
    return ("a" <= char <= "z") or ("A" <= char <= "Z")


def _isalnum(char):
    return _isalpha(char) or "0" <= char <= "9"


class _Stop(Exception):
    pass


def parse_wsl_conf(text):
    """Parse /etc/wsl.conf as WSL's init does (configfile.cpp at 2.9.4).

    Sections ``[name]`` and keys start with a letter and go on with letters and digits; keys match case-insensitively
    as ``section.key``; ``#`` starts a comment (also after a value, unless quoted); a value loses its unescaped
    double quotes and its trailing blanks, knows the escapes ``\\\\ \\" \\b \\n \\t`` and a backslash at the end of a
    line continues it; the first occurrence of a key wins. Any other line (``;`` comments, ``key value``, ``[ boot ]``)
    is invalid and ends the parse: WSL ignores everything after it.

    Returns ``(values, warnings)``: ``values`` maps each lower-cased ``section.key`` to ``(value, line)``.
    """
    values = {}
    warnings = []
    lines = (text or "").split("\n")
    state = {"index": 0}

    def invalid(number, why):
        warnings.append("%s line %d: %s; WSL ignores this line and everything after it." % (WSL_CONF, number, why))
        raise _Stop()

    section = ""
    try:
        while state["index"] < len(lines):
            number = state["index"] + 1
            line = lines[state["index"]]
            state["index"] += 1
            stripped = line.lstrip(_HSPACE)
            if stripped in ("", "\r") or stripped.startswith("#"):
                continue
            if stripped.startswith("["):
                pos = 1
                if pos >= len(stripped) or not _isalpha(stripped[pos]):
                    invalid(number, "a section name must start with a letter")
                while pos < len(stripped) and _isalnum(stripped[pos]):
                    pos += 1
                if pos >= len(stripped) or stripped[pos] != "]":
                    invalid(number, "expected ']' after the section name")
                rest = stripped[pos + 1:].lstrip(_HSPACE)
                if rest not in ("", "\r") and not rest.startswith("#"):
                    invalid(number, "expected the end of the line after ']'")
                section = stripped[1:pos]
                continue
            if not _isalpha(stripped[0]):
                invalid(number, "a key must start with a letter (comments start with '#')")
            pos = 0
            while pos < len(stripped) and _isalnum(stripped[pos]):
                pos += 1
            name = stripped[:pos]
            rest = stripped[pos:].lstrip(_HSPACE)
            if not rest.startswith("="):
                invalid(number, "expected '=' after '%s'" % name)
            value, trimmed = _parse_value(rest[1:].lstrip(_HSPACE), lines, state, number, invalid)
            key = ("%s.%s" % (section, name) if section else name).lower()
            if key in values:
                warnings.append("%s line %d: '%s' is set again; WSL keeps the value from line %d."
                                % (WSL_CONF, number, key, values[key][1]))
                continue
            values[key] = (value[:trimmed], number)
    except _Stop:
        pass
    return values, warnings


def _parse_value(rest, lines, state, number, invalid):
    value = []
    trimmed = 0
    in_quote = False
    pos = 0
    while True:
        if pos >= len(rest):
            break
        char = rest[pos]
        pos += 1
        if char == "\r":
            break
        if char == '"':
            in_quote = not in_quote
        elif char == "\\":
            if pos >= len(rest):
                # A backslash at the end of the line: the value continues on the next one.
                if state["index"] < len(lines):
                    rest = lines[state["index"]]
                    state["index"] += 1
                    pos = 0
                    trimmed = len(value)
                    continue
                break
            escaped = rest[pos]
            pos += 1
            if escaped in ('\\', '"'):
                value.append(escaped)
            elif escaped in "bnt":
                value.append({"b": "\b", "n": "\n", "t": "\t"}[escaped])
            elif escaped == "\r":
                trimmed = len(value)
                break
            else:
                invalid(number, "unknown escape '\\%s'" % escaped)
        elif char == "#" and not in_quote:
            break
        else:
            value.append(char)
        if char not in _HSPACE:
            trimmed = len(value)
    if in_quote:
        invalid(number, "a quoted value is not closed")
    return "".join(value), trimmed


def parse_bool(value):
    """WSL's ParseBool: ``1`` or ``true``, ``0`` or ``false`` (either in any case); anything else is None."""
    if value == "1" or value.lower() == "true":
        return True
    if value == "0" or value.lower() == "false":
        return False
    return None


def wsl_conf_settings(text):
    """The settings of /etc/wsl.conf that matter here, with WSL's defaults, and the parse warnings."""
    values, warnings = parse_wsl_conf(text)
    settings = dict(_BOOL_DEFAULTS)
    for key in _BOOL_DEFAULTS:
        if key in values:
            raw, number = values[key]
            parsed = parse_bool(raw)
            if parsed is None:
                warnings.append("%s line %d: '%s' is not a boolean (true, false, 1 or 0); WSL uses its default, %s."
                                % (WSL_CONF, number, raw, str(_BOOL_DEFAULTS[key]).lower()))
            else:
                settings[key] = parsed
    if "user.default" in values:
        settings["user.default"] = values["user.default"][0]
    return settings, warnings


def kernel_flavour(osrelease):
    """``1`` for a WSL1 kernel release, ``2`` for a Microsoft WSL2 kernel, None for anything else.

    WSL1's lxcore reports a release with an upper-case "Microsoft" (``4.4.0-19041-Microsoft``); Microsoft's WSL2
    kernels end in ``-microsoft-standard-WSL2`` (older ones ``-microsoft-standard``). A lower-case "microsoft" alone
    is not enough: Microsoft's cloud kernels carry it too (systemd/systemd#15614).
    """
    release = (osrelease or "").strip()
    if "Microsoft" in release:
        return 1
    if "WSL2" in release or release.endswith("-microsoft-standard"):
        return 2
    return None


def _present(kind):
    return bool(kind)


def _linux_driver_files(exists):
    """libcuda.so.1 files of a Linux driver package: present, and not a link into /usr/lib/wsl/lib."""
    found = []
    for path in LINUX_LIBCUDA:
        kind = exists.get(path)
        if not kind:
            continue
        if kind.startswith("link:") and kind[len("link:"):].startswith(WSL_LIB_DIR + "/"):
            continue
        found.append(path)
    return found


def detect(reads):
    """Facts and problems from what the probe read.

    ``reads`` has ``contents`` (path to text, None when missing), ``exists`` (path to a kind: ``file``, ``dir``,
    ``char``, ``link:<target>``..., or None when missing) and ``environment`` (name to value or None), for the paths of
    ``paths_to_read()``. Returns ``(facts, problems)``; each problem is a dict with ``code``, ``kind`` (``prerequisite``:
    refuse the run; ``gpu``: only when a GPU is wanted) and ``msg`` (one sentence naming the fix).
    """
    contents = reads.get("contents") or {}
    exists = reads.get("exists") or {}
    env = reads.get("environment") or {}

    osrelease = (contents.get(OSRELEASE) or "").strip()
    proc_version = (contents.get(PROC_VERSION) or "").strip()
    flavour = kernel_flavour(osrelease)
    interop = [path.rsplit("/", 1)[1] for path in INTEROP_BINFMTS if _present(exists.get(path))]
    distro = env.get("WSL_DISTRO_NAME") or None
    evidence = []
    if flavour == 1:
        evidence.append("kernel release %s (WSL1)" % osrelease)
    elif flavour == 2:
        evidence.append("kernel release %s (WSL2)" % osrelease)
    if interop:
        evidence.append("binfmt_misc %s" % ", ".join(interop))
    for name in ENVIRONMENT:
        if env.get(name):
            evidence.append("%s set" % name)
    if "microsoft" in osrelease.lower() and _present(exists.get(WSL_LIBDXCORE)):
        evidence.append("microsoft kernel with %s" % WSL_LIBDXCORE)

    is_wsl = bool(evidence)
    version = None
    if is_wsl:
        # A custom kernel (.wslconfig kernel=) can have any release; WSL1 has no kernel of its own to replace.
        version = 1 if flavour == 1 else 2

    conf_text = contents.get(WSL_CONF)
    settings, conf_warnings = wsl_conf_settings(conf_text) if is_wsl else (dict(_BOOL_DEFAULTS), [])
    pid1 = (contents.get(PID1_COMM) or "").strip() or None
    systemd = pid1 == "systemd" if pid1 else _present(exists.get(RUN_SYSTEMD))
    dxg = exists.get(DEV_DXG) == "char"
    wsl_smi = _present(exists.get(WSL_NVIDIA_SMI))
    wsl_libcuda = _present(exists.get(WSL_LIBCUDA))
    linux_driver = _linux_driver_files(exists) if is_wsl else []

    facts = {
        "wsl": is_wsl,
        "version": version,
        "distro": distro,
        "kernel_release": osrelease or None,
        "kernel_version": proc_version or None,
        "evidence": evidence,
        "interop_binfmt": interop,
        "systemd": systemd,
        "pid1": pid1,
        "wsl_conf_present": conf_text is not None,
        "wsl_conf": settings,
        "wsl_conf_warnings": conf_warnings,
        "gpu_paravirtualized": bool(is_wsl and version == 2 and dxg),
        "nvidia_smi": WSL_NVIDIA_SMI if is_wsl and wsl_smi else None,
        "nvidia_libcuda": WSL_LIBCUDA if is_wsl and wsl_libcuda else None,
        "linux_driver_files": linux_driver,
        "cdi_mode": "wsl" if is_wsl and version == 2 and dxg else None,
    }
    facts.update(_docker_desktop(exists) if is_wsl else _docker_desktop({}))
    # Where /etc/wsl.conf sets boot.systemd itself (its value and line), for the fix of systemd_off.
    systemd_line = parse_wsl_conf(conf_text)[0].get("boot.systemd") if is_wsl else None
    return facts, _problems(facts, exists, systemd_line) if is_wsl else []


def _docker_desktop(exists):
    """Whether Docker Desktop's WSL integration is on in this distribution, from its CLI link."""
    kind = exists.get(DOCKER_CLI) or ""
    target = kind[len("link:"):] if kind.startswith("link:") else ""
    integrated = target.startswith(DOCKER_DESKTOP_SHARE)
    return {
        "docker_desktop_integration": integrated,
        "docker_desktop_cli": target if integrated else None,
        "docker_desktop_cli_present": integrated and _present(exists.get(DOCKER_DESKTOP_CLI)),
    }


def docker_engine_problems(facts, engine):
    """The problems of the Docker engine chosen for a WSL2 distribution (``native`` or ``desktop``), each one sentence
    that names ``docker_wsl_engine`` and the fix; none on a host that is not WSL2."""
    if engine not in DOCKER_ENGINES:
        raise ValueError("unknown Docker engine %r; expected one of %s" % (engine, ", ".join(DOCKER_ENGINES)))
    if not facts["wsl"] or facts["version"] != 2:
        return []
    if engine == "native" and facts["docker_desktop_integration"]:
        return [{
            "code": "docker_desktop_conflict",
            "kind": "prerequisite",
            "msg": "Docker Desktop's WSL integration is on in this distribution (%s links to %s) while docker_wsl_engine is"
                   " native, so a Docker Engine installed here and Docker Desktop would fight over /var/run/docker.sock:"
                   " set docker_wsl_engine: desktop to use Docker Desktop's engine, or turn this distribution off in"
                   " Docker Desktop's Settings > Resources > WSL Integration and remove the link it leaves ('sudo rm %s')."
                   % (DOCKER_CLI, facts["docker_desktop_cli"], DOCKER_CLI),
        }]
    if engine == "desktop" and not facts["docker_desktop_cli_present"]:
        if facts["docker_desktop_integration"]:
            found = "%s links to %s, which does not exist (Docker Desktop is not running, or pauses in Resource Saver)" % (
                DOCKER_CLI, facts["docker_desktop_cli"])
        else:
            found = "%s is not Docker Desktop's link into %s" % (DOCKER_CLI, DOCKER_DESKTOP_SHARE)
        return [{
            "code": "docker_desktop_missing",
            "kind": "prerequisite",
            "msg": "docker_wsl_engine is desktop but Docker Desktop's docker CLI is not in this distribution (%s): start"
                   " Docker Desktop on Windows and turn this distribution on in its Settings > Resources > WSL"
                   " Integration, or set docker_wsl_engine: native to install Docker Engine here." % found,
        }]
    return []


def _distro_arg(distro):
    return distro if distro else "<distro>"


def _problems(facts, exists, systemd_line=None):
    problems = []
    distro = _distro_arg(facts["distro"])
    if facts["version"] == 1:
        problems.append({
            "code": "wsl1",
            "kind": "prerequisite",
            "msg": "This is a WSL1 distribution (kernel release %s), which has no Linux kernel for Docker or the GPU:"
                   " convert it from Windows with 'wsl --set-version %s 2' (and 'wsl --set-default-version 2' for new"
                   " ones), then run the playbook again." % (facts["kernel_release"], distro),
        })
        return problems

    if not facts["systemd"]:
        problems.append(_systemd_problem(facts, exists, distro, systemd_line))

    if facts["linux_driver_files"]:
        problems.append({
            "code": "linux_driver_inside_wsl",
            "kind": "prerequisite",
            "msg": "A Linux NVIDIA driver is installed inside this WSL distribution (%s), and it shadows the libcuda.so"
                   " that the Windows driver provides in %s: find its package with 'dpkg -S %s', remove it with 'apt-get"
                   " purge' (never install a Linux NVIDIA driver or the 'cuda'/'cuda-drivers' packages in WSL), then"
                   " run 'wsl --shutdown' from Windows."
                   % (", ".join(facts["linux_driver_files"]), WSL_LIB_DIR, facts["linux_driver_files"][0]),
        })

    if not facts["gpu_paravirtualized"]:
        if not facts["wsl_conf"]["gpu.enabled"]:
            fix = ("GPU access is switched off in /etc/wsl.conf ([gpu] enabled=false): set 'enabled=true' in its [gpu]"
                   " section, or remove the line, then run 'wsl --shutdown' from Windows and open the distribution again.")
        else:
            fix = ("install the current NVIDIA driver for the GPU on Windows (it carries WSL2 support; nothing is"
                   " installed inside the distribution), run 'wsl --update' for a current WSL kernel, then 'wsl"
                   " --shutdown', and check that 'nvidia-smi.exe' works on Windows.")
            fix = "There is no /dev/dxg in this WSL2 distribution, so no GPU is shared from Windows: " + fix
        problems.append({"code": "no_dxg", "kind": "gpu", "msg": fix})
    elif not facts["nvidia_libcuda"]:
        problems.append({
            "code": "no_wsl_nvidia_driver",
            "kind": "gpu",
            "msg": "Windows shares a GPU (/dev/dxg exists) but %s is missing, so no NVIDIA driver is installed on"
                   " Windows: install the NVIDIA Windows driver for the GPU, then run 'wsl --shutdown' from Windows."
                   % WSL_LIBCUDA,
        })
    return problems


def _systemd_problem(facts, exists, distro, systemd_line):
    conf = facts["wsl_conf"]
    stopped = [warning for warning in facts["wsl_conf_warnings"] if "everything after it" in warning]
    if not conf["boot.systemd"] and systemd_line is not None:
        # The first occurrence of a key wins, so adding systemd=true below this line would change nothing.
        msg = ("%s line %d sets systemd=%s in its [boot] section, so WSL starts this distribution without systemd,"
               " which Docker and the GPU layer need: change that line to systemd=true, then run 'wsl --shutdown'"
               " from Windows and open the distribution again." % (WSL_CONF, systemd_line[1], systemd_line[0]))
    elif conf["boot.systemd"] and not _present(exists.get(SBIN_INIT)):
        msg = ("/etc/wsl.conf asks for systemd but /sbin/init does not exist, so WSL starts without it: install"
               " systemd-sysv (it provides /sbin/init), then run 'wsl --terminate %s' from Windows." % distro)
    elif conf["boot.systemd"]:
        msg = ("/etc/wsl.conf asks for systemd but PID 1 is %s: the distribution has not restarted since the file"
               " changed; run 'wsl --shutdown' (or 'wsl --terminate %s') from Windows, wait until 'wsl --list"
               " --running' no longer lists it, and open it again." % (facts["pid1"] or "not systemd", distro))
    elif stopped:
        msg = ("systemd is not running because WSL stops reading /etc/wsl.conf at an invalid line (%s): fix or remove"
               " that line so that '[boot]' then 'systemd=true' are read, then run 'wsl --shutdown' from Windows."
               % stopped[0].split(":", 1)[0])
    else:
        msg = ("systemd is not running in this WSL2 distribution, and Docker and the GPU layer need it: add the two"
               " lines '[boot]' and 'systemd=true' to /etc/wsl.conf, then run 'wsl --shutdown' from Windows and open"
               " the distribution again.")
    return {"code": "systemd_off", "kind": "prerequisite", "msg": msg}


_SUMMARY_SPACES = re.compile(r"\s+")


def summary(facts):
    """One line for the run's summary."""
    if not facts["wsl"]:
        return "not WSL"
    parts = ["WSL%d" % facts["version"]]
    if facts["distro"]:
        parts.append("distribution %s" % facts["distro"])
    parts.append("kernel %s" % (facts["kernel_release"] or "unknown"))
    parts.append("systemd %s" % ("on" if facts["systemd"] else "off"))
    if facts["version"] == 2:
        parts.append("GPU %s" % ("shared from Windows (/dev/dxg)" if facts["gpu_paravirtualized"] else "not shared"))
        if facts["docker_desktop_integration"]:
            parts.append("Docker Desktop's WSL integration on")
    return _SUMMARY_SPACES.sub(" ", ", ".join(parts))
