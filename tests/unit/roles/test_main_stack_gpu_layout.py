"""homelab_ollama_gpu_layout and Ollama's memory settings, through the roles' own definition and Jinja.

tests/unit/roles/playbooks/render_main_stack.yml runs on localhost with ansible-playbook from the venv: it
imports the main stack's definition (which reads the GPU decision from the file homelab_gpu_fact_path names,
as on a host), plans the stack with the test's own secrets, and writes the file tree the engine would write
(compose file, env files, data tree), the probes and the Ollamas the ollama role pulls into. What is asserted
is what a host would get: the compose services and their GPU reservations, ports and mounts, Open-WebUI's
backends, the env files, and the sentence a bad setting is refused with.

tests/unit/fixtures/compose/main-stack-before-per-gpu.json is the same render made at commit 66b9527, before
any of this existed: a host left at the defaults must get the very same files (a re-run of site.yml on a
converged host then changes nothing). Image pins are left out of the comparison. A later, deliberate change of what
a default host gets re-records it: the `files` and `probes` that render() writes, per reservation, with its secrets.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
PLAYBOOK = os.path.join(ROOT, "tests", "unit", "roles", "playbooks", "render_main_stack.yml")
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
with open(os.path.join(ROOT, "tests", "unit", "fixtures", "compose", "main-stack-before-per-gpu.json"), encoding="utf-8") as handle:
    BEFORE = json.load(handle)

pytestmark = pytest.mark.skipif(not os.path.exists(ANSIBLE_PLAYBOOK), reason="ansible-playbook is not in the venv")

COMPOSE = "/opt/homelab/docker-compose.yml"


def render(tmp_path, decision, reservation, check=False, **variables):
    """(rc, output, plan): the playbook's run for a host whose recorded GPU decision is ``decision``."""
    fact = tmp_path / "homelab_gpu.fact"
    fact.write_text(json.dumps(decision))
    output = tmp_path / "plan.json"
    settings = dict({"homelab_gpu_fact_path": str(fact), "homelab_test_output": str(output),
                     "homelab_test_persisted": BEFORE["secrets"], "homelab_test_reservation": reservation,
                     "homelab_test_check": check, "ansible_python_interpreter": sys.executable}, **variables)
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(settings))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    done = subprocess.run([ANSIBLE_PLAYBOOK, PLAYBOOK, "-e", "@%s" % extra], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180, check=False)
    plan = json.loads(output.read_text()) if output.exists() else None
    return done.returncode, done.stdout + done.stderr, plan


def files(plan):
    return {entry["path"]: entry for entry in plan["files"]}


def compose(plan):
    return yaml.safe_load(files(plan)[COMPOSE]["content"])


def env_file(plan, service):
    text = files(plan)["/opt/homelab/env/%s.env" % service]["content"]
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def without_pins(entry):
    """A file entry with the image references left out: a pin moves without this feature's say."""
    entry = dict(entry)
    for key in ("content", "secret_content"):
        if isinstance(entry.get(key), str):
            entry[key] = re.sub(r"(?m)^(\s+image: ).*$", r"\1<pinned>", entry[key])
    return entry


@pytest.mark.parametrize("reservation, decision, layout", [
    ("none", {"mode": "auto", "reservation": "none", "gpu_count": 0}, "shared"),
    # Two GPUs, shared (the default): the per-GPU Ollamas are known but off, which writes nothing.
    ("nvidia", {"mode": "auto", "reservation": "nvidia", "gpu_count": 2}, "shared"),
    # per_gpu on one GPU falls back to the one Ollama, exactly as before.
    ("cdi", {"mode": "required", "reservation": "cdi", "gpu_count": 1}, "per_gpu"),
])
def test_a_host_at_the_defaults_gets_the_files_it_had_before(tmp_path, reservation, decision, layout):
    rc, output, plan = render(tmp_path, decision, reservation, homelab_ollama_gpu_layout=layout)
    assert rc == 0, output
    before = {entry["path"]: entry for entry in BEFORE[reservation]["files"]}
    now = files(plan)
    assert [path for path in before if path not in now] == []
    for path, entry in before.items():
        assert without_pins(now[path]) == without_pins(entry), path
    # Anything new only removes files an earlier per_gpu run may have left (the env of ollama-gpu0, ...).
    new = [entry for path, entry in now.items() if path not in before]
    assert all(entry["state"] == "absent" and "-gpu" in entry["path"] for entry in new), new
    assert plan["probes"] == BEFORE[reservation]["probes"]
    assert plan["layout"]["layout"] == "shared" and plan["ollama_instances"][0]["name"] == "ollama"
    if layout == "per_gpu":
        assert plan["layout"]["reason"] == "this host has 1 GPU"


@pytest.mark.parametrize("reservation, device_ids", [
    ("nvidia", [{"driver": "nvidia", "device_ids": ["0"], "capabilities": ["gpu"]},
                {"driver": "nvidia", "device_ids": ["1"], "capabilities": ["gpu"]}]),
    ("cdi", [{"driver": "cdi", "device_ids": ["nvidia.com/gpu=0"], "capabilities": ["gpu"]},
             {"driver": "cdi", "device_ids": ["nvidia.com/gpu=1"], "capabilities": ["gpu"]}]),
])
def test_per_gpu_on_two_recorded_gpus_runs_one_ollama_on_each(tmp_path, reservation, device_ids):
    rc, output, plan = render(
        tmp_path, {"mode": "required", "reservation": reservation, "gpu_count": 2}, reservation,
        homelab_ollama_gpu_layout="per_gpu", main_stack_ollama_keep_alive="30m", main_stack_ollama_flash_attention=True,
        ollama_models=["qwen2.5:0.5b", {"name": "llama3.2:3b", "instances": ["gpu1"]}])
    assert rc == 0, output
    services = compose(plan)["services"]
    assert "ollama" not in services
    for index in (0, 1):
        service = services["ollama-gpu%d" % index]
        # Only its own GPU, on its own port and data directory.
        assert service["deploy"]["resources"]["reservations"]["devices"] == [device_ids[index]]
        assert service["ports"] == ["127.0.0.1:%d:11434" % (11434 + index)]
        assert service["volumes"] == ["/opt/homelab/data/ollama/gpu%d:/root/.ollama" % index]
        assert service["env_file"] == ["env/ollama-gpu%d.env" % index]
        assert env_file(plan, "ollama-gpu%d" % index) == {"OLLAMA_KEEP_ALIVE": "30m", "OLLAMA_FLASH_ATTENTION": "true"}
    # Open-WebUI still gets every GPU (its embeddings), waits for both and offers both.
    assert services["open-webui"]["deploy"]["resources"]["reservations"]["devices"][0].get("count", "all") == "all" \
        or services["open-webui"]["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["nvidia.com/gpu=all"]
    assert services["open-webui"]["depends_on"] == {"ollama-gpu0": {"condition": "service_healthy"},
                                                    "ollama-gpu1": {"condition": "service_healthy"}}
    webui = env_file(plan, "open-webui")
    assert webui["OLLAMA_BASE_URLS"] == "http://ollama-gpu0:11434;http://ollama-gpu1:11434"
    assert webui["OLLAMA_BASE_URL"] == "http://ollama-gpu0:11434"
    assert env_file(plan, "n8n")["HOMELAB_OLLAMA_URL"] == "http://ollama-gpu0:11434"
    # The shared Ollama's directory (and models) stay; each instance has its own beside them.
    tree = files(plan)
    for path in ("/opt/homelab/data/ollama", "/opt/homelab/data/ollama/gpu0", "/opt/homelab/data/ollama/gpu1"):
        assert tree[path]["state"] == "directory"
    assert tree["/opt/homelab/env/ollama.env"]["state"] == "absent"
    assert [probe for probe in plan["probes"] if "ollama" in probe["service"]] == [
        {"service": "ollama-gpu0", "url": "http://127.0.0.1:11434/api/version"},
        {"service": "ollama-gpu1", "url": "http://127.0.0.1:11435/api/version"}]
    # The ollama role pulls into each, as the stack publishes them; llama3.2 only into gpu1.
    assert [(item["name"], item["url"], item["models_path"]) for item in plan["ollama_instances"]] == [
        ("gpu0", "http://127.0.0.1:11434", "/opt/homelab/data/ollama/gpu0/models"),
        ("gpu1", "http://127.0.0.1:11435", "/opt/homelab/data/ollama/gpu1/models")]
    assert [(pull["name"], pull["instance"]) for pull in plan["models"]["pulls"]] == [
        ("qwen2.5:0.5b", "gpu0"), ("qwen2.5:0.5b", "gpu1"), ("llama3.2:3b", "gpu1")]


def test_bad_ollama_settings_are_refused_by_the_check_naming_each_variable(tmp_path):
    rc, output, _plan = render(
        tmp_path, {"mode": "auto", "reservation": "cdi", "gpu_count": 2}, "cdi", check=True,
        homelab_ollama_gpu_layout="per_gpu", main_stack_ollama_keep_alive="5 minutes",
        main_stack_ollama_max_loaded_models=-1, main_stack_ollama_num_parallel="two",
        main_stack_ollama_flash_attention="maybe", main_stack_ollama_sched_spread=True,
        main_stack_ports={"ollama_gpu1": 5678},
        ollama_models=["qwen2.5:0.5b"], ollama_gpu_probe_model="llama3.2:1b")
    assert rc != 0
    folded = " ".join(output.split())
    for sentence in (
        "main_stack_ollama_keep_alive ('5 minutes') is not a duration Ollama reads",
        "main_stack_ollama_max_loaded_models (-1) must be a whole number of 0 or more",
        "main_stack_ollama_num_parallel ('two') must be a whole number of 0 or more",
        "main_stack_ollama_flash_attention ('maybe') must be true or false",
        "main_stack_ollama_sched_spread spreads a model over the GPUs one Ollama sees, but homelab_ollama_gpu_layout "
        "per_gpu gives each Ollama one GPU",
        # The recorded decision says two GPUs, so the check sees ollama-gpu1 on n8n's port.
        "main_stack_ports.ollama_gpu1 and main_stack_ports.n8n publish the same host port 5678",
        "ollama_gpu_probe_model (llama3.2:1b) is not one of ollama_models' present entries (qwen2.5:0.5b)",
    ):
        assert sentence in folded, sentence


def test_an_unknown_layout_is_refused_by_the_check(tmp_path):
    rc, output, _plan = render(tmp_path, {"mode": "auto", "reservation": "none", "gpu_count": 0}, "none", check=True,
                               homelab_ollama_gpu_layout="per-gpu")
    assert rc != 0
    assert "homelab_ollama_gpu_layout is 'per-gpu', which role homelab does not know; choose one of shared, per_gpu." \
        in " ".join(output.split())
