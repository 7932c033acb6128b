"""playbooks/models.yml against the deployed Ollama (the labelled stand-in of tests/stand-ins/stack/ollama,
which answers /api/tags, a streamed /api/pull and /api/delete, and writes its manifests into the
data tree). The free-space check is off: it would ask registry.ollama.ai, which tests may not reach."""

from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "integration"))
from junit_changes import expected_changes  # noqa: E402
from playbook_runs import recap_changed, run_site  # noqa: E402

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
TARGET = "homelab-molecule-stack"
MODELS = "/opt/homelab/data/ollama/models/manifests/registry.ollama.ai/library"

pytestmark = pytest.mark.skipif(bool(expected_changes(EPHEMERAL)), reason="runs once, in the verify before the drift")


def models(*names, **extra):
    settings = dict({"ollama_models": list(names), "ollama_models_path": ""}, **extra)
    return run_site("-e", json.dumps(settings), playbook="playbooks/models.yml")


def installed(host):
    # The target has python3, not curl.
    return json.loads(host.check_output(
        "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:11434/api/tags').read().decode())\""))["models"]


def test_the_listed_models_are_pulled_once_and_unlisted_ones_pruned_only_when_asked(host):
    rc, output = models("llama3.2:3b", "nomic-embed-text")
    assert rc == 0, output
    assert recap_changed(output, TARGET) >= 1, output
    assert sorted(model["name"] for model in installed(host)) == ["llama3.2:3b", "nomic-embed-text:latest"]
    # The manifests are in the data tree, under the bind mount.
    assert host.file(MODELS + "/llama3.2/3b").exists

    rc, output = models("llama3.2:3b", "nomic-embed-text")
    assert rc == 0, output
    assert recap_changed(output, TARGET) == 0, output

    # Unlisted, without prune: kept. With prune: removed (check mode first changes nothing).
    rc, output = models("llama3.2:3b")
    assert rc == 0 and recap_changed(output, TARGET) == 0, output
    assert len(installed(host)) == 2
    rc, output = run_site("--check", "-e", json.dumps({"ollama_models": ["llama3.2:3b"], "ollama_models_path": "",
                                                       "ollama_models_prune": True}), playbook="playbooks/models.yml")
    assert rc == 0 and recap_changed(output, TARGET) >= 1, output
    assert len(installed(host)) == 2
    rc, output = models("llama3.2:3b", ollama_models_prune=True)
    assert rc == 0 and recap_changed(output, TARGET) >= 1, output
    assert [model["name"] for model in installed(host)] == ["llama3.2:3b"]
    rc, output = models("llama3.2:3b", ollama_models_prune=True)
    assert rc == 0 and recap_changed(output, TARGET) == 0, output


def test_a_bad_model_entry_is_refused_before_anything_changes(host):
    before = installed(host)
    rc, output = models("llama3.2:3b", {"name": "qwen3:8b", "state": "gone"})
    assert rc != 0, output
    assert recap_changed(output, TARGET) == 0, output
    folded = " ".join(output.split())
    assert "ollama_models entry 2 (" in folded and "has state 'gone'; use present or absent." in folded
    assert installed(host) == before
