# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""n8n_wiring against a fake n8n whose answers are the real n8n 2.41.1 responses in fixtures/n8n/."""

from __future__ import annotations

import copy
import itertools
import json
import os
import stat

import pytest

from ansible_collections.homelab.core.plugins.module_utils import _n8n
from ansible_collections.homelab.core.plugins.modules import n8n_wiring

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "fixtures", "n8n")
PASSWORD = "Wiring-Owner-Pass-1"
MCP_KEY = "molecule-mcp-access-key-0123456789abcdef"


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        return json.load(handle)


class FakeN8n:
    """Keys and credentials kept like n8n keeps them; each answer is a recorded response with the ids swapped."""

    def __init__(self):
        self.keys = {}
        self.credentials = {}
        self.calls = []
        self.ids = ("id%014d" % n for n in itertools.count(1))
        self.clock = ("2026-12-06T10:%02d:00.000Z" % n for n in itertools.count(1))
        self.sessions_forgotten = False

    def answer(self, name, body=None, cookie=None):
        recorded = fixture(name)
        headers = {"set-cookie": [recorded["set_cookie"]]} if "set_cookie" in recorded else {}
        return recorded["status"], headers, json.dumps(body if body is not None else recorded["body"])

    def send(self, method, url, headers, data):
        path = url.split("127.0.0.1:5678", 1)[1]
        body = json.loads(data) if data else None
        self.calls.append((method, path))
        if path == "/rest/login" and method == "GET":
            # The session check (AuthController.currentUser): the recorded session is accepted until n8n forgets it.
            accepted = headers.get("Cookie") == "n8n-auth=RECORDED.SESSION.TOKEN" and not self.sessions_forgotten
            return self.answer("login_200.json") if accepted else self.answer("login_401.json")
        if path == "/rest/login":
            return self.answer("login_200.json" if body["password"] == PASSWORD else "login_401.json")
        if path.startswith("/api/v1/"):
            key = headers.get("X-N8N-API-KEY")
            entry = next((item for item in self.keys.values() if item["raw"] == key), None)
            name = "public_workflows_401.json" if entry is None else (
                "public_workflows_200.json" if "workflow:list" in entry["scopes"] else "public_workflows_403.json")
            return self.answer(name)
        assert headers.get("Cookie") == "n8n-auth=RECORDED.SESSION.TOKEN"
        if path == "/rest/api-keys" and method == "GET":
            listed = fixture("api_keys_list_200.json")["body"]
            template = listed["data"]["items"][0]
            listed["data"]["items"] = [dict(copy.deepcopy(template), id=key_id, label=item["label"], scopes=item["scopes"])
                                       for key_id, item in self.keys.items()]
            return self.answer("api_keys_list_200.json", listed)
        if path == "/rest/api-keys" and method == "POST":
            assert body["expiresAt"] is None and body["label"]
            if any(item["label"] == body["label"] for item in self.keys.values()):
                # n8n 2.41.1 keeps API key labels unique (a unique index on the user and label).
                return 500, {}, json.dumps({"code": 0, "message": "There is already an entry with this name"})
            created = fixture("api_keys_create_200.json")["body"]
            key_id = next(self.ids)
            raw = "raw-key-" + key_id
            self.keys[key_id] = {"raw": raw, "label": body["label"], "scopes": body["scopes"]}
            created["data"].update(id=key_id, rawApiKey=raw, scopes=body["scopes"], label=body["label"])
            return self.answer("api_keys_create_200.json", created)
        if path.startswith("/rest/api-keys/"):
            key_id = path.rsplit("/", 1)[1]
            if method == "DELETE":
                del self.keys[key_id]
            else:
                self.keys[key_id].update(label=body["label"], scopes=body["scopes"])
            return 200, {}, json.dumps({"data": {"success": True}})
        if path == "/rest/credentials?includeData=true":
            listed = fixture("credentials_list_include_data_200.json")["body"]
            templates = {entry["type"]: entry for entry in listed["data"]}
            listed["data"] = [dict(copy.deepcopy(templates[item["type"]]), id=cred_id, name=item["name"],
                                   updatedAt=item["updatedAt"], data=self.redacted(item))
                              for cred_id, item in self.credentials.items()]
            return self.answer("credentials_list_include_data_200.json", listed)
        if path == "/rest/credentials" and method == "POST":
            cred_id = next(self.ids)
            self.credentials[cred_id] = dict(body, updatedAt=next(self.clock))
            name = "credentials_create_%s_200.json" % ("ollama" if body["type"] == "ollamaApi" else "mcp")
            created = fixture(name)["body"]
            created["data"].update(id=cred_id, name=body["name"], updatedAt=self.credentials[cred_id]["updatedAt"])
            return self.answer(name, created)
        if path.startswith("/rest/credentials/") and method == "PATCH":
            cred_id = path.rsplit("/", 1)[1]
            assert set(body) == {"name", "type", "data"}
            self.credentials[cred_id] = dict(body, updatedAt=next(self.clock))
            patched = fixture("credentials_patch_mcp_200.json")["body"]
            patched["data"].update(id=cred_id, name=body["name"], type=body["type"],
                                   updatedAt=self.credentials[cred_id]["updatedAt"])
            return self.answer("credentials_patch_mcp_200.json", patched)
        raise AssertionError("unexpected %s %s" % (method, path))

    @staticmethod
    def redacted(item):
        return {field: (n8n_wiring.BLANK if field in ("value", "apiKey") and value else value)
                for field, value in item["data"].items()}

    def writes(self):
        return [call for call in self.calls if call[0] != "GET" and call[1] != "/rest/login"]


@pytest.fixture
def n8n(monkeypatch):
    fake = FakeN8n()
    monkeypatch.setattr(_n8n.Client, "_send", lambda self, method, url, headers, data: fake.send(method, url, headers, data))
    return fake


@pytest.fixture
def wire(run_module, tmp_path):
    state = tmp_path / "secrets" / "n8n-api-key.json"
    state.parent.mkdir(mode=0o700)

    def _wire(**args):
        params = {"url": "http://127.0.0.1:5678", "owner_email": "owner@homelab.test", "owner_password": PASSWORD,
                  "state_file": str(state), "ollama_url": "http://ollama:11434", "mcp_access_key": MCP_KEY}
        params.update(args)
        return run_module(n8n_wiring, params)
    _wire.state = state
    return _wire


def test_first_run_creates_the_key_and_both_credentials_and_a_second_run_changes_nothing(n8n, wire):
    first = wire()
    assert first["failed"] is False and first["changed"] is True
    assert first["api_key_source"] == "created" and first["api_key"] == n8n.keys[first["api_key_id"]]["raw"]
    assert n8n.keys[first["api_key_id"]]["scopes"] == n8n_wiring.DEFAULT_SCOPES
    assert {name: entry["action"] for name, entry in first["credentials"].items()} == {
        "Ollama (homelab)": "created", "MCP gateway (homelab)": "created"}
    stored = {item["name"]: item["data"] for item in n8n.credentials.values()}
    assert stored == {"Ollama (homelab)": {"baseUrl": "http://ollama:11434"},
                      "MCP gateway (homelab)": {"name": "Authorization", "value": "Bearer " + MCP_KEY}}
    st = os.lstat(wire.state)
    assert stat.S_IMODE(st.st_mode) == 0o600
    text = wire.state.read_text()
    assert first["api_key"] in text and MCP_KEY not in text and PASSWORD not in text

    n8n.calls.clear()
    second = wire()
    assert second["changed"] is False and second["api_key_source"] == "stored"
    assert second["api_key"] == first["api_key"]
    assert all(entry["action"] == "unchanged" for entry in second["credentials"].values())
    assert n8n.writes() == []
    assert wire.state.read_text() == text


def test_check_mode_predicts_and_writes_neither_n8n_nor_the_file(n8n, wire):
    result = wire(_ansible_check_mode=True)
    assert result["changed"] is True and result["api_key"] == "" and result["api_key_source"] == "created"
    assert {entry["action"] for entry in result["credentials"].values()} == {"created"}
    assert n8n.writes() == [] and not wire.state.exists()


def test_a_rotated_mcp_key_updates_only_that_credential(n8n, wire):
    wire()
    n8n.calls.clear()
    checked = wire(mcp_access_key="rotated-mcp-key-0123456789abcdef0123", _ansible_check_mode=True)
    assert checked["changed"] is True and checked["credentials"]["MCP gateway (homelab)"]["action"] == "updated"
    assert n8n.writes() == []
    result = wire(mcp_access_key="rotated-mcp-key-0123456789abcdef0123")
    assert result["credentials"]["MCP gateway (homelab)"]["action"] == "updated"
    assert result["credentials"]["MCP gateway (homelab)"]["reasons"] == ["its value changed in the inventory"]
    assert result["credentials"]["Ollama (homelab)"]["action"] == "unchanged"
    assert [call[0] for call in n8n.writes()] == ["PATCH"]
    assert wire(mcp_access_key="rotated-mcp-key-0123456789abcdef0123")["changed"] is False


def test_an_edit_in_n8n_is_undone_and_a_users_own_credential_is_never_touched(n8n, wire):
    first = wire()
    ollama_id = first["credentials"]["Ollama (homelab)"]["id"]
    n8n.credentials[ollama_id].update(data={"baseUrl": "http://elsewhere:11434"}, updatedAt="2026-12-06T11:00:00.000Z")
    n8n.credentials["mine"] = {"name": "My Ollama", "type": "ollamaApi", "data": {"baseUrl": "http://mine:1"},
                               "updatedAt": "2026-12-06T11:00:00.000Z"}
    result = wire()
    assert result["credentials"]["Ollama (homelab)"]["reasons"] == [
        "its baseUrl differs", "it was edited in n8n since this role wrote it"]
    assert n8n.credentials[ollama_id]["data"] == {"baseUrl": "http://ollama:11434"}
    assert n8n.credentials["mine"]["data"] == {"baseUrl": "http://mine:1"}
    # An edit of the secret alone shows only in updatedAt; it is rewritten too.
    mcp_id = first["credentials"]["MCP gateway (homelab)"]["id"]
    n8n.credentials[mcp_id].update(data={"name": "Authorization", "value": "Bearer typed-by-hand"},
                                   updatedAt="2026-12-06T11:30:00.000Z")
    again = wire()
    assert again["credentials"]["MCP gateway (homelab)"]["reasons"] == ["it was edited in n8n since this role wrote it"]
    assert n8n.credentials[mcp_id]["data"]["value"] == "Bearer " + MCP_KEY


def test_a_key_deleted_in_n8n_is_replaced_and_a_given_key_wins(n8n, wire):
    first = wire()
    del n8n.keys[first["api_key_id"]]
    replaced = wire()
    assert replaced["changed"] is True and replaced["api_key_source"] == "created"
    assert replaced["api_key"] != first["api_key"] and list(n8n.keys) == [replaced["api_key_id"]]
    # An under-scoped kept key gets its scopes back in place.
    n8n.keys[replaced["api_key_id"]]["scopes"] = ["tag:list"]
    rescoped = wire()
    assert rescoped["changed"] is True and rescoped["api_key"] == replaced["api_key"]
    assert n8n.keys[replaced["api_key_id"]]["scopes"] == n8n_wiring.DEFAULT_SCOPES
    # A vault key: used as given, and the role's own key is deleted.
    n8n.keys["vault"] = {"raw": "vault-key", "label": "by hand", "scopes": ["workflow:list"]}
    given = wire(api_key="vault-key")
    assert (given["api_key"], given["api_key_source"], given["changed"]) == ("vault-key", "given", True)
    assert list(n8n.keys) == ["vault"] and "api_key" not in json.loads(wire.state.read_text())
    assert wire(api_key="vault-key")["changed"] is False


def test_a_given_key_n8n_refuses_fails_naming_the_variable(n8n, wire):
    result = wire(api_key="not-a-key")
    assert result["failed"] is True
    assert "mcp_stack_secrets.n8n_api_key" in result["msg"] and "401" in result["msg"]
    assert "not-a-key" not in json.dumps(result)


def test_a_wrong_password_fails_naming_the_variables_and_not_the_password(n8n, wire):
    result = wire(owner_password="Wrong-Pass-1")
    assert result["failed"] is True
    assert result["msg"] == ("n8n at http://127.0.0.1:5678 refused to sign in its owner (Wrong username or password. "
                             "Do you have caps lock on?): check main_stack_n8n_owner_email and "
                             "main_stack_n8n_owner_password.")
    assert not wire.state.exists()


def test_a_planted_link_at_the_state_file_is_not_followed(n8n, wire, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("{}")
    wire.state.symlink_to(target)
    result = wire()
    assert result["failed"] is True and "symbolic link" in result["msg"]
    assert target.read_text() == "{}"


def test_a_later_run_reuses_the_session_and_signs_in_again_only_when_n8n_forgot_it(n8n, wire):
    wire()
    assert json.loads(wire.state.read_text())["session"] == "RECORDED.SESSION.TOKEN"
    n8n.calls.clear()
    assert wire()["changed"] is False
    assert ("POST", "/rest/login") not in n8n.calls and ("GET", "/rest/login") in n8n.calls
    n8n.sessions_forgotten = True
    n8n.calls.clear()
    assert wire()["changed"] is False
    assert ("POST", "/rest/login") in n8n.calls


def test_a_key_of_the_roles_label_unknown_to_the_state_file_is_made_again(n8n, wire):
    """A lost state file, or n8n's database restored from an older backup: the label is the role's, the secret gone."""
    first = wire()
    wire.state.unlink()
    again = wire()
    assert again["changed"] is True and again["api_key_source"] == "created"
    assert again["api_key"] != first["api_key"] and list(n8n.keys) == [again["api_key_id"]]
    assert wire()["changed"] is False


def test_while_a_restore_converges_the_stored_key_is_returned_and_nothing_is_written(n8n, wire):
    first = wire()
    state = wire.state.read_text()
    n8n.keys.clear()
    n8n.credentials.clear()
    n8n.calls.clear()
    restoring = wire(restoring=True)
    assert (restoring["changed"], restoring["api_key"], restoring["api_key_source"]) == (False, first["api_key"], "stored")
    assert n8n.calls == [] and wire.state.read_text() == state
