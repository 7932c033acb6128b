#!/usr/bin/python
#
# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: ollama_model

short_description: Pull or remove one Ollama model through Ollama's HTTP API

version_added: 1.0.0

author:
  - homelab.core maintainers (@homelab-core)

description:
  - Makes one model present (pulled) or absent (deleted) on an Ollama server, through its HTTP API at O(url), with
    C(GET /api/tags) to see what is installed, a streamed C(POST /api/pull) and C(DELETE /api/delete).
  - Names are matched the way Ollama normalises them, case-insensitively, so V(llama3), V(llama3:latest) and
    V(registry.ollama.ai/library/llama3:latest) are the same model.
  - A model that is present is not pulled again unless O(update=true).
  - A pull that fails, is cut off or ends without Ollama's final C(success) line makes the task fail with Ollama's own
    message; the model is then never reported as present.
  - When O(models_path) is set, the size the registry's manifest gives is compared with the free space of that
    filesystem before the pull starts, and a model that would not fit is refused. When the registry cannot be asked
    (an air-gapped host), the task warns and pulls anyway.

attributes:
  check_mode:
    support: full
    description:
      - Sends no request that changes anything. A missing model is reported as pulled, a present one as removed. With
        O(update=true) the digest of the registry's manifest tells whether a pull would change the model; when the
        registry cannot be asked the task warns and reports no change.
  diff_mode:
    support: full
    description: Returns the model before and after, with whether it is present, its digest and its size.
  idempotent:
    support: full
    description: A second run with the same options reports no change and pulls nothing.

options:
  name:
    description:
      - The model, as V(model), V(model:tag), V(namespace/model:tag) or V(host/namespace/model:tag).
      - The tag defaults to V(latest), the namespace to V(library) and the host to V(registry.ollama.ai).
    type: str
    required: true
  state:
    description:
      - V(present) pulls the model when it is not installed.
      - V(absent) deletes it when it is installed.
    type: str
    choices: [present, absent]
    default: present
  update:
    description:
      - Pull a model that is already present again, to get the newest digest of its tag.
      - Reports a change only when the digest moved.
    type: bool
    default: false
  url:
    description:
      - Base URL of the Ollama API.
    type: str
    default: http://127.0.0.1:11434
  timeout:
    description:
      - Seconds the whole pull may take. When it runs longer, the task fails naming O(timeout).
    type: int
    default: 3600
  read_timeout:
    description:
      - Seconds to wait for each answer and each progress line from Ollama (and from the registry).
      - Ollama sends a progress line many times a second while it downloads, but can be silent for minutes while it
        verifies the digest of a large model.
    type: int
    default: 600
  models_path:
    description:
      - Directory that holds Ollama's models on this host (C(OLLAMA_MODELS), the C(models) directory under a bind
        mount of C(/root/.ollama)), for the disk check.
      - When set, the free space of its filesystem must hold the blobs of the manifest that are not yet in its
        C(blobs) directory, or the pull is refused before it starts. When not set, there is no disk check.
      - It need not exist yet; the nearest existing parent is measured.
    type: path
  registry_url:
    description:
      - Base URL of the registry asked for the manifest of models on the default host V(registry.ollama.ai).
      - Models with another host are looked up at C(https://<host>).
    type: str
    default: https://registry.ollama.ai
  validate_certs:
    description:
      - Verify TLS certificates (the registry's, and Ollama's when O(url) is C(https)).
    type: bool
    default: true

notes:
  - Progress is logged on the managed host with the module's log (syslog or the journal) at 0, 25, 50, 75 and 100
    percent of each layer, so a long pull can be followed there; RV(progress) has the same milestones.
  - The manifest is only fetched when a pull is going to happen (and O(models_path) is set) or, in check mode, when
    O(update=true).
"""

EXAMPLES = r"""
- name: Pull llama3.2 (the latest tag)
  homelab.core.ollama_model:
    name: llama3.2

- name: Pull a tagged model, refusing it when it would not fit the disk
  homelab.core.ollama_model:
    name: qwen2.5-coder:7b
    url: http://127.0.0.1:11434
    models_path: /opt/homelab/data/ollama/models
    timeout: 7200

- name: Move a model to the newest digest of its tag
  homelab.core.ollama_model:
    name: nomic-embed-text
    update: true

- name: Remove a model
  homelab.core.ollama_model:
    name: mistral:7b
    state: absent
"""

RETURN = r"""
name:
  description: The model name as Ollama lists it (defaults left out, the tag always given).
  returned: always
  type: str
  sample: llama3.2:latest
digest:
  description: Digest of the installed model (as C(/api/tags) gives it); V(null) when it is not installed.
  returned: success
  type: str
  sample: a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72
size:
  description: Size in bytes of the installed model; V(null) when it is not installed.
  returned: success
  type: int
  sample: 2019393189
progress:
  description:
    - Milestones of the pull, empty when nothing was pulled. Each status appears once; each layer at 0, 25, 50, 75
      and 100 percent.
  returned: always
  type: list
  elements: dict
  sample:
    - status: pulling manifest
    - {status: pulling dde5aa3fc5ff, digest: "sha256:dde5aa3fc5ff...", percent: 50, completed: 1009696594,
       total: 2019377376}
    - status: success
"""

import hashlib
import http.client
import json
import os
import socket
import time
import urllib.error

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.homelab.core.plugins.module_utils._answers import answer_message
from ansible_collections.homelab.core.plugins.module_utils._ollama import (
    DEFAULT_HOST,
    PullProgress,
    find_installed,
    human_size,
    manifest_blobs,
    parse_name,
)

MANIFEST_ACCEPT = "application/vnd.docker.distribution.manifest.v2+json"


class PullFailed(Exception):
    """The pull did not end with Ollama's success line; the message says why."""


class OllamaModel:
    def __init__(self, module, name):
        self.module = module
        self.params = module.params
        self.name = name
        self.url = self.params["url"].rstrip("/")
        self.progress = PullProgress()

    # --- HTTP -----------------------------------------------------------------------------------------------

    def _open(self, method, path, payload=None, timeout=None):
        data = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        return open_url(self.url + path, data=data, headers=headers, method=method,
                        timeout=timeout or self.params["read_timeout"], validate_certs=self.params["validate_certs"],
                        follow_redirects="none")

    def _call(self, method, path, payload=None):
        """(status, body bytes) of one request; fails the task when Ollama cannot be reached."""
        try:
            with self._open(method, path, payload) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            reason = getattr(error, "reason", error)
            self.module.fail_json(msg="Cannot reach Ollama at %s (%s %s): %s; check url and that Ollama is running."
                                  % (self.url, method, path, reason), name=self.name.shortest, progress=[])
        return None  # pragma: no cover (fail_json exits)

    def installed(self):
        status, body = self._call("GET", "/api/tags")
        if status != 200:
            self.module.fail_json(msg="Ollama at %s answered GET /api/tags with HTTP %s: %s"
                                  % (self.url, status, answer_message(body, "error")), name=self.name.shortest, progress=[])
        try:
            models = json.loads(body).get("models") or []
        except (ValueError, AttributeError):
            self.module.fail_json(msg="Ollama at %s answered GET /api/tags with something that is not its model list"
                                  % self.url, name=self.name.shortest, progress=[])
        return find_installed(self.name, models)

    def registry_manifest(self):
        """(raw bytes, manifest dict) from the registry, or None after a warning when it cannot be read."""
        if self.name.host.lower() == DEFAULT_HOST:
            base = self.params["registry_url"].rstrip("/")
        else:
            base = "https://" + self.name.host
        manifest_url = "%s/v2/%s/manifests/%s" % (base, self.name.repository, self.name.tag)
        try:
            with open_url(manifest_url, headers={"Accept": MANIFEST_ACCEPT}, method="GET",
                          timeout=min(self.params["read_timeout"], 30),
                          validate_certs=self.params["validate_certs"]) as response:
                raw = response.read()
            manifest = json.loads(raw)
            if not isinstance(manifest, dict) or not isinstance(manifest.get("layers"), list):
                raise ValueError("not an image manifest")
            return raw, manifest
        except urllib.error.HTTPError as error:
            reason = "HTTP %s" % error.code
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as error:
            reason = str(getattr(error, "reason", error))
        self.module.warn("Could not read the manifest of %s from %s (%s); %s"
                         % (self.name.shortest, manifest_url, reason, self._unchecked()))
        return None

    def _unchecked(self):
        if self.module.check_mode and self.params["update"]:
            return "cannot tell whether its digest moved, so no change is reported."
        return "pulling without checking the free disk space first."

    # --- disk check -----------------------------------------------------------------------------------------

    def check_disk(self, manifest):
        models_path = self.params["models_path"]
        blobs_dir = os.path.join(models_path, "blobs")
        needed = 0
        for digest, size in manifest_blobs(manifest):
            if not os.path.exists(os.path.join(blobs_dir, digest.replace(":", "-"))):
                needed += size
        measured = models_path
        while not os.path.isdir(measured) and os.path.dirname(measured) != measured:
            measured = os.path.dirname(measured)
        stat = os.statvfs(measured)
        free = stat.f_bavail * stat.f_frsize
        if needed > free:
            self.module.fail_json(
                msg="%s needs %s (%d bytes) of new blobs but the filesystem of models_path %s has only %s (%d bytes) "
                    "free; free space there or set models_path to where Ollama keeps its models."
                    % (self.name.shortest, human_size(needed), needed, models_path, human_size(free), free),
                name=self.name.shortest, progress=[], needed=needed, free=free)

    # --- pull -----------------------------------------------------------------------------------------------

    def pull(self):
        """Stream /api/pull until Ollama's success line; raise PullFailed otherwise."""
        deadline = time.monotonic() + self.params["timeout"]
        payload = {"model": self.name.shortest, "name": self.name.shortest, "stream": True}
        read_timeout = min(self.params["read_timeout"], self.params["timeout"])
        try:
            response = self._open("POST", "/api/pull", payload, timeout=read_timeout)
        except urllib.error.HTTPError as error:
            message = answer_message(error.read(), "error")
            raise PullFailed("Ollama refused the pull (HTTP %s): %s" % (error.code, message)) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
            raise PullFailed("Cannot reach Ollama at %s: %s" % (self.url, getattr(error, "reason", error))) from None
        with response:
            while True:
                if time.monotonic() > deadline:
                    raise PullFailed("The pull did not finish within timeout=%d seconds; raise timeout for large "
                                     "models." % self.params["timeout"])
                try:
                    raw = response.readline()
                except (socket.timeout, TimeoutError):
                    raise PullFailed("Ollama sent nothing for %d seconds (read_timeout) during the pull."
                                     % read_timeout) from None
                except (OSError, http.client.HTTPException) as error:
                    raise PullFailed("The connection to Ollama broke during the pull: %s"
                                     % (str(error) or type(error).__name__)) from None
                if not raw:
                    raise PullFailed("Ollama's pull stream ended before its success line; the pull did not complete.")
                if not raw.strip():
                    continue
                try:
                    line = json.loads(raw)
                except ValueError:
                    raise PullFailed("Ollama sent a line that is not JSON during the pull: %r" % raw[:200]) from None
                if not isinstance(line, dict):
                    continue
                if line.get("error"):
                    raise PullFailed(str(line["error"]))
                milestone = self.progress.add(line)
                if milestone is not None:
                    self._log(milestone)
                if self.progress.success:
                    return

    def _log(self, milestone):
        if "percent" in milestone:
            text = "%s %d%% (%s of %s)" % (milestone["status"], milestone["percent"],
                                           human_size(milestone["completed"]), human_size(milestone["total"]))
        else:
            text = milestone["status"]
        self.module.log("ollama_model %s: %s" % (self.name.shortest, text))

    # --- the task -------------------------------------------------------------------------------------------

    @staticmethod
    def _view(entry, name):
        if entry is None:
            return {"name": name, "present": False}
        return {"name": name, "present": True, "digest": entry.get("digest"), "size": entry.get("size")}

    def run(self):
        module, params, shortest = self.module, self.params, self.name.shortest
        before = self.installed()
        after = before
        changed = False

        if params["state"] == "absent":
            if before is not None:
                changed = True
                after = None
                if not module.check_mode:
                    status, body = self._call("DELETE", "/api/delete", {"model": shortest, "name": shortest})
                    if status == 404:
                        changed = False
                    elif status != 200:
                        module.fail_json(msg="Ollama could not delete %s (HTTP %s): %s"
                                         % (shortest, status, answer_message(body, "error")), name=shortest, progress=[])
        elif before is None or params["update"]:
            fetched = None
            if params["models_path"] or (module.check_mode and before is not None):
                fetched = self.registry_manifest()
            if fetched is not None and params["models_path"]:
                self.check_disk(fetched[1])
            if module.check_mode:
                if before is None:
                    changed, after = True, {"digest": None, "size": None}
                elif fetched is not None:
                    new_digest = hashlib.sha256(fetched[0]).hexdigest()
                    changed = new_digest != before.get("digest")
                    if changed:
                        after = {"digest": new_digest, "size": sum(size for _d, size in manifest_blobs(fetched[1]))}
            else:
                try:
                    self.pull()
                except PullFailed as error:
                    module.fail_json(msg="Pulling %s failed: %s" % (shortest, error), name=shortest,
                                     progress=self.progress.milestones)
                after = self.installed()
                if after is None:
                    module.fail_json(msg="Ollama reported success for %s but GET /api/tags does not list it."
                                     % shortest, name=shortest, progress=self.progress.milestones)
                changed = before is None or before.get("digest") != after.get("digest")

        result = dict(
            changed=changed,
            name=shortest,
            digest=None if after is None else after.get("digest"),
            size=None if after is None else after.get("size"),
            progress=self.progress.milestones,
        )
        if module._diff:
            result["diff"] = {"before": self._view(before, shortest), "after": self._view(after, shortest)}
        module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            update=dict(type="bool", default=False),
            url=dict(type="str", default="http://127.0.0.1:11434"),
            timeout=dict(type="int", default=3600),
            read_timeout=dict(type="int", default=600),
            models_path=dict(type="path"),
            registry_url=dict(type="str", default="https://registry.ollama.ai"),
            validate_certs=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if module.params["timeout"] <= 0 or module.params["read_timeout"] <= 0:
        module.fail_json(msg="timeout and read_timeout must be positive numbers of seconds.")
    try:
        name = parse_name(module.params["name"])
    except ValueError as error:
        module.fail_json(msg="Invalid name: %s." % error)
    OllamaModel(module, name).run()


if __name__ == "__main__":
    main()
