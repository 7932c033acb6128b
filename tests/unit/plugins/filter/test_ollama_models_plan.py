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


# --- Several Ollamas (homelab_ollama_gpu_layout per_gpu) and the inference gate's model ---------------------

SHARED = [{"name": "ollama", "url": "http://127.0.0.1:11434", "models_path": "/d/ollama/models"}]
PER_GPU = [{"name": "gpu0", "url": "http://127.0.0.1:11434", "models_path": "/d/ollama/gpu0/models"},
           {"name": "gpu1", "url": "http://127.0.0.1:11435", "models_path": ""}]


def test_an_entry_may_name_the_ollamas_that_hold_it_and_is_pulled_into_each():
    plan = ollama_models_plan(["qwen2.5:0.5b", {"name": "llama3.2:3b", "instances": ["gpu1"]},
                               {"name": "old", "state": "absent"}], instances=PER_GPU)
    assert plan["models"][1] == {"name": "llama3.2:3b", "state": "present", "update": False, "instances": ["gpu1"]}
    assert [(pull["name"], pull["state"], pull["instance"], pull["url"], pull["models_path"]) for pull in plan["pulls"]] == [
        ("qwen2.5:0.5b", "present", "gpu0", "http://127.0.0.1:11434", "/d/ollama/gpu0/models"),
        ("qwen2.5:0.5b", "present", "gpu1", "http://127.0.0.1:11435", ""),
        ("llama3.2:3b", "present", "gpu1", "http://127.0.0.1:11435", ""),
        ("old:latest", "absent", "gpu0", "http://127.0.0.1:11434", "/d/ollama/gpu0/models"),
        ("old:latest", "absent", "gpu1", "http://127.0.0.1:11435", ""),
    ]
    assert plan["notes"] == [] and plan["problem"] == ""


def test_one_ollama_holds_every_entry_and_the_run_says_the_instances_do_not_apply():
    plan = ollama_models_plan(["a", {"name": "b", "instances": ["gpu1"]}], instances=SHARED)
    assert [(pull["name"], pull["instance"]) for pull in plan["pulls"]] == [("a:latest", "ollama"), ("b:latest", "ollama")]
    assert plan["notes"] == ["ollama_models entry 2 (b:latest) names instances gpu1, but this host runs one Ollama, which "
                             "holds every listed model."]


def test_an_ollama_this_host_does_not_run_is_refused_before_any_model_changes():
    plan = ollama_models_plan(["a", {"name": "b", "instances": ["gpu0", "gpu3"]}], instances=PER_GPU)
    assert plan["pulls"] == [] and plan["problem"] == (
        "ollama_models entry 2 (b:latest) names gpu3, which this host does not run: its Ollamas are gpu0, gpu1; name only "
        "those, or leave instances out.")


@pytest.mark.parametrize("instances, words", [
    ("gpu0", ["has instances 'gpu0'", "gpu0, gpu1, ..."]),
    ([], ["has instances []"]),
    (["GPU1"], ["has instances ['GPU1']"]),
    (["gpu01"], ["has instances ['gpu01']"]),
    (["ollama"], ["has instances ['ollama']"]),
    (["gpu0", "gpu0"], ["names an instance twice"]),
])
def test_instances_must_be_gpu_names(instances, words):
    plan = ollama_models_plan([{"name": "m", "instances": instances}])
    assert plan["models"] == [] and plan["problem"].startswith("ollama_models entry 1")
    for word in words:
        assert word in plan["problem"]


def test_the_probe_model_must_be_a_present_entry_on_every_ollama():
    assert ollama_models_plan(["qwen2.5:0.5b"], probe_model="library/qwen2.5:0.5b")["problem"] == ""
    assert ollama_models_plan(["a"], probe_model="")["problem"] == ""
    missing = ollama_models_plan(["a", {"name": "qwen2.5:0.5b", "state": "absent"}], probe_model="qwen2.5:0.5b")["problem"]
    assert missing == ("ollama_gpu_probe_model (qwen2.5:0.5b) is not one of ollama_models' present entries (a:latest), and "
                       "the inference gate loads it but never pulls it; add it to ollama_models, or set "
                       "ollama_gpu_probe_model to one of those.")
    only = ollama_models_plan([{"name": "qwen2.5:0.5b", "instances": ["gpu0"]}], probe_model="qwen2.5:0.5b")["problem"]
    assert only.startswith("ollama_gpu_probe_model (qwen2.5:0.5b) is listed in ollama_models only for gpu0")
    bad = ollama_models_plan(["a"], probe_model="bad name!")["problem"]
    assert bad.startswith("ollama_gpu_probe_model ('bad name!'): model name 'bad name!' has an invalid model")
    assert bad.endswith("give a model name that ollama_models lists.")


def test_prune_removes_from_each_ollama_what_no_entry_lists_for_it():
    answers = [{"item": PER_GPU[0], "json": {"models": [{"name": "a:latest"}, {"name": "b:latest"}, {"name": "c:1"}]}},
               {"item": PER_GPU[1], "json": {"models": [{"name": "b:latest"}]}}]
    plan = ollama_models_plan(["a", {"name": "b", "instances": ["gpu1"]}], installed_on=answers)
    assert plan["removals"] == [{"name": "b:latest", "instance": "gpu0", "url": "http://127.0.0.1:11434"},
                                {"name": "c:1", "instance": "gpu0", "url": "http://127.0.0.1:11434"}]
    # One Ollama holds every entry, whatever instances they name.
    shared = ollama_models_plan(["a", {"name": "b", "instances": ["gpu1"]}],
                                installed_on=[{"item": SHARED[0], "json": {"models": [{"name": "b:latest"}, {"name": "z:1"}]}}])
    assert shared["removals"] == [{"name": "z:1", "instance": "ollama", "url": "http://127.0.0.1:11434"}]
