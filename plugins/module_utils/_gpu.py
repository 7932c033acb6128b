# -*- coding: utf-8 -*-
# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure helpers for the gpu_info module: parsers of NVIDIA and Docker CLI output and the problem catalogue.

Nothing here runs a command or touches the file system; every function takes the text a tool printed.
"""

from __future__ import annotations

import json
import re

try:
    import yaml

    HAS_YAML = True
    _SPEC_ERRORS = (ValueError, yaml.YAMLError)
except ImportError:  # pragma: no cover - depends on the target host
    HAS_YAML = False
    _SPEC_ERRORS = (ValueError,)

# Fields asked of ``nvidia-smi --query-gpu``; drivers older than R510 do not know ``compute_cap``.
QUERY_FIELDS = (
    "index",
    "name",
    "uuid",
    "memory.total",
    "memory.used",
    "mig.mode.current",
    "compute_cap",
    "driver_version",
)
LEGACY_QUERY_FIELDS = tuple(field for field in QUERY_FIELDS if field != "compute_cap")

# What nvidia-smi prints instead of a value it cannot read.
_UNAVAILABLE = ("[N/A]", "[Not Supported]", "[Unknown Error]", "[Insufficient Permissions]")

_CUDA_HEADER_RE = re.compile(r"CUDA Version:\s*([0-9]+(?:\.[0-9]+)*)")
_CTK_VERSION_RE = re.compile(r"\bversion\s+v?([0-9][^\s]*)")
_CDI_DEVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*=[^\s=]+$")
_GPU_UUID_RE = re.compile(r"^GPU-[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")

# Problem codes, each with the sentence that says what is wrong and the sentence that says what to do.
PROBLEMS = {
    "no_driver": (
        "nvidia-smi was found neither on PATH nor at /usr/lib/wsl/lib/nvidia-smi: no NVIDIA driver is installed"
        " (or the host has no NVIDIA GPU).",
        "Install the NVIDIA driver for this GPU (Debian: the nvidia-driver package from non-free), reboot, and check"
        " that nvidia-smi lists the GPU; on WSL2 install the NVIDIA driver on Windows, not inside the distribution.",
    ),
    "driver_unreachable": (
        "nvidia-smi could not communicate with the NVIDIA kernel driver: the nvidia kernel module is not loaded"
        " (not built for the running kernel, refused by Secure Boot, or nouveau holds the GPU).",
        "Check 'lsmod | grep nvidia' and 'dmesg | grep -i nvrm'; rebuild the module for the running kernel (DKMS),"
        " enrol its signing key or disable Secure Boot, blacklist nouveau, then reboot.",
    ),
    "no_devices": (
        "The NVIDIA driver is loaded but reports no GPU.",
        "Check that the GPU is seated, powered and visible ('lspci | grep -i nvidia'), that it is passed through to"
        " this VM, and that the installed driver branch supports it.",
    ),
    "nvml_unknown_error": (
        "NVML failed with 'Unknown Error': the process lost access to the /dev/nvidia* device nodes, typically a"
        " container after 'systemctl daemon-reload' rewrote its cgroup device rules.",
        "Add a udev rule that runs 'nvidia-ctk system create-dev-char-symlinks --create-all' (or switch Docker to the"
        " cgroupfs cgroup driver: exec-opts native.cgroupdriver=cgroupfs in /etc/docker/daemon.json), then restart"
        " the affected containers.",
    ),
    "driver_library_mismatch": (
        "The NVIDIA user-space libraries (NVML) and the loaded kernel module have different versions, usually after"
        " a driver upgrade without a reboot.",
        "Reboot the host, or unload and reload the kernel modules ('rmmod nvidia_uvm nvidia_drm nvidia_modeset"
        " nvidia; modprobe nvidia') once no process uses the GPU.",
    ),
    "nvidia_smi_error": (
        "nvidia-smi failed with an error this module does not recognise.",
        "Run nvidia-smi on the host, resolve the error it prints, and look for NVRM messages in 'dmesg'.",
    ),
    "toolkit_missing": (
        "A GPU is present but the NVIDIA Container Toolkit (nvidia-ctk) is not installed, so containers cannot use it.",
        "Install the nvidia-container-toolkit package from NVIDIA's repository, run 'nvidia-ctk runtime configure"
        " --runtime=docker' and restart Docker.",
    ),
    "docker_unreachable": (
        "The docker CLI is installed but 'docker info' failed, so the daemon's GPU setup cannot be read.",
        "Start the Docker daemon ('systemctl start docker') and make sure this user may use its socket.",
    ),
    "runtime_not_registered": (
        "The Docker daemon has no 'nvidia' runtime registered and no CDI device it can use, so GPU containers cannot"
        " start.",
        "Run 'nvidia-ctk runtime configure --runtime=docker' (it merges the runtime into /etc/docker/daemon.json) and"
        " restart Docker, or generate a CDI spec with 'nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml' for a"
        " Docker with CDI enabled.",
    ),
    "probe_no_gpu": (
        "The probe container did not see the host's GPUs.",
        "Run the probe command by hand and fix what it prints: the toolkit must be installed, Docker restarted after"
        " 'nvidia-ctk runtime configure', and the probe image must contain nvidia-smi.",
    ),
}

# nvidia-smi messages, most specific first, and the problem each one means.
_NVIDIA_SMI_MESSAGES = (
    ("Driver/library version mismatch", "driver_library_mismatch"),
    ("Failed to initialize NVML: Unknown Error", "nvml_unknown_error"),
    ("couldn't communicate with the NVIDIA driver", "driver_unreachable"),
    ("No devices were found", "no_devices"),
)
# nvidia-smi exit codes (see nvidia-smi(1), and NVML_ERROR_LIB_RM_VERSION_MISMATCH for 18) used when the text is unknown.
_NVIDIA_SMI_EXIT_CODES = {6: "no_devices", 9: "driver_unreachable", 18: "driver_library_mismatch"}

# Docker daemon errors from 'docker run' that point at a specific fix.
_DOCKER_RUN_REMEDIES = (
    (
        'could not select device driver "cdi"',
        "CDI is disabled in this Docker daemon: set features.cdi to true in /etc/docker/daemon.json (Docker 25-27)"
        " and restart Docker.",
    ),
    (
        "could not select device driver",
        "Docker has no GPU device driver: install the NVIDIA Container Toolkit, run 'nvidia-ctk runtime configure"
        " --runtime=docker', then restart Docker (a daemon started before the toolkit was installed does not see it).",
    ),
    (
        "unresolvable CDI devices",
        "No CDI spec offers the requested device: run 'nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml'"
        " (again after every driver upgrade).",
    ),
)


def _value(text):
    """One CSV cell of nvidia-smi output, or None where nvidia-smi could not read the value."""
    text = text.strip()
    return None if text in _UNAVAILABLE or text == "" else text


def _int(text):
    return None if text is None else int(text)


def parse_query_gpu(text, fields=QUERY_FIELDS):
    """Parse ``nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits`` into ``(gpus, driver_version)``.

    Each GPU is a dict ``index, name, uuid, memory_total_mib, memory_used_mib, mig_mode, compute_capability``;
    ``compute_capability`` is None when the driver could not be asked for it (``fields`` without ``compute_cap``).
    """
    gpus = []
    driver_version = None
    for line in text.splitlines():
        if not line.strip():
            continue
        cells = [_value(cell) for cell in line.split(",")]
        if len(cells) != len(fields):
            raise ValueError("expected %d fields in nvidia-smi output line %r" % (len(fields), line))
        row = dict(zip(fields, cells))
        driver_version = driver_version or row["driver_version"]
        gpus.append(
            {
                "index": _int(row["index"]),
                "name": row["name"],
                "uuid": row["uuid"],
                "memory_total_mib": _int(row["memory.total"]),
                "memory_used_mib": _int(row["memory.used"]),
                "mig_mode": row["mig.mode.current"],
                "compute_capability": row.get("compute_cap"),
            }
        )
    return gpus, driver_version


def is_invalid_field_error(output, field):
    """Whether nvidia-smi refused ``field`` as unknown (drivers older than the field)."""
    return ('Field "%s" is not a valid field to query' % field) in output


def parse_cuda_version(header):
    """The CUDA version from the header of plain ``nvidia-smi`` output (``CUDA Version: 12.4``), or None."""
    match = _CUDA_HEADER_RE.search(header)
    return match.group(1) if match else None


def classify_nvidia_smi(rc, stdout, stderr):
    """Map an nvidia-smi run to a problem code, or None when it succeeded.

    nvidia-smi prints its errors on stdout, so both streams are searched. Known messages win over the exit code;
    an unknown failure is ``nvidia_smi_error``.
    """
    output = "%s\n%s" % (stdout, stderr)
    for message, code in _NVIDIA_SMI_MESSAGES:
        if message in output:
            return code
    if rc == 0:
        return None
    return _NVIDIA_SMI_EXIT_CODES.get(rc, "nvidia_smi_error")


def parse_ctk_version(text):
    """The version from ``nvidia-ctk --version`` (``NVIDIA Container Toolkit CLI version 1.17.4``), or None."""
    match = _CTK_VERSION_RE.search(text)
    return match.group(1) if match else None


def parse_json_output(text):
    """The JSON value a ``docker ... --format '{{json ...}}'`` printed, or None when it printed ``null`` or no JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return None


def parse_cdi_list(text):
    """Fully-qualified CDI device names (``vendor/class=name``) from ``nvidia-ctk cdi list`` stdout."""
    return [line.strip() for line in text.splitlines() if _CDI_DEVICE_RE.match(line.strip())]


def parse_cdi_spec(text, is_json):
    """Fully-qualified device names a CDI spec offers: its top-level ``kind`` joined with each ``devices[].name``.

    YAML specs need PyYAML; without it only JSON specs are read. Returns None for a spec that cannot be parsed.
    """
    try:
        if is_json:
            spec = json.loads(text)
        elif HAS_YAML:
            spec = yaml.safe_load(text)
        else:
            return None
    except _SPEC_ERRORS:
        return None
    if not isinstance(spec, dict) or not spec.get("kind"):
        return None
    return ["%s=%s" % (spec["kind"], device["name"]) for device in spec.get("devices") or [] if device.get("name")]


def parse_probe_uuids(text):
    """GPU UUIDs printed by ``nvidia-smi --query-gpu=uuid --format=csv,noheader`` inside a container.

    The CUDA images' entrypoint prints a banner first, so only lines that are a GPU UUID count.
    """
    return [line.strip() for line in text.splitlines() if _GPU_UUID_RE.match(line.strip())]


def output_tail(*texts, lines=5):
    """The last ``lines`` non-empty lines of the given outputs, joined on one line."""
    kept = [line.strip() for text in texts for line in (text or "").splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def last_block(text):
    """The last paragraph of ``text`` (lines after its last blank line), e.g. a command's output after a banner."""
    blocks = [block for block in re.split(r"\n\s*\n", text) if block.strip()]
    return blocks[-1] if blocks else ""


def docker_run_remedy(output):
    """A specific remedy for a known 'docker run' daemon error in ``output``, or None."""
    for message, remedy in _DOCKER_RUN_REMEDIES:
        if message in output:
            return remedy
    return None


def make_problem(code, detail=None, remedy=None):
    """A ``{code, diagnosis, remedy}`` entry; the diagnosis starts with the code, then says what is wrong."""
    sentence, default_remedy = PROBLEMS[code]
    diagnosis = "%s: %s" % (code, sentence)
    if detail:
        diagnosis = "%s %s" % (diagnosis, detail)
    return {"code": code, "diagnosis": diagnosis, "remedy": remedy or default_remedy}
