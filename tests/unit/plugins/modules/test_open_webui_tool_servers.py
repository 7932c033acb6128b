# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""open_webui_tool_servers against a server on 127.0.0.1 that answers with responses recorded from the real
Open-WebUI 0.12.4 (tests/unit/fixtures/open_webui/, keys and tokens replaced by placeholders).

The fake keeps the list of connections like Open-WebUI's config store: GET returns it, POST replaces it
(routers/configs.py, set_tool_servers_config).
"""

from __future__ import annotations

import copy
import json

import pytest
from open_webui_fake import SIGNED_IN, RecordedOpenWebUIHandler, serve

from ansible_collections.homelab.core.plugins.module_utils import _open_webui, _open_webui_api
from ansible_collections.homelab.core.plugins.modules import open_webui_tool_servers

PASSWORD = "Local-Admin-Pass-1"
ALPHA = {"id": "alpha", "name": "Alpha", "url": "http://127.0.0.1:18301/mcp", "key": "recorded-key-alpha"}
BETA = {"id": "beta", "name": "Beta", "url": "http://127.0.0.1:18302/mcp", "key": "recorded-key-beta"}


@pytest.fixture
def recorded(fixture_text):
    return lambda name: json.loads(fixture_text("open_webui", name))


class Handler(RecordedOpenWebUIHandler):
    password = PASSWORD

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self._got():
            return
        if self.path == "/api/v1/configs/tool_servers" and self._authorised():
            self._answer(200, {"TOOL_SERVER_CONNECTIONS": copy.deepcopy(self.state.connections)})

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self._posted()
        if body is SIGNED_IN:
            return
        if self.path == "/api/v1/configs/tool_servers" and self._authorised():
            self.state.connections = body["TOOL_SERVER_CONNECTIONS"]
            self._answer(200, {"TOOL_SERVER_CONNECTIONS": self.state.connections})
        elif self.path == "/api/v1/configs/tool_servers/verify" and self._authorised():
            good = body.get("key") in self.state.server_keys.get(body.get("url"), ())
            answer = self.state.recorded("verify_ok.json" if good else "verify_bad_key.json")
            self._answer(answer["status"], answer["body"])


class FakeOpenWebUI:
    def __init__(self, recorded):
        self.recorded = recorded
        self.connections = []
        self.requests = []
        self.server_keys = {ALPHA["url"]: {ALPHA["key"]}, BETA["url"]: {BETA["key"]}}

    def posts(self, path="/api/v1/configs/tool_servers"):
        return [body for method, where, body in self.requests if method == "POST" and where == path]


@pytest.fixture
def fake(recorded):
    yield from serve(Handler, FakeOpenWebUI(recorded))


def args(fake, connections, **extra):
    values = dict(url=fake.url, admin_email="admin@homelab.test", admin_password=PASSWORD,
                  connections=copy.deepcopy(connections))
    values.update(extra)
    return values


def no_secret(result):
    text = json.dumps(result)
    for secret in ("recorded-key", "recorded-token", PASSWORD, "rotated-key"):
        assert secret not in text


def ids(connections):
    return [_open_webui.connection_id(connection) for connection in connections]


def test_adds_every_server_once_in_the_ui_shape(fake, run_module, recorded):
    result = run_module(open_webui_tool_servers, args(fake, [ALPHA, BETA]))
    assert result["changed"] and result["added"] == ["homelab-alpha", "homelab-beta"]
    assert len(fake.posts()) == 1
    # What the module sent is what real Open-WebUI returned after the same run (recorded), less the
    # default that Open-WebUI's ToolServerConnection model adds (forward_cookies).
    assert [dict(c, forward_cookies=False) for c in fake.connections] == \
        recorded("get_two_managed.json")["body"]["TOOL_SERVER_CONNECTIONS"]
    no_secret(result)


def test_second_run_changes_nothing_and_writes_nothing(fake, run_module, recorded):
    fake.connections = recorded("get_with_user.json")["body"]["TOOL_SERVER_CONNECTIONS"]
    result = run_module(open_webui_tool_servers, args(fake, [ALPHA, BETA], _ansible_diff=True))
    assert not result["changed"] and not fake.posts()
    assert (result["added"], result["updated"], result["removed"]) == ([], {}, [])
    assert result["diff"]["before"] == result["diff"]["after"]
    no_secret(result)


def test_removing_a_server_removes_only_its_connection(fake, run_module, recorded):
    before = recorded("get_with_user.json")["body"]["TOOL_SERVER_CONNECTIONS"]
    fake.connections = copy.deepcopy(before)
    result = run_module(open_webui_tool_servers, args(fake, [ALPHA]))
    assert result["changed"] and result["removed"] == ["homelab-beta"]
    assert ids(fake.connections) == ["homelab-alpha", "my-own-beta"]
    # The hand-added connection is written back exactly as it was, key included.
    assert fake.connections[1] == before[2]
    assert [c["managed"] for c in result["connections"]] == [True, False]


def test_a_rotated_key_updates_the_connection_in_place(fake, run_module, recorded):
    fake.connections = recorded("get_with_user.json")["body"]["TOOL_SERVER_CONNECTIONS"]
    fake.connections[0]["config"]["function_name_filter_list"] = "echo"  # set by an admin in the UI
    rotated = dict(ALPHA, key="rotated-key-alpha")
    result = run_module(open_webui_tool_servers, args(fake, [rotated, BETA], _ansible_diff=True))
    assert result["changed"] and result["updated"] == {"homelab-alpha": ["key"]}
    assert fake.connections[0]["key"] == "rotated-key-alpha"
    assert fake.connections[0]["config"]["function_name_filter_list"] == "echo"
    assert ids(fake.connections) == ["homelab-alpha", "homelab-beta", "my-own-beta"]
    no_secret(result)


def test_check_mode_predicts_without_writing(fake, run_module, recorded):
    fake.connections = recorded("get_with_user.json")["body"]["TOOL_SERVER_CONNECTIONS"]
    before = copy.deepcopy(fake.connections)
    result = run_module(open_webui_tool_servers, args(fake, [dict(BETA, url="http://mcp-gateway:3302/mcp")],
                                                      _ansible_check_mode=True))
    assert result["changed"] and result["removed"] == ["homelab-alpha"]
    assert result["updated"] == {"homelab-beta": ["url"]}
    assert not fake.posts() and fake.connections == before


def test_duplicates_of_a_managed_id_are_removed(fake, run_module, recorded):
    managed = recorded("get_two_managed.json")["body"]["TOOL_SERVER_CONNECTIONS"]
    fake.connections = managed + [copy.deepcopy(managed[0])]
    result = run_module(open_webui_tool_servers, args(fake, [ALPHA, BETA]))
    assert result["changed"] and result["removed"] == ["homelab-alpha"]
    assert ids(fake.connections) == ["homelab-alpha", "homelab-beta"]


def test_a_non_mcp_connection_with_the_prefix_is_not_managed(fake, run_module, recorded):
    user = dict(recorded("get_with_user.json")["body"]["TOOL_SERVER_CONNECTIONS"][2], type="openapi")
    user["info"] = dict(user["info"], id="homelab-openapi")
    fake.connections = [user]
    result = run_module(open_webui_tool_servers, args(fake, []))
    assert not result["changed"] and fake.connections == [user]


def test_verify_lists_the_tools_open_webui_found(fake, run_module, recorded):
    fake.connections = recorded("get_two_managed.json")["body"]["TOOL_SERVER_CONNECTIONS"]
    result = run_module(open_webui_tool_servers, args(fake, [ALPHA, BETA], verify=True))
    names = [spec["name"] for spec in recorded("verify_ok.json")["body"]["specs"]]
    assert result["tools"] == {"homelab-alpha": names, "homelab-beta": names}
    assert not result["changed"]


def test_verify_failure_names_the_server_and_says_it_changed(fake, run_module):
    fake.server_keys[ALPHA["url"]] = {"another-key"}
    result = run_module(open_webui_tool_servers, args(fake, [ALPHA], verify=True))
    assert result["failed"] and result["changed"]
    assert "could not connect to MCP server homelab-alpha at http://127.0.0.1:18301/mcp" in result["msg"]
    assert "Failed to create MCP client" in result["msg"]
    no_secret(result)


def test_a_wrong_password_says_which_options_to_fix(fake, run_module):
    result = run_module(open_webui_tool_servers, args(fake, [ALPHA], admin_password="wrong"))
    assert result["failed"] and not fake.posts()
    assert "Cannot sign in to Open-WebUI" in result["msg"] and "admin_password" in result["msg"]
    assert "HTTP 400, The email or password provided is incorrect" in result["msg"]
    no_secret(result)


def test_unreachable_open_webui(run_module):
    result = run_module(open_webui_tool_servers, dict(url="http://127.0.0.1:9", admin_email="a@b.c",
                                                      admin_password=PASSWORD, connections=[ALPHA], timeout=5, wait=0))
    assert result["failed"] and "Cannot reach Open-WebUI at http://127.0.0.1:9" in result["msg"]


def test_the_sign_in_waits_while_open_webui_is_still_starting(monkeypatch):
    """Restarted on a new data directory, Open-WebUI resets connections until it has migrated its database."""
    answers = [_open_webui_api.OpenWebUIError("Cannot reach Open-WebUI"), (503, None),
               (200, {"token": "T", "role": "admin"})]
    clock = iter(range(0, 1000, 2))

    def call(_method, _path, _payload=None):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer
    api = _open_webui_api.OpenWebUI("http://127.0.0.1:3000", 5, True, wait=60, sleep=lambda _seconds: None,
                                    clock=lambda: next(clock))
    monkeypatch.setattr(api, "call", call)
    api.sign_in("admin@homelab.test", PASSWORD)
    assert api.token == "T" and answers == []
    # Past the wait, the error is the module's sentence.
    late = _open_webui_api.OpenWebUI("http://127.0.0.1:3000", 5, True, wait=0)

    def down(*_args):
        raise _open_webui_api.OpenWebUIError("down")
    monkeypatch.setattr(late, "call", down)
    with pytest.raises(_open_webui_api.OpenWebUIError):
        late.sign_in("admin@homelab.test", PASSWORD)


@pytest.mark.parametrize("bad, message", [
    (dict(ALPHA, id="a:b"), "must not contain ':'"),
    (dict(ALPHA, url="mcp-gateway:3302"), "url must start with http"),
    (dict(ALPHA, key=""), "has no key"),
])
def test_bad_connections_fail_before_any_request(fake, run_module, bad, message):
    result = run_module(open_webui_tool_servers, args(fake, [bad]))
    assert result["failed"] and message in result["msg"] and not fake.requests


def test_twice_the_same_id_fails(fake, run_module):
    result = run_module(open_webui_tool_servers, args(fake, [ALPHA, ALPHA]))
    assert result["failed"] and "given twice" in result["msg"] and not fake.requests


def test_access_grants_are_set_when_given_and_kept_when_not(fake, run_module, recorded):
    public = [{"principal_type": "user", "principal_id": "*", "permission": "read"}]
    fake.connections = recorded("get_two_managed.json")["body"]["TOOL_SERVER_CONNECTIONS"]
    result = run_module(open_webui_tool_servers, args(fake, [ALPHA, BETA], access_grants=public))
    assert result["updated"] == {"homelab-alpha": ["access_grants"], "homelab-beta": ["access_grants"]}
    assert all(c["config"]["access_grants"] == public for c in fake.connections)
    result = run_module(open_webui_tool_servers, args(fake, [ALPHA, BETA]))
    assert not result["changed"]


def test_one_key_for_every_connection(fake, run_module, recorded):
    fake.connections = recorded("get_two_managed.json")["body"]["TOOL_SERVER_CONNECTIONS"]
    bare = [dict((k, v) for k, v in server.items() if k != "key") for server in (ALPHA, BETA)]
    result = run_module(open_webui_tool_servers, args(fake, bare, key="rotated-key-all"))
    assert result["updated"] == {"homelab-alpha": ["key"], "homelab-beta": ["key"]}
    assert [c["key"] for c in fake.connections] == ["rotated-key-all"] * 2
    no_secret(result)


def sign_ins(fake):
    return [body for method, path, body in fake.requests if method == "POST" and path == "/api/v1/auths/signin"]


def test_a_kept_session_is_reused_so_runs_spend_no_sign_in(fake, run_module, tmp_path):
    """Open-WebUI 0.12.4 allows 15 sign-ins per email in 3 minutes; a converge, its idempotence run, a check and the
    tests' own sign-ins spent them. The token is kept root-only and reused while Open-WebUI accepts it."""
    session = tmp_path / "open-webui-session.json"
    run_module(open_webui_tool_servers, args(fake, [ALPHA], session_file=str(session)))
    assert len(sign_ins(fake)) == 1
    assert oct(session.stat().st_mode & 0o777) == "0o600"
    kept = json.loads(session.read_text())
    assert kept["signed_in_as"] == {"url": fake.url, "email": "admin@homelab.test"} and kept["token"]
    for _run in range(3):
        assert run_module(open_webui_tool_servers, args(fake, [ALPHA], session_file=str(session)))["changed"] is False
    assert len(sign_ins(fake)) == 1
    # A token Open-WebUI no longer accepts: one new sign-in, and the new token is kept.
    session.write_text(json.dumps(dict(kept, token="revoked")))
    run_module(open_webui_tool_servers, args(fake, [ALPHA], session_file=str(session)))
    assert len(sign_ins(fake)) == 2 and json.loads(session.read_text())["token"] == kept["token"]


def test_check_mode_keeps_no_session_and_a_planted_link_is_not_followed(fake, run_module, tmp_path):
    session = tmp_path / "open-webui-session.json"
    run_module(open_webui_tool_servers, args(fake, [ALPHA], session_file=str(session), _ansible_check_mode=True))
    assert not session.exists()
    target = tmp_path / "elsewhere"
    target.write_text("untouched")
    session.symlink_to(target)
    result = run_module(open_webui_tool_servers, args(fake, [ALPHA], session_file=str(session)))
    assert result["failed"] is True
    assert "session" in result["msg"] and target.read_text() == "untouched"


def test_too_many_sign_ins_are_waited_out(monkeypatch):
    answers = [(429, {"detail": "API rate limit exceeded"}), (200, {"token": "T", "role": "admin"})]
    slept = []
    clock = iter(range(0, 1000, 10))
    api = _open_webui_api.OpenWebUI("http://127.0.0.1:3000", 5, True, wait=180, sleep=slept.append,
                                    clock=lambda: next(clock))
    monkeypatch.setattr(api, "call", lambda *_args: answers.pop(0))
    api.sign_in("admin@homelab.test", PASSWORD)
    assert api.token == "T" and slept == [10]
