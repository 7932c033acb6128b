#!/usr/bin/python
#
# Copyright (c) 2025, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: docker_daemon_config

short_description: Merge settings into Docker's daemon.json without replacing the file

version_added: 1.0.0

author:
  - homelab.core maintainers (@homelab-core)

description:
  - Sets and removes keys in Docker's C(daemon.json) while keeping every key it was not told about, so a role that sets
    C(log-opts) does not wipe the C(runtimes.nvidia) entry that another role or C(nvidia-ctk) added.
  - A missing file, or one that is empty or holds only white space, counts as an empty JSON object.
  - A file that is not valid JSON, or whose top level is not a JSON object, makes the task fail and is never written.
  - The file is only rewritten when its parsed content has to change; a file that already holds the right settings is left
    alone even when its formatting differs. When it is rewritten, existing keys keep their order, new keys are appended,
    and the JSON is indented by two spaces.
  - The new content goes to a temporary file next to O(path) that is validated with O(validate), then moved into place
    atomically.
  - The Docker daemon only reads C(daemon.json) when it starts, so restart it (for example from a handler) when this module
    reports a change.

extends_documentation_fragment:
  - ansible.builtin.files

attributes:
  check_mode:
    support: full
    description: Computes the resulting configuration and reports the same C(changed) as a real run, writing nothing.
  diff_mode:
    support: full
    description: Returns the file's text before and after the change.
  idempotent:
    support: full
    description: A second run with the same options reports no change and does not touch the file.

options:
  path:
    description:
      - Path of the Docker daemon configuration file.
      - Its parent directory is created with mode C(0755) when it is missing.
    type: path
    default: /etc/docker/daemon.json
  settings:
    description:
      - Keys to set.
      - Dictionaries merge recursively into existing dictionaries, so setting C(runtimes.nvidia) keeps
        C(runtimes.runc) and any other runtime already in the file.
      - Lists and scalars replace the existing value.
    type: dict
    default: {}
  remove_keys:
    description:
      - Keys that must be absent.
      - A string is a top-level key; a list of strings is a path into nested dictionaries, for example
        V([runtimes, nvidia]).
      - Keys that are already absent are not an error and cause no change.
      - Applied before O(settings), so removing a key and setting it again replaces its value instead of merging into it.
    type: list
    elements: raw
    default: []
  backup:
    description:
      - Keep a timestamped copy of the existing file before it is overwritten.
    type: bool
    default: true
  mode:
    description:
      - The permissions of the file, as with M(ansible.builtin.copy).
      - Quote octal numbers, for example V('0644').
    type: raw
    default: '0644'
  validate:
    description:
      - Command that checks the new content before it replaces O(path), like the
        O(ansible.builtin.template#module:validate) option.
      - It must contain C(%s), which is replaced by the path of the temporary file.
      - It is split into arguments like a shell would, but is not run through a shell.
      - When it exits non-zero the task fails with its error output and O(path) is left unchanged.
      - Not run in check mode.
    type: str

notes:
  - When O(path) is missing and the resulting configuration is empty, no file is created.
"""

EXAMPLES = r"""
- name: Register the NVIDIA runtime and make it the default
  homelab.core.docker_daemon_config:
    settings:
      default-runtime: nvidia
      runtimes:
        nvidia:
          path: nvidia-container-runtime
          args: []
    validate: dockerd --validate --config-file %s
  notify: Restart docker

- name: Rotate container logs, keeping whatever else daemon.json holds
  homelab.core.docker_daemon_config:
    settings:
      log-driver: json-file
      log-opts:
        max-size: 10m
        max-file: "3"
  notify: Restart docker

- name: Drop the NVIDIA runtime and stop defaulting to it
  homelab.core.docker_daemon_config:
    remove_keys:
      - default-runtime
      - [runtimes, nvidia]
  notify: Restart docker
"""

RETURN = r"""
config:
  description: The configuration the file holds after the task (in check mode, the one it would hold).
  returned: success
  type: dict
  sample:
    default-runtime: nvidia
    log-driver: json-file
    runtimes:
      nvidia:
        path: nvidia-container-runtime
        args: []
differs:
  description:
    - Whether the file differs from what the task wants, content or attributes; the same as C(changed), and still
      there when the task's C(changed_when) hides that, as for a check before anything changes.
  returned: success
  type: bool
  sample: false
backup_file:
  description: Path of the copy of the previous file.
  returned: when O(backup=true) and an existing file was rewritten
  type: str
  sample: /etc/docker/daemon.json.4242.2025-01-31@12:00:00~
diff:
  description: The file's text before and after the task.
  returned: in diff mode
  type: dict
  sample:
    before: "{\n  \"log-driver\": \"local\"\n}\n"
    after: "{\n  \"log-driver\": \"json-file\"\n}\n"
    before_header: /etc/docker/daemon.json
    after_header: /etc/docker/daemon.json
"""

import copy
import json
import os
import shlex
import tempfile

from ansible.module_utils.basic import AnsibleModule


_JSON_TYPES = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean", type(None): "null"}
_REFUSAL = "%s %s; fix or remove it, it was left unchanged."


def key_paths(entries):
    """Turn O(remove_keys) entries into lists of keys; raise ValueError on an entry that is neither."""
    paths = []
    for entry in entries:
        path = [entry] if isinstance(entry, str) else entry
        if not (isinstance(path, list) and path and all(isinstance(key, str) for key in path)):
            raise ValueError("remove_keys entries must be a key or a non-empty list of keys, got %s." % json.dumps(entry))
        paths.append(path)
    return paths


def parse_config(text):
    """Return the dict held by daemon.json text; raise ValueError saying what is wrong with it."""
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError("is not valid JSON (%s: line %d column %d)" % (exc.msg, exc.lineno, exc.colno)) from None
    if not isinstance(config, dict):
        raise ValueError("is not a JSON object (its top level is %s)" % _JSON_TYPES[type(config)])
    return config


def remove_key(config, path):
    """Delete the key at ``path`` from ``config`` in place; a missing key or parent is no error."""
    parent = config
    for key in path[:-1]:
        parent = parent.get(key)
        if not isinstance(parent, dict):
            return
    parent.pop(path[-1], None)


def deep_merge(base, overlay):
    """Return ``base`` with ``overlay`` merged in: dicts merge recursively, anything else replaces."""
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = deep_merge(merged[key], value)
        merged[key] = value
    return merged


def render(config):
    return json.dumps(config, indent=2, ensure_ascii=False) + "\n"


def same_json(left, right):
    """Compare strictly, so that 1, 1.0 and true differ as they do in JSON."""
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


class DaemonConfig:
    def __init__(self, module):
        self.module = module
        self.path = module.params["path"]
        self.validate_command = module.params["validate"]
        if self.validate_command is not None and "%s" not in self.validate_command:
            module.fail_json(msg="validate must contain %%s, got %r." % self.validate_command)
        try:
            self.remove_paths = key_paths(module.params["remove_keys"])
        except ValueError as exc:
            module.fail_json(msg=str(exc))

    def refuse(self, reason):
        self.module.fail_json(msg=_REFUSAL % (self.path, reason))

    def read(self):
        """Return the file's text (None when it is missing) and the config it holds."""
        try:
            with open(self.path, "rb") as handle:
                data = handle.read()
        except FileNotFoundError:
            return None, {}
        except OSError as exc:
            self.module.fail_json(msg="Could not read %s: %s." % (self.path, exc.strerror))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.refuse("is not valid JSON (not UTF-8 at byte %d)" % exc.start)
        try:
            return text, parse_config(text)
        except ValueError as exc:
            self.refuse(exc)

    def desired(self, current):
        config = copy.deepcopy(current)
        for path in self.remove_paths:
            remove_key(config, path)
        return deep_merge(config, self.module.params["settings"])

    def validate(self, tmp_path):
        if self.validate_command is None:
            return
        command = [arg.replace("%s", tmp_path) for arg in shlex.split(self.validate_command)]
        rc, out, err = self.module.run_command(command)
        if rc != 0:
            self.module.fail_json(
                msg="Validation of the new %s failed (rc=%d): %s; it was left unchanged."
                % (self.path, rc, (err or out).strip()),
                rc=rc, stdout=out, stderr=err,
            )

    def write(self, text, existed):
        """Validate ``text`` and move it into place; return the backup path or None."""
        parent = os.path.dirname(self.path) or "."
        try:
            if not os.path.isdir(parent):
                os.makedirs(parent)
                os.chmod(parent, 0o755)
            fd, tmp_path = tempfile.mkstemp(prefix=".%s." % os.path.basename(self.path), suffix=".tmp", dir=parent)
        except OSError as exc:
            self.module.fail_json(msg="Could not write %s: %s." % (self.path, exc))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            self.validate(tmp_path)
            backup_file = self.module.backup_local(self.path) if existed and self.module.params["backup"] else None
            self.module.atomic_move(tmp_path, self.path, unsafe_writes=self.module.params["unsafe_writes"])
        finally:
            self.module.cleanup(tmp_path)
        return backup_file

    def run(self):
        text, current = self.read()
        config = self.desired(current)
        result = dict(changed=not same_json(config, current), config=config)
        new_text = render(config) if result["changed"] else text
        if result["changed"] and not self.module.check_mode:
            backup_file = self.write(new_text, existed=text is not None)
            if backup_file:
                result["backup_file"] = backup_file
        if self.module._diff:
            result["diff"] = dict(before=text or "", after=new_text or "", before_header=self.path, after_header=self.path)
        if os.path.exists(self.path):
            file_args = self.module.load_file_common_arguments(self.module.params)
            result["changed"] = self.module.set_fs_attributes_if_different(file_args, result["changed"])
        result["differs"] = result["changed"]
        self.module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/etc/docker/daemon.json"),
            settings=dict(type="dict", default={}),
            remove_keys=dict(type="list", elements="raw", default=[], no_log=False),
            backup=dict(type="bool", default=True),
            mode=dict(type="raw", default="0644"),
            validate=dict(type="str"),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    DaemonConfig(module).run()


if __name__ == "__main__":
    main()
