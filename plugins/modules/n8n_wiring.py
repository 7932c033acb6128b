#!/usr/bin/python
#
# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: n8n_wiring

short_description: Give n8n an API key for n8n-mcp and the Ollama and MCP gateway credentials, as its owner

version_added: 1.0.0

author:
  - homelab.core maintainers (@homelab-core)

description:
  - Signs in to n8n (2.17 or later; checked against 2.41.1) as its owner through n8n's REST API, then makes sure of
    three things, each only when it differs, so that a second run changes nothing.
  - An API key for n8n-mcp. A key given in O(api_key) wins and is only checked. Otherwise the key kept in
    O(state_file) is used while n8n accepts it; a key n8n no longer accepts (deleted in n8n, or n8n's keys reset) is
    replaced by a new one, created with O(api_key_scopes) and no expiry. The key is returned in RV(api_key).
  - An Ollama credential (type C(ollamaApi)) named O(ollama_credential_name) whose Base URL is O(ollama_url).
  - "A Header Auth credential (type C(httpHeaderAuth)) named O(mcp_credential_name) that sends the header
    C(Authorization) with the value C(Bearer <O(mcp_access_key)>) to the MCP gateway."
  - The credentials are found by name and type. A credential under one of these names is the role's - an edit made
    in n8n (another Base URL, another header or value, an added API key) is undone on the next run and reported as a
    change. Credentials under other names are never touched; a credential the user renamed is the user's from then on,
    and a new one is made under the name.
  - n8n returns secret fields (the header value) as a blank placeholder, so O(state_file) keeps, for each
    credential, an HMAC-SHA256 of what was written (keyed by a random salt kept in the same file) and n8n's
    C(updatedAt) after the write. A different fingerprint (a rotated MCP key) or C(updatedAt) (an edit in n8n)
    rewrites the credential.
  - O(state_file) is written as root-only (mode 0600), atomically, without following symbolic links (see
    O(state_file)); it holds the API key and the owner's n8n session, which later runs reuse while n8n accepts it
    (GET C(/rest/login)), since n8n allows 5 sign-ins a minute per email.

requirements:
  - n8n reachable from the managed host at O(url), with its owner provisioned (N8N_INSTANCE_OWNER_*).

notes:
  - The result holds the API key; register it with C(no_log).
  - n8n allows 5 sign-ins a minute per email; the module waits and tries again when n8n answers 429.

attributes:
  check_mode:
    support: full
    description: Signs in and reads; predicts what it would create or update, and writes neither to n8n nor to
      O(state_file). A key it would create is returned as an empty string.
  diff_mode:
    support: none
    description: Reports no diff (the values are secrets); RV(credentials) says what changed and why.
  idempotent:
    support: full
    description: A second run with the same values changes nothing.

options:
  url:
    description:
      - n8n's base URL as reached from the managed host.
    type: str
    required: true
  owner_email:
    description:
      - The owner's email (main_stack_n8n_owner_email).
    type: str
    required: true
  owner_password:
    description:
      - The owner's password (main_stack_n8n_owner_password).
    type: str
    required: true
  state_file:
    description:
      - Absolute path of the root-only JSON file that keeps the API key the module made and the credentials'
        fingerprints. Its directory must exist.
      - Opened one directory at a time; a symbolic link on the way is followed only where no other user than root
        can have planted it, and a link at the file itself is never followed.
    type: path
    required: true
  api_key:
    description:
      - An n8n API key given by the inventory (mcp_stack_secrets.n8n_api_key). When set it is used as it is and the
        module creates none; a key the module made earlier is then deleted from n8n. n8n must accept it.
    type: str
  api_key_label:
    description:
      - The label of the key the module creates (1 to 50 characters).
    type: str
    default: homelab n8n-mcp
  api_key_scopes:
    description:
      - The scopes of the key the module creates; a kept key with other scopes is updated in place.
      - The default is what n8n-mcp 2.87.0 calls (C(dist/services/n8n-api-client.js)), mapped to the scopes n8n
        2.41.1 checks on those routes (C(public-api/v1) controllers' C(ApiKeyScope), handlers' C(publicApiScope)).
    type: list
    elements: str
    default: [workflow:list, workflow:create, workflow:read, workflow:update, workflow:delete, workflow:move,
              workflow:activate, workflow:deactivate, workflowTags:update, execution:list, execution:read,
              execution:delete, securityAudit:generate, testRun:list, testRun:read, testRun:create, testRun:cancel,
              credential:list, credential:read, credential:create, credential:update, credential:delete, tag:list,
              tag:create, tag:update, tag:delete, variable:list, variable:create, variable:update, variable:delete,
              dataTable:list, dataTable:create, dataTable:read, dataTable:update, dataTable:delete, dataTableRow:read,
              dataTableRow:create, dataTableRow:update, dataTableRow:upsert, dataTableRow:delete, folder:list,
              folder:create, folder:read, folder:update, folder:delete, project:list]
  ollama_url:
    description:
      - The Base URL of the Ollama credential (main_stack_n8n_ollama_url), as n8n's container reaches Ollama. Empty
        leaves the Ollama credential alone.
    type: str
    default: ""
  ollama_credential_name:
    description:
      - The name that identifies the Ollama credential.
    type: str
    default: Ollama (homelab)
  mcp_access_key:
    description:
      - The MCP gateway's access key (mcp_access_key). Empty leaves the MCP credential alone.
    type: str
    default: ""
  mcp_credential_name:
    description:
      - The name that identifies the MCP gateway's Header Auth credential.
    type: str
    default: MCP gateway (homelab)
  timeout:
    description:
      - Seconds for each request, and for n8n to become reachable.
    type: int
    default: 30
  restoring:
    description:
      - True while a restore converges before n8n's database is back from the backup. The key kept in O(state_file)
        (restored with the secrets) is returned as it is, without signing in, and nothing is written to n8n or to
        O(state_file), so that the key and the credentials match the database once it is restored.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Wire n8n as its owner
  homelab.core.n8n_wiring:
    url: http://127.0.0.1:5678
    owner_email: "{{ main_stack_n8n_owner_email }}"
    owner_password: "{{ main_stack_n8n_owner_password }}"
    state_file: /opt/homelab/secrets/n8n-api-key.json
    api_key: "{{ mcp_stack_secrets.n8n_api_key | default(omit) }}"
    ollama_url: "{{ main_stack_n8n_ollama_url }}"
    mcp_access_key: "{{ mcp_access_key }}"
  register: n8n_wiring
  no_log: true
"""

RETURN = r"""
api_key:
  description: The API key n8n-mcp should use (secret); empty in check mode when one would be created.
  returned: success
  type: str
api_key_source:
  description: C(given) (O(api_key)), C(stored) (kept in O(state_file)) or C(created) (made by this run).
  returned: success
  type: str
  sample: stored
api_key_id:
  description: n8n's id of the key, when known.
  returned: success
  type: str
  sample: FLFuNJzBtVjljldb
credentials:
  description: For each managed credential name, its n8n id, type, action (created, updated or unchanged) and the
    reasons for a change.
  returned: success
  type: dict
  sample: {"Ollama (homelab)": {"id": "CoIxFLlr1cXVw1Yl", "type": "ollamaApi", "action": "unchanged", "reasons": []}}
"""

import hashlib
import hmac
import json
import secrets

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.core.plugins.module_utils import _safe_read
from ansible_collections.homelab.core.plugins.module_utils._n8n import LOGIN_PATH, Client, N8nError
from ansible_collections.homelab.core.plugins.module_utils._state_file import StateFile

STATE_VERSION = 1
# n8n 2.41.1 n8n-workflow constants.js CREDENTIAL_BLANKING_VALUE: what credential reads return for a set secret field.
BLANK = "__n8n_BLANK_VALUE_e5362baf-c777-4d57-a609-6eaf1f9e87f6"


def fingerprint(salt, data):
    """HMAC-SHA256 of a credential's data as written (sorted JSON), keyed by the state file's salt."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hmac.new(bytes.fromhex(salt), text.encode("utf-8"), hashlib.sha256).hexdigest()


def plan_credential(wanted, found, record, salt):
    """(action, reasons) for one credential: ``wanted`` {name, type, data}, ``found`` n8n's entry (with data) or None,
    ``record`` what the state file kept for it or None."""
    if found is None:
        return "create", ["no %s credential named %r in n8n" % (wanted["type"], wanted["name"])]
    reasons = []
    stored = found.get("data") or {}
    for field, value in sorted(wanted["data"].items()):
        if stored.get(field) != BLANK and stored.get(field) != value:
            reasons.append("its %s differs" % field)
    extra = sorted(set(stored) - set(wanted["data"]))
    if extra:
        reasons.append("it has fields this role does not set (%s)" % ", ".join(extra))
    if not record or record.get("id") != found.get("id"):
        reasons.append("this role has no fingerprint of it")
    else:
        if record.get("fingerprint") != fingerprint(salt, wanted["data"]):
            reasons.append("its value changed in the inventory")
        if record.get("updated_at") != found.get("updatedAt"):
            reasons.append("it was edited in n8n since this role wrote it")
    return ("update" if reasons else "unchanged"), reasons


class Wiring:
    def __init__(self, module, client=None):
        self.module = module
        self.params = module.params
        self.check = module.check_mode
        self.client = client or Client(self.params["url"], timeout=self.params["timeout"], wait=self.params["timeout"])
        self.state_file = StateFile(self.params["state_file"])
        self.changed = False

    def fail(self, msg):
        self.module.fail_json(msg=msg)

    def read_state(self):
        try:
            state = self.state_file.read()
        except (OSError, _safe_read.Refused) as exc:
            self.fail("Cannot read %s: %s." % (self.params["state_file"], exc))
        state = state if state and state.get("version") == STATE_VERSION else {"version": STATE_VERSION}
        state.setdefault("credentials", {})
        if not isinstance(state.get("salt"), str) or len(state["salt"]) != 64:
            state["salt"] = secrets.token_hex(32)
        return state

    def login(self, state):
        """Sign in as the owner, reusing the session kept in the state file while n8n still accepts it: n8n allows
        5 sign-ins a minute per email, and a converge, its idempotence run and a check would spend them."""
        if isinstance(state.get("session"), str) and state["session"]:
            self.client.cookie = state["session"]
            try:
                if self.client.request("GET", LOGIN_PATH)[0] == 200:
                    return
            except N8nError:
                pass
            self.client.cookie = None
        try:
            self.client.login(self.params["owner_email"], self.params["owner_password"])
        except N8nError as exc:
            if exc.status in (400, 401, 403):
                self.fail("n8n at %s refused to sign in its owner (%s): check main_stack_n8n_owner_email and "
                          "main_stack_n8n_owner_password." % (self.params["url"], exc))
            self.fail("Cannot sign in to n8n at %s as its owner: %s." % (self.params["url"], exc))
        state["session"] = self.client.cookie

    def own_keys(self):
        return {item["id"]: item for item in (self.client.call("GET", "/rest/api-keys") or {}).get("items", [])}

    def delete_key(self, key_id, keys):
        if key_id and key_id in keys:
            if not self.check:
                self.client.call("DELETE", "/rest/api-keys/%s" % key_id)
            self.changed = True

    def api_key(self, state):
        """(key, source, id) n8n-mcp uses; updates ``state``."""
        given = self.params["api_key"]
        kept = state.get("api_key") or {}
        scopes = self.params["api_key_scopes"]
        if given:
            status = self.client.key_status(given)
            if status != 200:
                self.fail("n8n at %s does not accept mcp_stack_secrets.n8n_api_key (GET /api/v1/workflows answered "
                          "%d); give a current key with the workflow scopes or leave it unset." % (self.params["url"],
                                                                                                   status))
            if kept:
                self.delete_key(kept.get("id"), self.own_keys())
                state.pop("api_key", None)
            return given, "given", ""
        keys = self.own_keys()
        if kept.get("key"):
            status = self.client.key_status(kept["key"])
            if status in (200, 403) and kept.get("id") in keys:
                entry = keys[kept["id"]]
                if sorted(entry.get("scopes") or []) != sorted(scopes) or entry.get("label") != self.params["api_key_label"]:
                    if not self.check:
                        self.client.call("PATCH", "/rest/api-keys/%s" % kept["id"],
                                         {"label": self.params["api_key_label"], "scopes": scopes})
                    self.changed = True
                    kept["label"] = self.params["api_key_label"]
                return kept["key"], "stored", kept["id"]
            if status not in (200, 401, 403):
                self.fail("n8n at %s answered %d when the stored API key was tried." % (self.params["url"], status))
            # Not accepted (deleted in n8n, or n8n's signing secret changed): replaced.
            self.delete_key(kept.get("id"), keys)
        self.changed = True
        # A key under the role's label that the state file does not know (the file was lost, or n8n's database
        # was restored from a backup older than it) is the role's all the same: n8n keeps labels unique, and its
        # secret is shown only once, so it is deleted and made again.
        for entry_id, entry in keys.items():
            if entry.get("label") == self.params["api_key_label"] and entry_id != kept.get("id"):
                self.delete_key(entry_id, keys)
        if self.check:
            return "", "created", ""
        created = self.client.call("POST", "/rest/api-keys", {
            "label": self.params["api_key_label"], "scopes": scopes, "expiresAt": None})
        state["api_key"] = {"id": created["id"], "key": created["rawApiKey"], "label": self.params["api_key_label"]}
        return created["rawApiKey"], "created", created["id"]

    def credentials(self, state):
        wanted = []
        if self.params["ollama_url"]:
            wanted.append({"name": self.params["ollama_credential_name"], "type": "ollamaApi",
                           "data": {"baseUrl": self.params["ollama_url"]}})
        if self.params["mcp_access_key"]:
            wanted.append({"name": self.params["mcp_credential_name"], "type": "httpHeaderAuth",
                           "data": {"name": "Authorization", "value": "Bearer " + self.params["mcp_access_key"]}})
        if not wanted:
            return {}
        listed = self.client.call("GET", "/rest/credentials", query="includeData=true") or []
        result = {}
        for item in wanted:
            record = state["credentials"].get(item["name"])
            matches = [entry for entry in listed if entry.get("name") == item["name"] and entry.get("type") == item["type"]]
            matches.sort(key=lambda entry: (entry.get("id") != (record or {}).get("id"), entry.get("createdAt") or ""))
            if len(matches) > 1:
                self.module.warn("n8n holds %d %s credentials named %r; this role keeps %s and leaves the others."
                                 % (len(matches), item["type"], item["name"], matches[0]["id"]))
            found = matches[0] if matches else None
            action, reasons = plan_credential(item, found, record, state["salt"])
            entry_id = found["id"] if found else ""
            if action != "unchanged":
                self.changed = True
                if not self.check:
                    body = {"name": item["name"], "type": item["type"], "data": item["data"]}
                    if action == "create":
                        written = self.client.call("POST", "/rest/credentials", body)
                    else:
                        written = self.client.call("PATCH", "/rest/credentials/%s" % found["id"], body)
                    entry_id = written["id"]
                    state["credentials"][item["name"]] = {
                        "id": written["id"], "type": item["type"], "updated_at": written["updatedAt"],
                        "fingerprint": fingerprint(state["salt"], item["data"])}
            result[item["name"]] = {"id": entry_id, "type": item["type"],
                                    "action": {"create": "created", "update": "updated"}.get(action, action),
                                    "reasons": reasons}
        return result

    def run(self):
        state = self.read_state()
        if self.params["restoring"]:
            given = self.params["api_key"]
            kept = state.get("api_key") or {}
            self.module.exit_json(changed=False, api_key=given or kept.get("key") or "",
                                  api_key_source="given" if given else "stored", api_key_id="" if given else kept.get("id", ""),
                                  credentials={})
        before = json.dumps(state, sort_keys=True)
        self.login(state)
        try:
            key, source, key_id = self.api_key(state)
            credentials = self.credentials(state)
        except N8nError as exc:
            self.fail("n8n at %s: %s." % (self.params["url"], exc))
        if not self.check and json.dumps(state, sort_keys=True) != before:
            try:
                self.state_file.write(state)
            except (OSError, _safe_read.Refused) as exc:
                self.fail("Cannot write %s: %s." % (self.params["state_file"], exc))
        self.module.exit_json(changed=self.changed, api_key=key, api_key_source=source, api_key_id=key_id,
                              credentials=credentials)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            owner_email=dict(type="str", required=True),
            owner_password=dict(type="str", required=True, no_log=True),
            state_file=dict(type="path", required=True),
            api_key=dict(type="str", no_log=True),
            api_key_label=dict(type="str", default="homelab n8n-mcp", no_log=False),
            api_key_scopes=dict(type="list", elements="str", default=DEFAULT_SCOPES, no_log=False),
            ollama_url=dict(type="str", default=""),
            ollama_credential_name=dict(type="str", default="Ollama (homelab)"),
            mcp_access_key=dict(type="str", default="", no_log=True),
            mcp_credential_name=dict(type="str", default="MCP gateway (homelab)"),
            timeout=dict(type="int", default=30),
            restoring=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    Wiring(module).run()


# n8n-mcp 2.87.0 dist/services/n8n-api-client.js calls -> n8n 2.41.1 public API scopes (see api_key_scopes).
DEFAULT_SCOPES = [
    "workflow:list", "workflow:create", "workflow:read", "workflow:update", "workflow:delete", "workflow:move",
    "workflow:activate", "workflow:deactivate", "workflowTags:update", "execution:list", "execution:read",
    "execution:delete", "securityAudit:generate", "testRun:list", "testRun:read", "testRun:create", "testRun:cancel",
    "credential:list", "credential:read", "credential:create", "credential:update", "credential:delete", "tag:list",
    "tag:create", "tag:update", "tag:delete", "variable:list", "variable:create", "variable:update", "variable:delete",
    "dataTable:list", "dataTable:create", "dataTable:read", "dataTable:update", "dataTable:delete",
    "dataTableRow:read", "dataTableRow:create", "dataTableRow:update", "dataTableRow:upsert", "dataTableRow:delete",
    "folder:list", "folder:create", "folder:read", "folder:update", "folder:delete", "project:list",
]


if __name__ == "__main__":
    main()
