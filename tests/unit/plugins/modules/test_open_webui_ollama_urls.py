# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""open_webui_ollama_urls against a server on 127.0.0.1 that answers as the real Open-WebUI 0.12.4 did.

Recorded from Open-WebUI 0.12.4 (the PyPI wheel, `open-webui serve` on 127.0.0.1 with its admin from WEBUI_ADMIN_*,
started with OLLAMA_BASE_URLS=http://ollama-gpu0:11434;http://ollama-gpu1:11434): `GET /ollama/config`
(ollama_config_two.json), `POST /ollama/config/update` (ollama_config_update.json: configs of URLs past the list are
dropped), the same GET after a restart with that environment (ollama_config_after_restart.json: the stored list wins
over the environment), and an update without ENABLE_OLLAMA_API (ollama_config_update_no_enable.json: it stores null).
The fake keeps the config as routers/ollama.py does.
"""

from __future__ import annotations

import copy
import json

import pytest
from open_webui_fake import SIGNED_IN, RecordedOpenWebUIHandler, serve

from ansible_collections.homelab.core.plugins.module_utils._open_webui import ollama_plan
from ansible_collections.homelab.core.plugins.modules import open_webui_ollama_urls

PASSWORD = "Local-Admin-Pass-1"
SHARED = ["http://ollama:11434"]
PER_GPU = ["http://ollama-gpu0:11434", "http://ollama-gpu1:11434"]


@pytest.fixture
def recorded(fixture_text):
    return lambda name: json.loads(fixture_text("open_webui", name))


def test_the_recordings_show_why_the_module_exists(recorded):
    """Restarted with another OLLAMA_BASE_URLS, Open-WebUI keeps the stored list; an update stores what it gets."""
    assert recorded("ollama_config_two.json")["body"]["OLLAMA_BASE_URLS"] == PER_GPU
    assert recorded("ollama_config_after_restart.json")["body"]["OLLAMA_BASE_URLS"] == SHARED
    assert recorded("ollama_config_update.json")["body"]["OLLAMA_API_CONFIGS"] == {"0": {"prefix_id": "kept"}}
    assert recorded("ollama_config_update_no_enable.json")["body"]["ENABLE_OLLAMA_API"] is None


class Handler(RecordedOpenWebUIHandler):
    password = PASSWORD

    def do_GET(self):  # noqa: N802 - http.server's naming
        if self._got():
            return
        if self.path == "/ollama/config" and self._authorised():
            self._answer(200, copy.deepcopy(self.state.config))

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self._posted()
        if body is SIGNED_IN:
            return
        if self.path == "/ollama/config/update" and self._authorised():
            # update_config: configs only for the listed URLs' indexes; every field stored as given.
            valid = set(str(index) for index in range(len(body["OLLAMA_BASE_URLS"])))
            self.state.config = {"ENABLE_OLLAMA_API": body.get("ENABLE_OLLAMA_API"),
                                 "OLLAMA_BASE_URLS": body["OLLAMA_BASE_URLS"],
                                 "OLLAMA_API_CONFIGS": dict((key, value) for key, value in body["OLLAMA_API_CONFIGS"].items()
                                                            if key in valid)}
            self._answer(200, self.state.config)


class FakeOpenWebUI:
    def __init__(self, recorded):
        self.recorded = recorded
        self.config = copy.deepcopy(recorded("ollama_config_two.json")["body"])
        self.requests = []

    def updates(self):
        return [body for method, path, body in self.requests if method == "POST" and path == "/ollama/config/update"]


@pytest.fixture
def fake(recorded):
    yield from serve(Handler, FakeOpenWebUI(recorded))


def args(fake, urls, **extra):
    return dict(dict(url=fake.url, admin_email="admin@homelab.test", admin_password=PASSWORD, urls=list(urls), wait=0),
                **extra)


def test_back_to_one_ollama_the_per_gpu_urls_go_and_a_rerun_changes_nothing(fake, run_module):
    result = run_module(open_webui_ollama_urls, args(fake, SHARED, _ansible_diff=True))
    assert result["changed"] and not result["failed"]
    assert (result["urls"], result["added"], result["removed"]) == (SHARED, SHARED, PER_GPU)
    assert result["diff"] == {"before": {"urls": PER_GPU}, "after": {"urls": SHARED}}
    assert fake.config == {"ENABLE_OLLAMA_API": True, "OLLAMA_BASE_URLS": SHARED, "OLLAMA_API_CONFIGS": {}}
    assert PASSWORD not in json.dumps(result)
    again = run_module(open_webui_ollama_urls, args(fake, SHARED))
    assert not again["changed"] and len(fake.updates()) == 1


def test_check_mode_reads_and_writes_nothing(fake, run_module):
    result = run_module(open_webui_ollama_urls, args(fake, SHARED, _ansible_check_mode=True))
    assert result["changed"] and fake.updates() == [] and fake.config["OLLAMA_BASE_URLS"] == PER_GPU


def test_an_admins_own_connection_and_its_settings_stay(fake, run_module):
    fake.config = {"ENABLE_OLLAMA_API": False, "OLLAMA_BASE_URLS": ["http://ollama:11434", "http://10.0.0.5:11434"],
                   "OLLAMA_API_CONFIGS": {"0": {"prefix_id": "old"}, "1": {"prefix_id": "mine"}}}
    result = run_module(open_webui_ollama_urls, args(fake, PER_GPU))
    assert result["changed"] and result["removed"] == SHARED
    assert fake.config == {"ENABLE_OLLAMA_API": False,
                           "OLLAMA_BASE_URLS": ["http://10.0.0.5:11434"] + PER_GPU,
                           "OLLAMA_API_CONFIGS": {"0": {"prefix_id": "mine"}}}


def test_a_wrong_password_is_one_sentence_and_nothing_is_written(fake, run_module):
    result = run_module(open_webui_ollama_urls, dict(args(fake, SHARED), admin_password="Wrong-Pass-1"))
    assert result["failed"] and "Cannot sign in to Open-WebUI" in result["msg"] and "Wrong-Pass-1" not in result["msg"]
    assert fake.updates() == []


def test_unreachable_open_webui(run_module):
    result = run_module(open_webui_ollama_urls, dict(url="http://127.0.0.1:9", admin_email="a@b.c", admin_password=PASSWORD,
                                                     urls=SHARED, timeout=5, wait=0))
    assert result["failed"] and "Cannot reach Open-WebUI at http://127.0.0.1:9" in result["msg"]


def test_a_url_without_a_scheme_fails_before_any_request(fake, run_module):
    result = run_module(open_webui_ollama_urls, args(fake, ["ollama:11434"]))
    assert result["failed"] and "must start with http://" in result["msg"] and fake.requests == []


@pytest.mark.parametrize("stored, wanted, urls, removed", [
    # Nothing to do: the list of the first start is the wanted one.
    (PER_GPU, PER_GPU, PER_GPU, []),
    # A fleet's node URLs are not the stack's own services: kept, the wanted ones appended.
    (["http://10.0.0.11:11434"], SHARED, ["http://10.0.0.11:11434"] + SHARED, []),
    # A duplicate goes.
    (SHARED + SHARED, SHARED, SHARED, SHARED),
    (["http://ollama-gpu3:11434/", "https://my-ollama.example:443"], [], ["https://my-ollama.example:443"],
     ["http://ollama-gpu3:11434/"]),
])
def test_the_plan(stored, wanted, urls, removed):
    config, _added, gone = ollama_plan({"OLLAMA_BASE_URLS": stored}, wanted)
    assert config["OLLAMA_BASE_URLS"] == urls and gone == removed and config["ENABLE_OLLAMA_API"] is True
