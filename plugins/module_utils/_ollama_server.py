# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The main stack's Ollama as a server: how many run (one per GPU or one for all), and its memory settings.

Pure functions, no I/O. The GPU *decision* is what the GPU layer recorded (``mode``, ``reservation``,
``gpu_count``, and where it records them ``gpu_indices`` and ``wsl``), in this run or on the host
(``homelab_gpu_fact_path``).

- ``homelab_ollama_gpu_layout: per_gpu`` runs one Ollama per GPU index of the decision
  (``split_devices``); the engine splits the catalogue entry (``_catalogue.split_per_gpu``).
  ``shared``, or a host where per_gpu cannot apply, runs the one Ollama that sees every GPU.
- ``instances`` says where a client on the host reaches each of them (the ollama role's pulls,
  the inference gate), by the one port rule (``_catalogue.instance_port``).
- ``settings`` checks the ``main_stack_ollama_*`` memory settings and gives the environment of
  the Ollama service: only the variables that are set, so that the others keep Ollama's defaults.

Ollama's parsing is that of v0.32.15 (envconfig/config.go); see docs/upstream-evidence.md.
"""

from __future__ import annotations

import re

from ansible_collections.homelab.core.plugins.module_utils._catalogue import instance_name, instance_port
from ansible_collections.homelab.core.plugins.module_utils._endpoints import url_host

LAYOUTS = ("shared", "per_gpu")
LAYOUT_VARIABLE = "homelab_ollama_gpu_layout"
SERVICE = "ollama"
# Ollama's own port inside its container (the image's OLLAMA_HOST=0.0.0.0:11434).
CONTAINER_PORT = 11434
# What an ollama_models entry's `instances` may name: gpu0, gpu1, ... (no leading zeros, as the services are named).
INSTANCE = re.compile(r"^gpu(0|[1-9][0-9]*)$")

# --- How many Ollamas ---------------------------------------------------------------------


def decision_indices(decision):
    """The GPU indices of the decision: its ``gpu_indices`` where recorded, else 0 .. gpu_count - 1.

    nvidia-smi numbers the GPUs it lists from 0, and those numbers are what the nvidia runtime's
    device_ids and the CDI spec's ``nvidia.com/gpu=<index>`` devices name.
    """
    decision = decision if isinstance(decision, dict) else {}
    recorded = decision.get("gpu_indices")
    if isinstance(recorded, (list, tuple)):
        indices = []
        for item in recorded:
            text = str(item).strip()
            if text.isdigit() and str(int(text)) not in indices:
                indices.append(str(int(text)))
        return indices
    try:
        count = int(decision.get("gpu_count") or 0)
    except (TypeError, ValueError):
        count = 0
    return [str(index) for index in range(max(count, 0))]


def _truthy(value):
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def split_devices(layout, decision, gpu_off=False, fleet=False):
    """(devices, reason): the GPU indices to run one Ollama each on, and why one Ollama serves them all instead.

    ``devices`` is empty unless the layout is per_gpu and the host can run it; ``reason`` is then empty too, and
    it is '' for the shared layout. A reason completes "homelab_ollama_gpu_layout is per_gpu, but ...".
    """
    if layout != "per_gpu":
        return [], ""
    if _truthy(fleet):
        return [], "this inventory is a fleet, where the control hosts could not know each GPU node's instances"
    if _truthy(gpu_off):
        return [], "homelab_gpu_mode is off (or this host is not in gpu_nodes), so Ollama gets no GPU"
    decision = decision if isinstance(decision, dict) else {}
    reservation = str(decision.get("reservation") or "none")
    if reservation not in ("nvidia", "cdi"):
        return [], "the GPU layer reserved no GPU for containers on this host (reservation %s)" % reservation
    if _truthy(decision.get("wsl")):
        # nvidia-ctk's WSL mode writes a CDI spec with the one device `all` (pkg/nvcdi/lib-wsl.go), and every GPU
        # reaches a WSL container through /dev/dxg: no device can be given to one container alone.
        return [], "this is WSL2, where every GPU reaches a container through /dev/dxg and none can be reserved alone"
    indices = decision_indices(decision)
    cdi_devices = decision.get("cdi_devices")
    if reservation == "cdi" and isinstance(cdi_devices, (list, tuple)):
        missing = ["nvidia.com/gpu=%s" % index for index in indices if "nvidia.com/gpu=%s" % index not in cdi_devices]
        if missing:
            return [], "the CDI spec offers no %s to reserve one GPU alone" % ", ".join(missing)
    if len(indices) < 2:
        return [], "this host has %d GPU%s" % (len(indices), "" if len(indices) == 1 else "s")
    return indices, ""


def layout_view(decision, layout="shared", gpu_off=False, fleet=None, container_port=CONTAINER_PORT, url="",
                models_path="", ports=None, data_root=""):
    """The Ollamas of this host: ``layout`` (the one applied), ``devices``, ``reason`` (see split_devices), ``urls``
    (as the stack's containers reach them) and ``instances`` (as a client on the host reaches them).

    ``fleet`` is homelab_fleet (its ``fleet``, ``ollama_urls`` and ``ollama`` endpoint). ``url`` and ``models_path``
    are the shared Ollama's (ollama_models_url, ollama_models_path; '' skips the free-space check), ``ports`` the
    inventory's port overrides (main_stack_ports) and ``data_root`` homelab_data_root.
    """
    fleet = fleet if isinstance(fleet, dict) else {}
    devices, reason = split_devices(layout, decision, gpu_off, fleet.get("fleet", False))
    if not devices:
        instances = [{"name": SERVICE, "service": SERVICE, "device": None, "url": url, "models_path": models_path}]
        return {"layout": "shared", "devices": [], "reason": reason, "urls": list(fleet.get("ollama_urls") or []),
                "instances": instances}
    endpoint = fleet.get("ollama") or {}
    address, base = endpoint.get("address") or "127.0.0.1", endpoint.get("port")
    instances = []
    for device in devices:
        service = instance_name(SERVICE, device)
        port = instance_port(SERVICE, base, device, ports)
        path = "%s/%s/gpu%s/models" % (str(data_root).rstrip("/"), SERVICE, device) if models_path else ""
        instances.append({"name": "gpu%s" % device, "service": service, "device": device,
                          "url": "http://%s:%s" % (url_host(address), port), "models_path": path})
    return {"layout": "per_gpu", "devices": devices, "reason": "",
            "urls": ["http://%s:%s" % (item["service"], container_port) for item in instances], "instances": instances}


# --- Memory settings -----------------------------------------------------------------------

# Variable -> (environment variable, kind). Ollama reads each once at start (envconfig/config.go at v0.32.15).
SETTINGS = (
    ("main_stack_ollama_keep_alive", "OLLAMA_KEEP_ALIVE", "duration"),
    ("main_stack_ollama_max_loaded_models", "OLLAMA_MAX_LOADED_MODELS", "count"),
    ("main_stack_ollama_num_parallel", "OLLAMA_NUM_PARALLEL", "count"),
    ("main_stack_ollama_flash_attention", "OLLAMA_FLASH_ATTENTION", "bool"),
    ("main_stack_ollama_sched_spread", "OLLAMA_SCHED_SPREAD", "bool"),
)
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
# Go's time units (time.ParseDuration): ns, us (or µs), ms, s, m, h, in nanoseconds.
_GO_UNITS = {"ns": 1, "us": 10 ** 3, "\u00b5s": 10 ** 3, "\u03bcs": 10 ** 3, "ms": 10 ** 6, "s": 10 ** 9,
             "m": 60 * 10 ** 9, "h": 3600 * 10 ** 9}
_GO_NUMBER = re.compile(r"([0-9]*)(\.([0-9]*))?")
_INT64_MAX = 2 ** 63 - 1
_UINT64_MAX = 2 ** 64 - 1


def go_duration(text):
    """The nanoseconds of a Go duration string (``5m``, ``1h30m``, ``-1s``, ``0``), or None where Go's
    time.ParseDuration refuses it: a possibly signed sequence of decimal numbers, each with an optional fraction and
    a unit, the lone ``0`` needing none; more than about 292 years overflows."""
    if not isinstance(text, str):
        return None
    rest, negative = text, False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0
    if not rest:
        return None
    total = 0
    while rest:
        number = _GO_NUMBER.match(rest)
        whole, fraction = number.group(1), number.group(3) or ""
        if not whole and not fraction:
            return None
        rest = rest[number.end():]
        unit = re.match(r"[^0-9.]*", rest).group(0)
        if unit not in _GO_UNITS:
            return None
        rest = rest[len(unit):]
        scale = _GO_UNITS[unit]
        total += int(whole or "0") * scale + (int(fraction) * scale // 10 ** len(fraction) if fraction else 0)
        if total > _INT64_MAX + (1 if negative else 0):
            return None
    return -total if negative else total


def keep_alive_seconds(value):
    """What Ollama makes of OLLAMA_KEEP_ALIVE, in seconds (None: it cannot parse it and keeps 5m silently).

    envconfig.KeepAlive: a Go duration, else whole seconds (strconv.ParseInt, base 10); below zero means for ever.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -_INT64_MAX - 1 <= value <= _INT64_MAX else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    nanoseconds = go_duration(text)
    if nanoseconds is not None:
        return nanoseconds / 10.0 ** 9
    if re.match(r"^[-+]?[0-9]+$", text) and -_INT64_MAX - 1 <= int(text) <= _INT64_MAX:
        return int(text)
    return None


def _unset(value):
    return value is None or (isinstance(value, str) and not value.strip())


def _setting(variable, kind, value):
    """(the environment value, None) or (None, the problem's sentence)."""
    if kind == "duration":
        if keep_alive_seconds(value) is None:
            return None, (
                "%s (%r) is not a duration Ollama reads, and Ollama would silently keep its 5 minutes; give one such as "
                "5m, 1h30m or 300 (seconds), 0 to unload a model at once, or -1 to keep it loaded." % (variable, value))
        return str(value).strip(), None
    if kind == "count":
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _UINT64_MAX:
            return str(value), None
        if isinstance(value, str) and value.strip().isdigit() and int(value.strip()) <= _UINT64_MAX:
            return str(int(value.strip())), None
        return None, ("%s (%r) must be a whole number of 0 or more (Ollama ignores anything else and keeps its "
                      "default); leave it unset for Ollama's default." % (variable, value))
    if isinstance(value, bool):
        return ("true" if value else "false"), None
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return ("true" if value.strip().lower() in _TRUE else "false"), None
    return None, ("%s (%r) must be true or false (Ollama reads any other word as true); leave it unset for Ollama's "
                  "default." % (variable, value))


def settings(values, layout="shared", fleet=False):
    """{env, problems}: the Ollama service's environment from the ``main_stack_ollama_*`` values that are set
    (``values``: variable -> value; null or '' is unset), and one sentence per problem with them or with the layout
    (``layout``: homelab_ollama_gpu_layout; ``fleet``: whether the inventory is a fleet)."""
    values = values if isinstance(values, dict) else {}
    env, problems = {}, []
    for variable, name, kind in SETTINGS:
        value = values.get(variable)
        if _unset(value):
            continue
        rendered, problem = _setting(variable, kind, value)
        if problem:
            problems.append(problem)
        else:
            env[name] = rendered
    if layout not in LAYOUTS:
        problems.append("%s is %r; choose shared (one Ollama sees every GPU) or per_gpu (one Ollama per GPU)."
                        % (LAYOUT_VARIABLE, layout))
    elif layout == "per_gpu":
        if _truthy(fleet):
            problems.append(
                "%s is per_gpu, which a fleet does not support: the control hosts reach each GPU node's one Ollama and "
                "cannot know how many GPUs a node has; keep shared in a fleet." % LAYOUT_VARIABLE)
        if env.get("OLLAMA_SCHED_SPREAD") == "true":
            problems.append(
                "main_stack_ollama_sched_spread spreads a model over the GPUs one Ollama sees, but %s per_gpu gives "
                "each Ollama one GPU; leave it unset, or set %s to shared." % (LAYOUT_VARIABLE, LAYOUT_VARIABLE))
    return {"env": env, "problems": problems}
