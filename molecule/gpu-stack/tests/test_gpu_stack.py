"""Two recorded GPUs, one Ollama per GPU, the real Open-WebUI listing both, and the inference gate.

The GPUs, their driver and the toolkit are the gpu-sim stand-ins (tests/stand-ins/gpu/), and Ollama is
the stack stand-in (tests/stand-ins/stack/ollama/), which reports a loaded model wholly in VRAM only when
Docker handed its container a GPU (NVIDIA_VISIBLE_DEVICES from dockerd's nvidia device driver) unless a
test names another placement. Docker, compose, the device requests and Open-WebUI 0.12.4 are real.
"""

from __future__ import annotations

import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "integration"))
from compose_project import containers  # noqa: E402
from junit_changes import changed_tasks, latest_report  # noqa: E402
from playbook_runs import flat, recap_changed, run_site  # noqa: E402
import target_http  # noqa: E402

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
ROOT = "/opt/homelab"
PROJECT = "homelab"
ADMIN = {"email": "admin@homelab.test", "password": "Molecule-Admin-Pass-1"}
MODEL = "qwen2.5:0.5b"
# One instance per recorded GPU (tests/unit/fixtures/gpu/smi_rtx3090x2_query.stdout): name, device, port.
INSTANCES = {"ollama-gpu0": ("0", 11434), "ollama-gpu1": ("1", 11435)}


def inspect(host, container):
    return json.loads(host.check_output("docker inspect %s" % container))[0]


def offload(host, instance, choice):
    """Where the stand-in Ollama of ``instance`` puts the next model it loads (None: where Docker's GPU says)."""
    path = "%s/data/ollama/%s/models/standin-offload" % (ROOT, instance.replace("ollama-", ""))
    host.check_output("rm -f %s" % path if choice is None else "printf %s > %s" % (choice, path))
    # Unload the probe model, so the next generate loads it again with the new placement.
    port = INSTANCES[instance][1]
    target_http.call(host, "POST", "http://127.0.0.1:%d/api/generate" % port, {"model": MODEL, "keep_alive": 0})


def test_the_check_run_predicted_nothing(host):
    assert changed_tasks(latest_report(os.path.join(EPHEMERAL, "junit"))) == set()


def test_one_ollama_per_gpu_each_given_only_its_own_device(host):
    running = containers(host, PROJECT)
    assert {name for name in running if name.startswith("ollama")} == set(INSTANCES), sorted(running)
    for name, (device, port) in INSTANCES.items():
        assert running[name]["State"] == "running" and running[name]["Health"] == "healthy", running[name]
        details = inspect(host, running[name]["ID"])
        requests = details["HostConfig"]["DeviceRequests"]
        assert [request["DeviceIDs"] for request in requests] == [[device]], requests
        assert all(not request["Count"] for request in requests), requests
        # What dockerd's nvidia device driver put into the environment of the container's process (not into its
        # config, so not what `docker exec` gets): this GPU only.
        environ = host.check_output("docker exec %s cat /proc/1/environ" % running[name]["ID"]).split("\0")
        assert [entry for entry in environ if entry.startswith("NVIDIA_VISIBLE_DEVICES=")] == \
            ["NVIDIA_VISIBLE_DEVICES=" + device], environ
        # Its own port on loopback, its own model directory.
        bindings = details["HostConfig"]["PortBindings"]["11434/tcp"]
        assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(port)}], bindings
        mounts = {mount["Destination"]: mount["Source"] for mount in details["Mounts"]}
        assert mounts["/root/.ollama"] == "%s/data/ollama/gpu%s" % (ROOT, device), mounts
        # The probe model was pulled into each (it is one of ollama_models).
        status, tags = target_http.call(host, "GET", "http://127.0.0.1:%d/api/tags" % port)
        assert status == 200 and MODEL in [model["name"] for model in tags["models"]], tags


def test_open_webui_lists_both_backends(host):
    status, body = target_http.call(host, "POST", "http://127.0.0.1:3000/api/v1/auths/signin", ADMIN)
    assert status == 200, body
    status, config = target_http.call(host, "GET", "http://127.0.0.1:3000/ollama/config", token=body["token"])
    assert status == 200, config
    assert config["OLLAMA_BASE_URLS"] == ["http://ollama-gpu0:11434", "http://ollama-gpu1:11434"], config
    # Open-WebUI reaches each of them (its own /ollama/urls/<index> proxy of /api/version, admin only).
    for index in range(len(INSTANCES)):
        status, version = target_http.call(host, "GET", "http://127.0.0.1:3000/ollama/api/version/%d" % index,
                                           token=body["token"])
        assert status == 200 and version == {"version": "0.32.15"}, (index, status, version)


def test_health_shows_both_instances_and_the_gate_passes_on_each(host):
    rc, output = run_site(playbook=os.path.join("playbooks", "health.yml"))
    assert rc == 0, output
    folded = flat(output)
    for name in INSTANCES:
        assert re.search(r"\b%s\s+healthy\b" % re.escape(name), output), output
        assert "%s: %s: 100%% GPU" % (name, MODEL) in folded, folded
    assert recap_changed(output, host.backend.host) == 0


def test_a_partial_offload_fails_the_gate_naming_the_cause_and_auto_only_warns(host):
    offload(host, "ollama-gpu1", "partial")
    try:
        rc, output = run_site(playbook=os.path.join("playbooks", "health.yml"))
        folded = flat(output)
        assert rc != 0, output
        assert "partial_offload" in folded and "ollama-gpu1" in folded, folded
        assert "60.0% in VRAM" in folded, folded
        # The other GPU's instance still passed.
        assert "ok: [%s] => (item=ollama-gpu0)" % host.backend.host in folded, folded
        rc, output = run_site("-e", "homelab_gpu_mode=auto", playbook=os.path.join("playbooks", "health.yml"))
        assert rc == 0, output
        assert "partial_offload" in flat(output)
    finally:
        offload(host, "ollama-gpu1", None)


def test_without_its_gpu_the_model_runs_on_the_cpu_and_the_gate_says_so(host):
    """The stand-in's placement follows what Docker handed over: the same image and models started without the
    device request get no GPU, and the gate, asked about that container, fails naming the CPU."""
    image = inspect(host, containers(host, PROJECT)["ollama-gpu0"]["ID"])["Config"]["Image"]
    host.check_output("docker rm -f homelab-test-no-gpu >/dev/null 2>&1; docker run -d --name homelab-test-no-gpu "
                      "-p 127.0.0.1:11499:11434 -v %s/data/ollama/gpu0:/root/.ollama %s" % (ROOT, image))
    try:
        host.check_output("for i in $(seq 30); do docker exec homelab-test-no-gpu ollama list >/dev/null 2>&1 && exit 0; "
                          "sleep 1; done; exit 1")
        rc, output = run_site("-e", "ollama_gate_test_url=http://127.0.0.1:11499",
                              playbook=os.path.join("tests", "integration", "ollama_gate.yml"))
        assert rc != 0, output
        assert "cpu_only" in flat(output), output
    finally:
        host.run("docker rm -f homelab-test-no-gpu")


def test_back_to_shared_removes_the_extra_instance_and_keeps_its_models(host):
    rc, output = run_site("-e", "homelab_ollama_gpu_layout=shared")
    assert rc == 0, output
    running = containers(host, PROJECT)
    assert {name for name in running if name.startswith("ollama")} == {"ollama"}, sorted(running)
    # Every model directory stays on disk, the per-GPU ones included.
    for device in ("0", "1"):
        assert host.file("%s/data/ollama/gpu%s/models/manifests" % (ROOT, device)).is_directory
    status, body = target_http.call(host, "POST", "http://127.0.0.1:3000/api/v1/auths/signin", ADMIN)
    assert status == 200, body
    status, config = target_http.call(host, "GET", "http://127.0.0.1:3000/ollama/config", token=body["token"])
    assert config["OLLAMA_BASE_URLS"] == ["http://ollama:11434"], config
    # And back to one per GPU: the models are there again, nothing pulled twice.
    rc, output = run_site()
    assert rc == 0, output
    assert {name for name in containers(host, PROJECT) if name.startswith("ollama")} == set(INSTANCES)
    rc, output = run_site()
    assert rc == 0 and recap_changed(output, host.backend.host) == 0, output
