"""playbooks/models.yml for real, against the labelled Ollama stand-in (tests/stand-ins/stack/ollama).

The stand-in runs as `ollama serve` on a free port with its models in a temporary directory;
ansible-playbook runs from the venv on localhost, as a user would run it. What is asserted is what a
user sees: the recap's changed count, the models Ollama lists, and the sentence a bad entry fails with.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request

import pytest
from conftest import run_ollama_standin

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
STANDIN = os.path.join(ROOT, "tests", "stand-ins", "stack", "ollama", "ollama.py")
PLAYBOOK = os.path.join(ROOT, "playbooks", "models.yml")
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

pytestmark = pytest.mark.skipif(not os.path.exists(ANSIBLE_PLAYBOOK), reason="ansible-playbook is not in the venv")


@pytest.fixture
def ollama(tmp_path):
    for url in run_ollama_standin(tmp_path / "models", tmp_path):
        yield url, tmp_path


def installed(url):
    with urllib.request.urlopen(url + "/api/tags", timeout=5) as response:
        return sorted(model["name"] for model in json.load(response)["models"])


def play(ollama, check=False, **variables):
    tmp_path = ollama[1]
    url = ollama[0]
    # No disk check: it would ask the real registry for the manifest, and tests stay off the network.
    variables = dict({"ollama_models_url": url, "ollama_models_path": "",
                      "ansible_python_interpreter": sys.executable}, **variables)
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(variables))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0")
    command = [ANSIBLE_PLAYBOOK, PLAYBOOK, "-e", "@%s" % extra] + (["--check"] if check else [])
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    recap = re.search(r"localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", done.stdout)
    assert recap, done.stdout + done.stderr
    return {"ok": int(recap[1]), "changed": int(recap[2]), "failed": int(recap[4]), "rc": done.returncode,
            "stdout": done.stdout}


def test_first_run_pulls_second_run_changes_nothing_then_prune_removes_the_unlisted(ollama):
    url = ollama[0]
    models = ["llama3.2", "qwen2.5-coder:7b", {"name": "registry.ollama.ai/library/nomic-embed-text"}]

    checked = play(ollama, check=True, ollama_models=models)
    assert checked["rc"] == 0 and checked["changed"] == 1 and installed(url) == []

    first = play(ollama, ollama_models=models)
    assert first["rc"] == 0 and first["changed"] == 1
    assert installed(url) == ["llama3.2:latest", "nomic-embed-text:latest", "qwen2.5-coder:7b"]

    second = play(ollama, ollama_models=models)
    assert second["rc"] == 0 and second["changed"] == 0, second["stdout"]

    pruned = play(ollama, ollama_models=["llama3.2:latest"], ollama_models_prune=True)
    assert pruned["rc"] == 0 and pruned["changed"] == 1
    assert installed(url) == ["llama3.2:latest"]
    again = play(ollama, ollama_models=["llama3.2:latest"], ollama_models_prune=True)
    assert again["rc"] == 0 and again["changed"] == 0


def test_a_bad_entry_is_refused_before_any_model_changes(ollama):
    url = ollama[0]
    result = play(ollama, ollama_models=["llama3.2", {"name": "mistral", "tag": "7b"}])
    assert result["rc"] != 0 and result["failed"] == 1 and result["changed"] == 0
    assert "ollama_models entry 2" in result["stdout"] and "unknown key(s) tag" in result["stdout"]
    assert installed(url) == []


@pytest.fixture
def two_ollamas(tmp_path):
    """Two stand-ins, as the main stack publishes one Ollama per GPU, and the GPU decision of a host with two GPUs."""
    (tmp_path / "gpu0").mkdir()
    (tmp_path / "gpu1").mkdir()
    fact = tmp_path / "homelab_gpu.fact"
    fact.write_text(json.dumps({"mode": "required", "reservation": "cdi", "gpu_count": 2}))
    for first in run_ollama_standin(tmp_path / "gpu0" / "models", tmp_path / "gpu0"):
        for second in run_ollama_standin(tmp_path / "gpu1" / "models", tmp_path / "gpu1"):
            yield [first, second], tmp_path, str(fact)


def per_gpu_play(two_ollamas, **variables):
    urls, tmp_path, fact = two_ollamas
    ports = {"ollama_gpu0": int(urls[0].rsplit(":", 1)[1]), "ollama_gpu1": int(urls[1].rsplit(":", 1)[1])}
    return play(("unused", tmp_path), homelab_ollama_gpu_layout="per_gpu", homelab_gpu_fact_path=fact,
                main_stack_ports=ports, **variables)


def test_per_gpu_pulls_into_each_gpus_ollama_what_its_entries_name_and_prunes_each(two_ollamas):
    urls = two_ollamas[0]
    models = ["llama3.2", {"name": "qwen2.5-coder:7b", "instances": ["gpu1"]}]
    first = per_gpu_play(two_ollamas, ollama_models=models)
    assert first["rc"] == 0 and first["changed"] == 1, first["stdout"]
    assert "llama3.2:latest (present) on gpu0" in first["stdout"]
    assert installed(urls[0]) == ["llama3.2:latest"]
    assert installed(urls[1]) == ["llama3.2:latest", "qwen2.5-coder:7b"]
    again = per_gpu_play(two_ollamas, ollama_models=models)
    assert again["rc"] == 0 and again["changed"] == 0, again["stdout"]

    pruned = per_gpu_play(two_ollamas, ollama_models=[{"name": "llama3.2", "instances": ["gpu0"]}], ollama_models_prune=True)
    assert pruned["rc"] == 0 and pruned["changed"] == 1
    assert installed(urls[0]) == ["llama3.2:latest"] and installed(urls[1]) == []


def test_per_gpu_refuses_an_ollama_the_host_does_not_run_before_any_model_changes(two_ollamas):
    urls = two_ollamas[0]
    result = per_gpu_play(two_ollamas, ollama_models=["llama3.2", {"name": "mistral", "instances": ["gpu2"]}])
    assert result["rc"] != 0 and result["failed"] == 1 and result["changed"] == 0
    assert "ollama_models entry 2 (mistral:latest) names gpu2, which this host does not run: its Ollamas are gpu0, gpu1" \
        in " ".join(result["stdout"].split())
    assert installed(urls[0]) == [] and installed(urls[1]) == []
