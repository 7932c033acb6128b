#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: gpu_info
short_description: Report the NVIDIA GPU stack of a host and diagnose why containers cannot use it
version_added: 1.0.0
author:
  - homelab.core maintainers (@homelab-core)
description:
  - Reports, as plain return values, the NVIDIA driver (C(nvidia-smi)), the GPUs it lists, the C(/dev/nvidia*) device nodes,
    the NVIDIA Container Toolkit (C(nvidia-ctk)), the runtimes the Docker daemon has registered, and the CDI devices defined
    on the host.
  - Every problem found is returned in RV(problems) with a machine-readable code, a diagnosis and a remedy; RV(diagnosis) and
    RV(remedy) repeat the most fundamental one. The module only fails on a problem when O(required=true).
  - C(nvidia-smi) is looked up on E(PATH) and at C(/usr/lib/wsl/lib/nvidia-smi), where WSL2 provides it.
  - With O(probe_container=true) the module starts short-lived containers (C(docker run --rm)) that run C(nvidia-smi), once
    through C(--gpus all) and, when the CDI device C(nvidia.com/gpu=all) exists, once through C(--device nvidia.com/gpu=all),
    and compares the GPU UUIDs seen inside with those of the host. Docker pulls O(probe_image) if it is not present.
  - The module never changes the host; it reports C(changed=false) even when it ran a probe container.
options:
  required:
    description:
      - Fail when any problem is found. The message is the diagnosis and remedy of the most fundamental problem; all other
        return values are still returned.
      - When V(false), problems are only reported.
    type: bool
    default: false
  warn_on_problem:
    description:
      - Also emit every problem found as an Ansible warning (its diagnosis, then its remedy), so that it shows in the play
        output without registering the result.
      - Has no effect when O(required=true) and a problem is found, because the module then fails with the diagnosis.
    type: bool
    default: false
  check_toolkit:
    description:
      - Look for the NVIDIA Container Toolkit and report V(toolkit_missing) when it is absent.
      - Set to V(false) before the toolkit is installed. CDI specs are still read from O(cdi_spec_dirs).
    type: bool
    default: true
  check_docker:
    description:
      - Ask the Docker daemon for its runtimes and CDI spec directories, and report
        V(runtime_not_registered) when it cannot start GPU containers.
      - A host without the C(docker) CLI is not a problem; a daemon that does not answer is (V(docker_unreachable)).
    type: bool
    default: true
  cdi_spec_dirs:
    description:
      - Directories searched for CDI specs (C(*.yaml), C(*.yml), C(*.json)).
      - When C(nvidia-ctk) is installed, the device names come from C(nvidia-ctk cdi list) for these directories; otherwise
        they are read from the spec files (YAML specs need PyYAML on the target, JSON specs do not).
    type: list
    elements: path
    default: [/etc/cdi, /var/run/cdi]
  probe_container:
    description:
      - Start probe containers that request the GPU and check that they see the host's GPUs.
      - This runs containers, and pulls O(probe_image) when it is missing, also in check mode. Nothing is left behind
        besides the pulled image.
      - The probe only runs when the host itself has a usable GPU.
    type: bool
    default: false
  probe_image:
    description:
      - Image of the probe containers. It must contain C(nvidia-smi) on E(PATH), or get it from the NVIDIA runtime.
      - The default is NVIDIA's public CUDA base image on Docker Hub; point it at a local registry on hosts without
        internet access.
    type: str
    default: nvidia/cuda:12.4.1-base-ubuntu22.04
  probe_timeout:
    description:
      - Seconds each probe container may take, image pull included, before it is stopped (through C(timeout) from coreutils).
    type: int
    default: 120
attributes:
  check_mode:
    support: full
    description: Can run in check_mode and return changed status prediction without modifying target.
    details:
      - This action does not modify state. The probe of O(probe_container) runs in check mode too.
  diff_mode:
    support: N/A
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    details:
      - This action does not modify state.
  idempotent:
    support: full
    description: When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
    details:
      - This action does not modify state.
notes:
  - The NVIDIA problems reported here are those homelab users hit most, for example C(Failed to initialize NVML. Unknown Error)
    after C(systemctl daemon-reload), or a Docker daemon that was not restarted after the toolkit configured it.
seealso:
  - name: NVIDIA Container Toolkit
    description: Installing and configuring the toolkit, and generating CDI specs.
    link: https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/
"""

EXAMPLES = r"""
- name: Read the GPU stack of the host
  homelab.core.gpu_info:
  register: gpu

- name: Show what is wrong and how to fix it
  ansible.builtin.debug:
    msg: "{{ gpu.diagnosis }} {{ gpu.remedy }}"
  when: gpu.diagnosis is not none

- name: Look for a usable GPU, warning (not failing) when there is none
  homelab.core.gpu_info:
    check_toolkit: false
    check_docker: false
    warn_on_problem: true
  register: gpu

- name: Require a working driver before the toolkit is installed
  homelab.core.gpu_info:
    required: true
    check_toolkit: false
    check_docker: false

- name: Prove that containers see the GPU, using an image from the local registry
  homelab.core.gpu_info:
    required: true
    probe_container: true
    probe_image: 127.0.0.1:5000/nvidia/cuda:12.4.1-base-ubuntu22.04
    probe_timeout: 300
"""

RETURN = r"""
usable:
  description: Whether the driver works and lists at least one GPU.
  returned: always
  type: bool
  sample: true
gpu_count:
  description: Number of GPUs that C(nvidia-smi) lists; V(0) when there is no working driver.
  returned: always
  type: int
  sample: 1
gpus:
  description: The GPUs that C(nvidia-smi) lists. Values that C(nvidia-smi) reports as C([N/A]) or C([Not Supported]) are V(null).
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: GPU index.
      type: int
      sample: 0
    name:
      description: Product name.
      type: str
      sample: NVIDIA GeForce RTX 4090
    uuid:
      description: GPU UUID.
      type: str
      sample: GPU-5d3ec4a2-9a7f-2b61-0c3e-7f1d2a6b8e94
    memory_total_mib:
      description: Total memory in MiB.
      type: int
      sample: 24564
    memory_used_mib:
      description: Used memory in MiB.
      type: int
      sample: 612
    mig_mode:
      description: Current MIG mode, V(Enabled) or V(Disabled); V(null) for GPUs without MIG support.
      type: str
      sample: null
    compute_capability:
      description: CUDA compute capability; V(null) with drivers older than R510, which cannot report it.
      type: str
      sample: "8.9"
  sample:
    - index: 0
      name: NVIDIA GeForce RTX 4090
      uuid: GPU-5d3ec4a2-9a7f-2b61-0c3e-7f1d2a6b8e94
      memory_total_mib: 24564
      memory_used_mib: 612
      mig_mode: null
      compute_capability: "8.9"
driver:
  description: The NVIDIA driver as seen through C(nvidia-smi).
  returned: always
  type: dict
  contains:
    present:
      description: Whether C(nvidia-smi) was found.
      type: bool
    path:
      description: Path of C(nvidia-smi).
      type: str
    version:
      description: Driver version; on WSL2 the Windows driver version.
      type: str
    cuda_version:
      description: Highest CUDA version the driver supports, from the C(nvidia-smi) header.
      type: str
    wsl:
      description: Whether this is WSL2 (C(/dev/dxg) exists, or C(nvidia-smi) is the one WSL provides).
      type: bool
  sample:
    present: true
    path: /usr/bin/nvidia-smi
    version: 550.54.14
    cuda_version: "12.4"
    wsl: false
device_nodes:
  description: The C(/dev/nvidia*) nodes present. Empty on WSL2, which has C(/dev/dxg) instead.
  returned: always
  type: list
  elements: str
  sample: [/dev/nvidia-modeset, /dev/nvidia-uvm, /dev/nvidia-uvm-tools, /dev/nvidia0, /dev/nvidiactl]
toolkit:
  description: The NVIDIA Container Toolkit. All values are V(null) when O(check_toolkit=false).
  returned: always
  type: dict
  contains:
    installed:
      description: Whether C(nvidia-ctk) was found.
      type: bool
    path:
      description: Path of C(nvidia-ctk).
      type: str
    version:
      description: Version that C(nvidia-ctk --version) reports.
      type: str
  sample:
    installed: true
    path: /usr/bin/nvidia-ctk
    version: 1.17.4
docker:
  description: What the Docker daemon reports. All values are V(null) when O(check_docker=false).
  returned: always
  type: dict
  contains:
    available:
      description: Whether the daemon answered C(docker info).
      type: bool
    runtimes:
      description: Names of the runtimes the daemon has registered.
      type: list
      elements: str
    nvidia_runtime:
      description: Whether a runtime called C(nvidia) is registered.
      type: bool
    cdi_spec_dirs:
      description:
        - CDI spec directories of the daemon; V([]) when CDI is disabled in it, V(null) when the daemon or CLI predates CDI
          (Docker before 25) or the daemon did not answer.
      type: list
      elements: str
  sample:
    available: true
    runtimes: [io.containerd.runc.v2, nvidia, runc]
    nvidia_runtime: true
    cdi_spec_dirs: [/etc/cdi, /var/run/cdi]
cdi:
  description: CDI specs on the host.
  returned: always
  type: dict
  contains:
    spec_files:
      description: Spec files found in O(cdi_spec_dirs).
      type: list
      elements: str
    devices:
      description: Fully-qualified device names the specs offer.
      type: list
      elements: str
  sample:
    spec_files: [/etc/cdi/nvidia.yaml]
    devices: [nvidia.com/gpu=0, nvidia.com/gpu=GPU-5d3ec4a2-9a7f-2b61-0c3e-7f1d2a6b8e94, nvidia.com/gpu=all]
probe:
  description:
    - Result of the probe containers, one entry per way of requesting the GPU; V(null) unless O(probe_container=true).
    - C(runtime) is C(docker run --gpus all), C(cdi) is C(docker run --device nvidia.com/gpu=all).
  returned: always
  type: dict
  contains:
    runtime:
      description: The C(--gpus all) probe.
      type: dict
      contains:
        ran:
          description: Whether the container command was run.
          type: bool
        rc:
          description: Exit code of C(docker run); V(null) when it did not run.
          type: int
        uuids:
          description: GPU UUIDs that C(nvidia-smi) listed inside the container.
          type: list
          elements: str
        matches_host:
          description: Whether the container saw exactly the host's GPUs.
          type: bool
        error:
          description: Why it did not match, with the tail of the container output; V(null) on success.
          type: str
    cdi:
      description: The C(--device nvidia.com/gpu=all) probe; same keys as RV(probe.runtime).
      type: dict
  sample:
    runtime:
      ran: true
      rc: 0
      uuids: [GPU-5d3ec4a2-9a7f-2b61-0c3e-7f1d2a6b8e94]
      matches_host: true
      error: null
    cdi:
      ran: false
      rc: null
      uuids: []
      matches_host: false
      error: no CDI device nvidia.com/gpu=all is defined
problems:
  description:
    - Every problem found, most fundamental first.
    - Codes are V(no_driver), V(driver_unreachable), V(no_devices), V(nvml_unknown_error), V(driver_library_mismatch),
      V(nvidia_smi_error), V(toolkit_missing), V(docker_unreachable), V(runtime_not_registered) and V(probe_no_gpu).
  returned: always
  type: list
  elements: dict
  contains:
    code:
      description: Machine-readable problem code.
      type: str
    diagnosis:
      description: The code, a colon, then what is wrong, with the tool output that shows it.
      type: str
    remedy:
      description: What to do about it.
      type: str
  sample:
    - code: toolkit_missing
      diagnosis: "toolkit_missing: A GPU is present but the NVIDIA Container Toolkit (nvidia-ctk) is not installed, so
        containers cannot use it."
      remedy: "Install the nvidia-container-toolkit package from NVIDIA's repository, run 'nvidia-ctk runtime configure
        --runtime=docker' and restart Docker."
diagnosis:
  description: Diagnosis of the first entry of RV(problems) (it starts with its code); V(null) when there is no problem.
  returned: always
  type: str
  sample: "no_driver: nvidia-smi was found neither on PATH nor at /usr/lib/wsl/lib/nvidia-smi: no NVIDIA driver is installed
    (or the host has no NVIDIA GPU)."
remedy:
  description: Remedy of the first entry of RV(problems); V(null) when there is no problem.
  returned: always
  type: str
  sample: "Reboot the host, or unload and reload the kernel modules ('rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia;
    modprobe nvidia') once no process uses the GPU."
"""

import glob
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.core.plugins.module_utils._gpu import (
    LEGACY_QUERY_FIELDS,
    PROBLEMS,
    QUERY_FIELDS,
    classify_nvidia_smi,
    docker_run_remedy,
    is_invalid_field_error,
    last_block,
    make_problem,
    output_tail,
    parse_cdi_list,
    parse_cdi_spec,
    parse_ctk_version,
    parse_cuda_version,
    parse_json_output,
    parse_probe_uuids,
    parse_query_gpu,
)

# Where device nodes are looked for; unit tests point it at a temporary directory.
DEV_DIR = "/dev"
WSL_LIB_DIR = "/usr/lib/wsl/lib"
CDI_SPEC_PATTERNS = ("*.yaml", "*.yml", "*.json")
CDI_ALL_GPUS = "nvidia.com/gpu=all"
# The two ways of asking Docker for every GPU that the probe tries.
PROBE_REQUESTS = (("runtime", ("--gpus", "all")), ("cdi", ("--device", CDI_ALL_GPUS)))
PROBE_COMMAND = ("nvidia-smi", "--query-gpu=uuid", "--format=csv,noheader")
TIMEOUT_RC = 124


class GpuInfo(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.problems = []

    def _run(self, args):
        return self.module.run_command(args)

    def _problem(self, code, detail=None, remedy=None):
        self.problems.append(make_problem(code, detail, remedy))

    def driver(self):
        """Return ``(driver facts, gpus)``; a driver problem, if any, is recorded."""
        path = self.module.get_bin_path("nvidia-smi", opt_dirs=[WSL_LIB_DIR])
        wsl = os.path.exists(os.path.join(DEV_DIR, "dxg")) or (path or "").startswith(WSL_LIB_DIR + "/")
        facts = {"present": path is not None, "path": path, "version": None, "cuda_version": None, "wsl": wsl}
        if path is None:
            self._problem("no_driver")
            return facts, []
        fields = QUERY_FIELDS
        rc, out, err = self._query(path, fields)
        if rc != 0 and is_invalid_field_error(out + err, "compute_cap"):
            fields = LEGACY_QUERY_FIELDS
            rc, out, err = self._query(path, fields)
        code = classify_nvidia_smi(rc, out, err)
        if code is not None:
            self._problem(code, "(nvidia-smi exited %d: %s)" % (rc, output_tail(out, err)))
            return facts, []
        try:
            gpus, facts["version"] = parse_query_gpu(out, fields)
        except ValueError as exc:
            self._problem("nvidia_smi_error", "(%s)" % exc)
            return facts, []
        if not gpus:
            self._problem("no_devices", "(nvidia-smi listed nothing)")
            return facts, []
        facts["cuda_version"] = parse_cuda_version(self._run([path])[1])
        return facts, gpus

    def _query(self, path, fields):
        return self._run([path, "--query-gpu=" + ",".join(fields), "--format=csv,noheader,nounits"])

    def toolkit(self):
        path = self.module.get_bin_path("nvidia-ctk")
        version = parse_ctk_version(self._run([path, "--version"])[1]) if path else None
        return {"installed": path is not None, "path": path, "version": version}

    def cdi(self, ctk_path):
        dirs = self.params["cdi_spec_dirs"]
        files = sorted(
            name
            for directory in dirs
            for pattern in CDI_SPEC_PATTERNS
            for name in glob.glob(os.path.join(directory, pattern))
            if os.path.isfile(name)
        )
        devices = None
        if ctk_path:
            args = [ctk_path, "cdi", "list"]
            for directory in dirs:
                args.extend(["--spec-dir", directory])
            rc, out, dummy = self._run(args)
            devices = parse_cdi_list(out) if rc == 0 else None
        if devices is None:
            devices = []
            for name in files:
                try:
                    with open(name, encoding="utf-8") as spec:
                        devices.extend(parse_cdi_spec(spec.read(), name.endswith(".json")) or [])
                except (OSError, UnicodeDecodeError):
                    continue
        return {"spec_files": files, "devices": devices}

    def docker(self):
        facts = {"available": False, "runtimes": [], "nvidia_runtime": False, "cdi_spec_dirs": None}
        path = self.module.get_bin_path("docker")
        if path is None:
            return facts
        rc, out, err = self._run([path, "info", "--format", "{{json .Runtimes}}"])
        runtimes = parse_json_output(out) if rc == 0 else None
        if not isinstance(runtimes, dict):
            self._problem("docker_unreachable", "(%s)" % output_tail(err, out))
            return facts
        rc, out, dummy = self._run([path, "info", "--format", "{{json .CDISpecDirs}}"])
        facts.update(
            available=True,
            runtimes=sorted(runtimes),
            nvidia_runtime="nvidia" in runtimes,
            cdi_spec_dirs=parse_json_output(out) if rc == 0 else None,
        )
        return facts

    def probe(self, host_uuids, cdi_devices):
        docker = self.module.get_bin_path("docker")
        if docker is None:
            self._problem("probe_no_gpu", "(The docker CLI is not installed.)")
            return _probe_skipped("the docker CLI is not installed")
        timeout = self.module.get_bin_path("timeout")
        result = {}
        for name, request in PROBE_REQUESTS:
            if name == "cdi" and CDI_ALL_GPUS not in cdi_devices:
                result[name] = _not_run("no CDI device %s is defined" % CDI_ALL_GPUS)
            else:
                result[name] = self._probe_one(name, docker, timeout, request, host_uuids)
        return result

    def _probe_one(self, name, docker, timeout, request, host_uuids):
        command = [docker, "run", "--rm"] + list(request) + [self.params["probe_image"]] + list(PROBE_COMMAND)
        limit = [timeout, "--kill-after=10", str(self.params["probe_timeout"])] if timeout else []
        rc, out, err = self._run(limit + command)
        uuids = parse_probe_uuids(out)
        outcome = {"ran": True, "rc": rc, "uuids": uuids, "matches_host": False, "error": None}
        if rc == 0 and sorted(uuids) == sorted(host_uuids):
            outcome["matches_host"] = True
            return outcome
        if limit and rc == TIMEOUT_RC:
            outcome["error"] = "did not finish within %d seconds" % self.params["probe_timeout"]
        elif rc != 0:
            # nvidia-smi prints its errors on stdout, after the banner of the CUDA images.
            outcome["error"] = "exited %d: %s" % (rc, output_tail(err) or output_tail(last_block(out)))
        else:
            outcome["error"] = "saw %s, the host has %s" % (", ".join(uuids) or "no GPU", ", ".join(host_uuids))
        cause = classify_nvidia_smi(rc, out, err)
        remedy = docker_run_remedy(out + err)
        if remedy is None and cause not in (None, "nvidia_smi_error"):
            remedy = PROBLEMS[cause][1]
        self._problem("probe_no_gpu", "(%s path: '%s' %s)" % (name, " ".join(command), outcome["error"]), remedy)
        return outcome

    def gather(self):
        driver, gpus = self.driver()
        usable = not self.problems
        toolkit = dict.fromkeys(("installed", "path", "version"))
        if self.params["check_toolkit"]:
            toolkit = self.toolkit()
            if usable and not toolkit["installed"]:
                self._problem("toolkit_missing")
        cdi = self.cdi(toolkit["path"])
        docker = dict.fromkeys(("available", "runtimes", "nvidia_runtime", "cdi_spec_dirs"))
        if self.params["check_docker"]:
            docker = self.docker()
            cdi_usable = bool(cdi["devices"]) and bool(docker["cdi_spec_dirs"])
            if usable and docker["available"] and not docker["nvidia_runtime"] and not cdi_usable:
                self._problem("runtime_not_registered", "(Registered runtimes: %s.)" % ", ".join(docker["runtimes"]))
        probe = None
        if self.params["probe_container"]:
            if usable:
                probe = self.probe([gpu["uuid"] for gpu in gpus], cdi["devices"])
            else:
                probe = _probe_skipped("the host has no usable GPU")
        first = self.problems[0] if self.problems else {}
        return {
            "changed": False,
            "usable": usable,
            "gpu_count": len(gpus),
            "gpus": gpus,
            "driver": driver,
            "device_nodes": sorted(glob.glob(os.path.join(DEV_DIR, "nvidia*"))),
            "toolkit": toolkit,
            "docker": docker,
            "cdi": cdi,
            "probe": probe,
            "problems": self.problems,
            "diagnosis": first.get("diagnosis"),
            "remedy": first.get("remedy"),
        }


def _not_run(reason):
    return {"ran": False, "rc": None, "uuids": [], "matches_host": False, "error": reason}


def _probe_skipped(reason):
    return dict((name, _not_run(reason)) for name, dummy in PROBE_REQUESTS)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            required=dict(type="bool", default=False),
            warn_on_problem=dict(type="bool", default=False),
            check_toolkit=dict(type="bool", default=True),
            check_docker=dict(type="bool", default=True),
            cdi_spec_dirs=dict(type="list", elements="path", default=["/etc/cdi", "/var/run/cdi"]),
            probe_container=dict(type="bool", default=False),
            probe_image=dict(type="str", default="nvidia/cuda:12.4.1-base-ubuntu22.04"),
            probe_timeout=dict(type="int", default=120),
        ),
        supports_check_mode=True,
    )
    if module.params["probe_timeout"] < 1:
        module.fail_json(msg="probe_timeout must be at least 1 second, got %d." % module.params["probe_timeout"])
    result = GpuInfo(module).gather()
    if module.params["required"] and result["problems"]:
        module.fail_json(msg="%s %s" % (result["diagnosis"], result["remedy"]), **result)
    if module.params["warn_on_problem"]:
        for problem in result["problems"]:
            module.warn("%s %s" % (problem["diagnosis"], problem["remedy"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
