# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.homelab.core.plugins.filter.ollama_models_plan import ollama_models_plan


def test_strings_and_dicts_are_normalised_with_the_default_update():
    plan = ollama_models_plan(["llama3", {"name": "ns/m:7b", "state": "absent"}, {"name": "x", "update": False}],
                              update=True)
    assert plan == {"problem": "", "prune": [], "models": [
        {"name": "llama3:latest", "state": "present", "update": True},
        {"name": "ns/m:7b", "state": "absent", "update": True},
        {"name": "x:latest", "state": "present", "update": False},
    ]}


@pytest.mark.parametrize("models, words", [
    (["llama3", "bad name!"], ["ollama_models entry 2", "invalid model"]),
    ([{"name": "m", "tag": "7b"}], ["unknown key(s) tag"]),
    ([{"state": "absent"}], ["has no name"]),
    ([{"name": "m", "state": "latest"}], ["state 'latest'", "present or absent"]),
    ([{"name": "m", "update": "yes"}], ["update 'yes'", "true or false"]),
    ([42], ["neither a model name nor a dict"]),
    (["llama3", "registry.ollama.ai/library/llama3:latest"], ["lists llama3:latest twice (entries 1 and 2)"]),
    ("llama3", ["must be a list"]),
])
def test_a_bad_entry_is_one_sentence_naming_ollama_models(models, words):
    plan = ollama_models_plan(models)
    assert plan["models"] == [] and plan["problem"].startswith("ollama_models") and plan["problem"].endswith(".")
    for word in words:
        assert word in plan["problem"]


def test_prune_lists_installed_models_in_no_entry_whatever_the_spelling():
    installed = [{"name": "llama3:latest"}, {"name": "Mistral:7B"}, {"name": "ns/coder:7b"}, {"model": "old:1"}]
    plan = ollama_models_plan(["registry.ollama.ai/library/llama3", {"name": "mistral:7b", "state": "absent"}],
                              installed=installed)
    assert plan["prune"] == ["ns/coder:7b", "old:1"]
