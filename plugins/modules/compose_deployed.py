#!/usr/bin/python
#
# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: compose_deployed

short_description: Tell whether a compose project still runs exactly as its last deploy left it

version_added: 1.0.0

author:
  - homelab.core maintainers (@homelab-core)

description:
  - After a deploy, O(record=true) writes a record of the project to O(state_file) - compose's version, a digest of
    the stack's input files, and for each container its compose config hash, image, state and health.
  - Without O(record), compares the host with that record and returns RV(converged) - true only when a
    C(docker compose up) could not change anything. It is false, with a reason each, when there is no record, any
    input file or compose's version differs from the record, a container is missing, extra, recreated with another
    config hash or image, or not in its recorded state and health, or when an image reference now names another
    image than the one its container runs (a moved tag, or a missing image that compose would pull).
  - Reads the stack's state with four or five docker CLI calls in one module run, so a no-op re-run can skip
    C(docker compose up) and its wait, which cost several times as much.
  - In the same call, what the engine needs to know before it plans the stack, so that a re-run asks the host once
    per stack - the files of O(read) (the persisted secrets; never following a link a container may have planted),
    the images built on the host under O(image_namespace), and which of O(container_names) another project's
    container holds.

requirements:
  - The docker CLI with the compose v2 plugin on the managed host.

notes:
  - With O(read), the result holds the content of secrets files; register it with C(no_log).

attributes:
  check_mode:
    support: full
    description: Only reads in check mode; O(record=true) reports whether the record would change and writes nothing.
  diff_mode:
    support: none
    description: Reports no diff; RV(reasons) says what differs.
  idempotent:
    support: full
    description: Recording the same state again changes nothing.

options:
  project:
    description:
      - The compose project name (the C(com.docker.compose.project) label of its containers).
    type: str
    required: true
  state_file:
    description:
      - Absolute path of the record. Its directory must exist.
    type: path
    required: true
  inputs:
    description:
      - Absolute paths of the files a deploy reads (the compose file, env, secret and config files); a missing one
        counts as absent. Their digest is part of the record, so any change to them makes RV(converged) false.
      - When comparing, the paths default to those the record lists, so the comparison can run before the stack's
        files are planned; a file the plan adds or removes afterwards is the files step's change.
    type: list
    elements: path
  record:
    description:
      - Write the current state to O(state_file) instead of comparing with it. Run it right after a successful deploy.
    type: bool
    default: false
  image_namespace:
    description:
      - The repository prefix of the images the stack builds on the host (C(homelab.local/homelab-mcp));
        RV(present_images) lists every C(repository:tag) under it.
    type: str
  read:
    description:
      - Absolute paths of files to read, returned in RV(contents) and RV(missing) as M(homelab.core.read_files) does.
        A path that is there but is not a regular file, or is reached through a link that another user could have
        planted, fails the task.
    type: list
    elements: path
    default: []
  container_names:
    description:
      - Container names the stack gives its services (compose C(container_name)); RV(foreign_containers) lists those
        that a container outside O(project) already holds.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Compare the stack with its last deploy
  homelab.core.compose_deployed:
    project: homelab
    state_file: /opt/homelab/.homelab.deployed.json
    inputs: [/opt/homelab/docker-compose.yml, /opt/homelab/env/ollama.env]
  register: deployed

- name: Deploy only when something differs
  community.docker.docker_compose_v2:
    project_src: /opt/homelab
    state: present
    wait: true
  when: not deployed.converged

- name: Record what the deploy left
  homelab.core.compose_deployed:
    project: homelab
    state_file: /opt/homelab/.homelab.deployed.json
    inputs: [/opt/homelab/docker-compose.yml, /opt/homelab/env/ollama.env]
    record: true
  when: not deployed.converged
"""

RETURN = r"""
converged:
  description: Whether the project runs exactly as recorded (always false with O(record=true)).
  returned: always
  type: bool
  sample: true
reasons:
  description: Why the project is not converged, one sentence each; empty when it is.
  returned: always
  type: list
  elements: str
  sample: ["homelab-n8n-1 is exited, recorded running"]
present_images:
  description: The references under O(image_namespace) that exist on the host.
  returned: always
  type: list
  elements: str
  sample: [homelab.local/homelab-mcp/x-mcp:0123456789abcdef]
contents:
  description: The base64 content of each file of O(read) that exists, by path.
  returned: always
  type: dict
missing:
  description: The paths of O(read) that do not exist.
  returned: always
  type: list
  elements: str
foreign_containers:
  description: The names of O(container_names) that a container outside O(project) holds.
  returned: always
  type: list
  elements: str
  sample: [coolify-realtime]
"""

import hashlib
import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.core.plugins.module_utils._safe_read import read_all

# 2: the record lists the input paths, so a comparison needs no plan.
RECORD_VERSION = 2
# The largest file O(read) reads: a secrets file is a few kilobytes.
READ_LIMIT = 1048576
LABEL_PROJECT = "com.docker.compose.project"
LABEL_SERVICE = "com.docker.compose.service"
LABEL_CONFIG_HASH = "com.docker.compose.config-hash"
LABEL_ONE_OFF = "com.docker.compose.oneoff"
# Tab-separated; labels as JSON, which escapes any tab inside them.
INSPECT_FORMAT = (
    "{{.Name}}\t{{json .Config.Labels}}\t{{.Image}}\t{{.Config.Image}}\t{{.State.Status}}\t"
    "{{if .State.Health}}{{.State.Health.Status}}{{end}}"
)


def file_digest(path):
    """sha256 hex of a file's content, or None when it does not exist."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(65536), b""):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def inputs_digest(paths):
    """One digest over the paths and their contents, independent of their order."""
    digest = hashlib.sha256()
    for path in sorted(set(paths)):
        digest.update(("%s\0%s\n" % (path, file_digest(path) or "absent")).encode("utf-8"))
    return digest.hexdigest()


def parse_inspect(text):
    """Map container names to their record from ``docker inspect --format INSPECT_FORMAT``; one-offs left out."""
    containers = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, labels, image_id, reference, status, health = line.split("\t")
        labels = json.loads(labels) or {}
        if labels.get(LABEL_ONE_OFF, "False") == "True":
            continue
        containers[name.lstrip("/")] = {
            "service": labels.get(LABEL_SERVICE, ""),
            "config_hash": labels.get(LABEL_CONFIG_HASH, ""),
            "image": image_id,
            "reference": reference,
            "status": status,
            "health": health,
        }
    return containers


def differences(recorded, current, compose_version, digest, image_ids):
    """The reasons why ``current`` is not what ``recorded`` describes; empty when it is.

    ``image_ids`` maps each image reference the containers use to the image it names now (None when missing).
    """
    if not recorded:
        return ["there is no record of an earlier deploy"]
    reasons = []
    if recorded.get("version") != RECORD_VERSION:
        reasons.append("the record is of another format")
    if recorded.get("compose_version") != compose_version:
        reasons.append("compose is %s, the last deploy was with %s" % (compose_version, recorded.get("compose_version")))
    if recorded.get("inputs") != digest:
        reasons.append("the stack's files changed since the last deploy")
    wanted = recorded.get("containers") or {}
    for name in sorted(set(wanted) - set(current)):
        reasons.append("%s is missing" % name)
    for name in sorted(set(current) - set(wanted)):
        reasons.append("%s was not there after the last deploy" % name)
    for name in sorted(set(wanted) & set(current)):
        was, now = wanted[name], current[name]
        if now["config_hash"] != was.get("config_hash"):
            reasons.append("%s was recreated with another config" % name)
        if now["image"] != was.get("image"):
            reasons.append("%s runs another image than after the last deploy" % name)
        if (now["status"], now["health"]) != (was.get("status"), was.get("health")):
            reasons.append("%s is %s, recorded %s" % (name, _state(now), _state(was)))
        named = image_ids.get(now["reference"])
        if named is None:
            reasons.append("%s's image %s is not on the host" % (name, now["reference"]))
        elif named != now["image"]:
            reasons.append("%s's image %s now names another image" % (name, now["reference"]))
    return reasons


def _state(container):
    status, health = container.get("status"), container.get("health")
    return "%s (%s)" % (status, health) if health else str(status)


class ComposeDeployed:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.docker = module.get_bin_path("docker")

    def run_docker(self, args, check=True):
        rc, out, err = self.module.run_command([self.docker] + args)
        if rc != 0 and check:
            self.module.fail_json(msg="docker %s failed (rc %d): %s" % (" ".join(args), rc, err.strip()), rc=rc)
        return rc, out

    def compose_version(self):
        rc, out = self.run_docker(["compose", "version", "--short"], check=False)
        return out.strip() if rc == 0 else None

    def containers(self):
        _rc, ids = self.run_docker(["ps", "--all", "--quiet", "--no-trunc", "--filter",
                                    "label=%s=%s" % (LABEL_PROJECT, self.params["project"])])
        ids = ids.split()
        if not ids:
            return {}
        _rc, out = self.run_docker(["inspect", "--type", "container", "--format", INSPECT_FORMAT] + ids)
        return parse_inspect(out)

    def image_ids(self, references):
        """Map each reference to the image ID it names on the host, None when it names none."""
        references = sorted(set(references))
        if not references:
            return {}
        # One call for all; it fails when any is missing, and then each is asked on its own.
        rc, out = self.run_docker(["image", "inspect", "--format", "{{.Id}}"] + references, check=False)
        ids = out.split()
        if rc == 0 and len(ids) == len(references):
            return dict(zip(references, ids))
        found = {}
        for reference in references:
            rc, out = self.run_docker(["image", "inspect", "--format", "{{.Id}}", reference], check=False)
            found[reference] = out.strip() if rc == 0 and out.strip() else None
        return found

    def present_images(self):
        namespace = self.params["image_namespace"]
        if not namespace:
            return []
        _rc, out = self.run_docker(["image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
                                    "--filter=reference=%s/*" % namespace.rstrip("/")])
        return sorted(set(reference for reference in out.split() if not reference.endswith(":<none>")))

    def foreign_containers(self):
        """The names of container_names that containers of other projects (or of none) hold."""
        names = self.params["container_names"]
        if not names:
            return []
        _rc, out = self.run_docker(["ps", "--all", "--format", "{{.Names}}\t{{.Label \"%s\"}}" % LABEL_PROJECT])
        taken = dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)
        return [name for name in names if name in taken and taken[name] != self.params["project"]]

    def read_files(self):
        contents, missing, unreadable = read_all(self.params["read"], READ_LIMIT)
        if unreadable:
            self.module.fail_json(msg="Cannot read %s." % "; ".join("%s (%s)" % item for item in sorted(unreadable.items())))
        return contents, missing

    def read_record(self):
        try:
            with open(self.params["state_file"]) as handle:
                record = json.load(handle)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            self.module.warn("Ignoring the unreadable record %s: %s" % (self.params["state_file"], exc))
            return None
        return record if isinstance(record, dict) else None

    def write_record(self, record):
        path = self.params["state_file"]
        text = json.dumps(record, indent=2, sort_keys=True) + "\n"
        try:
            with open(path) as handle:
                if handle.read() == text:
                    return False
        except (OSError, UnicodeDecodeError):
            pass
        if self.module.check_mode:
            return True
        fd, tmp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.chmod(tmp_path, 0o600)
            os.rename(tmp_path, path)
        except OSError as exc:
            os.unlink(tmp_path)
            self.module.fail_json(msg="Cannot write %s: %s" % (path, exc))
        return True

    def run(self):
        params = self.params
        result = {"changed": False, "converged": False, "reasons": [], "present_images": [], "foreign_containers": []}
        result["contents"], result["missing"] = self.read_files()
        if not self.docker:
            result["reasons"] = ["there is no docker CLI on the host"]
            self.module.exit_json(**result)
        result["present_images"] = self.present_images()
        result["foreign_containers"] = self.foreign_containers()
        compose_version = self.compose_version()
        containers = self.containers()
        if params["record"]:
            if params["inputs"] is None:
                self.module.fail_json(msg="record needs inputs, the files the deploy read")
            record = {
                "version": RECORD_VERSION,
                "project": params["project"],
                "compose_version": compose_version,
                "inputs": inputs_digest(params["inputs"]),
                "input_paths": sorted(set(params["inputs"])),
                "containers": dict(
                    (name, dict((key, value) for key, value in container.items() if key != "reference"))
                    for name, container in containers.items()
                ),
            }
            result["changed"] = self.write_record(record)
            self.module.exit_json(**result)
        image_ids = self.image_ids(container["reference"] for container in containers.values())
        recorded = self.read_record()
        paths = params["inputs"] if params["inputs"] is not None else (recorded or {}).get("input_paths") or []
        result["reasons"] = differences(recorded, containers, compose_version, inputs_digest(paths), image_ids)
        result["converged"] = not result["reasons"]
        self.module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            project=dict(type="str", required=True),
            state_file=dict(type="path", required=True),
            inputs=dict(type="list", elements="path"),
            record=dict(type="bool", default=False),
            image_namespace=dict(type="str"),
            read=dict(type="list", elements="path", default=[]),
            container_names=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    ComposeDeployed(module).run()


if __name__ == "__main__":
    main()
