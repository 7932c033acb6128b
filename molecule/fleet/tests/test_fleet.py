"""A fleet from one inventory: one control host and two GPU nodes, CPU-only, after site.yml.

Each host runs what its group places on it; Open-WebUI on the control host lists both nodes'
Ollama; a GPU node's Ollama answers the control host on its private address and refuses every
other host (the other GPU node and this machine), by the DOCKER-USER chain; drift in that chain and
an unrequired, stopped firewall unit are repaired; the firewall fails closed (its rules outlive a
stopped Docker, and Docker does not start while the unit fails); a Docker daemon that skips
DOCKER-USER is refused; switched off, the firewall is taken away; the health table has a row for
every host. Ollama and Open-WebUI are the labelled stand-ins of tests/stand-ins/stack.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request

import pytest
import testinfra

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "integration"))
from compose_project import containers  # noqa: E402
from playbook_runs import assert_refused, recap_changed, run_site  # noqa: E402

CONTROL, GPU_1, GPU_2 = "homelab-fleet-control", "homelab-fleet-gpu-1", "homelab-fleet-gpu-2"
ADDRESS = {CONTROL: "10.213.77.10", GPU_1: "10.213.77.11", GPU_2: "10.213.77.12"}
OLLAMA_PORT = 11434
SCRIPT = "/usr/local/lib/homelab/fleet-firewall.sh"
UNIT = "homelab-fleet-firewall.service"
REQUIRED_LINK = "/etc/systemd/system/docker.service.requires/" + UNIT
WANTED_LINK = "/etc/systemd/system/docker.service.wants/" + UNIT
# The role's fleet_firewall.yml alone, in seconds where site.yml takes a minute.
FIREWALL_PLAYBOOK = os.path.join("molecule", "fleet", "fleet_firewall.yml")
# Every test is driven from the control host; the others are reached with node().
testinfra_hosts = ["ansible://" + CONTROL]

# Runs in a target (python3, no curl): prints the HTTP status and body, or the error's class name.
FETCH = """
import sys, urllib.request
headers = {"Authorization": "Bearer " + sys.argv[3]} if len(sys.argv) > 3 else {}
try:
    with urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers=headers), timeout=float(sys.argv[2])) as response:
        print(response.status, response.read().decode())
except Exception as error:
    print("ERROR", type(error).__name__, error)
"""


def node(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def fetch(name, url, timeout=4, token=None):
    """(status or "ERROR", rest) of a GET of url from inside target name, with a bearer token if given."""
    # testinfra quotes each argument for the shell.
    if token:
        output = node(name).check_output("python3 -c %s %s %s %s", FETCH, url, str(timeout), token)
    else:
        output = node(name).check_output("python3 -c %s %s %s", FETCH, url, str(timeout))
    status, rest = (output.split(" ", 1) + [""])[:2]
    return status, rest


SIGN_IN = """
import json, sys, urllib.request
body = json.dumps({"email": sys.argv[1], "password": sys.argv[2]}).encode()
request = urllib.request.Request("http://127.0.0.1:3000/api/v1/auths/signin", data=body,
                                 headers={"Content-Type": "application/json"})
print(json.loads(urllib.request.urlopen(request, timeout=30).read())["token"])
"""


def open_webui_token(name):
    """A session of Open-WebUI's admin (molecule.yml), whose API answers only signed-in users."""
    return node(name).check_output("python3 -c %s %s %s", SIGN_IN, "admin@homelab-fleet.test", "Fleet-Admin-Pass-1")


def ollama_url(name, path="/api/version"):
    return "http://%s:%d%s" % (ADDRESS[name], OLLAMA_PORT, path)


def test_each_host_runs_what_its_group_places_on_it():
    control = containers(node(CONTROL))
    # No tunnel token in this inventory, so no cloudflared.
    assert sorted(control) == sorted(["open-webui", "n8n", "coolify-db", "coolify-redis", "coolify-realtime", "coolify"])
    for name in (GPU_1, GPU_2):
        assert sorted(containers(node(name))) == ["ollama"], name
    for name in (CONTROL, GPU_1, GPU_2):
        for service, entry in containers(node(name)).items():
            assert (entry["State"], entry["Health"]) == ("running", "healthy"), (name, service)


def test_gpu_nodes_publish_ollama_on_loopback_and_their_private_address_only():
    for name in (GPU_1, GPU_2):
        host = node(name)
        assert host.socket("tcp://127.0.0.1:%d" % OLLAMA_PORT).is_listening, name
        assert host.socket("tcp://%s:%d" % (ADDRESS[name], OLLAMA_PORT)).is_listening, name
        assert not host.socket("tcp://0.0.0.0:%d" % OLLAMA_PORT).is_listening, name
    # The control host publishes nothing of Ollama.
    assert not node(CONTROL).socket("tcp://%s:%d" % (ADDRESS[CONTROL], OLLAMA_PORT)).is_listening


def test_only_the_control_host_reaches_a_gpu_nodes_ollama():
    for name in (GPU_1, GPU_2):
        status, body = fetch(CONTROL, ollama_url(name))
        assert status == "200" and '"version"' in body, (name, status, body)
        # Loopback on the node itself stays open (probes, playbooks/models.yml).
        assert fetch(name, "http://127.0.0.1:%d/api/version" % OLLAMA_PORT)[0] == "200", name
    # The other GPU node is outside control: its packets are dropped, so the connection times out.
    for source, target in ((GPU_2, GPU_1), (GPU_1, GPU_2)):
        status, rest = fetch(source, ollama_url(target), timeout=3)
        assert status == "ERROR" and "timed out" in rest, (source, target, status, rest)


def test_this_machine_is_refused_as_well():
    """The machine running the tests is on the fleet's network (its gateway), and outside control."""
    for name in (GPU_1, GPU_2):
        with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)) as raised:
            urllib.request.urlopen(ollama_url(name), timeout=3)
        assert "timed out" in str(raised.value), raised.value


def chain(name):
    return node(name).check_output("iptables -w -S HOMELAB-FLEET").splitlines()


def forward_rules(name):
    return [rule for rule in node(name).check_output("iptables -w -S FORWARD").splitlines() if rule.startswith("-A ")]


def test_the_firewall_chain_lets_in_the_control_host_and_drops_the_rest():
    for name in (GPU_1, GPU_2):
        assert chain(name) == ["-N HOMELAB-FLEET", "-A HOMELAB-FLEET -s %s/32 -j RETURN" % ADDRESS[CONTROL],
                               "-A HOMELAB-FLEET -j DROP"], name
        # Jumped to first, for the connections to the published address and port only.
        jump = [rule for rule in node(name).check_output("iptables -w -S DOCKER-USER").splitlines() if rule.startswith("-A ")][0]
        for part in ("--ctorigdst %s " % ADDRESS[name], "--ctorigdstport %d" % OLLAMA_PORT, "--ctdir ORIGINAL",
                     "-j HOMELAB-FLEET"):
            assert part in jump, (name, jump)
        # DOCKER-USER is traversed: FORWARD jumps to it first.
        assert forward_rules(name)[0] == "-A FORWARD -j DOCKER-USER", name
        # Applied before Docker starts, and Docker requires it (fail closed).
        host = node(name)
        assert host.file(REQUIRED_LINK).is_symlink and not host.file(WANTED_LINK).exists, name
        assert UNIT in host.check_output("systemctl show -p Requires --value docker.service").split(), name
        assert "docker.service" in host.check_output("systemctl show -p Before --value %s", UNIT).split(), name
        assert not host.check_output("systemctl show -p ExecStop --value %s", UNIT), name


def test_open_webui_lists_both_gpu_nodes_models():
    rc, output = run_site(playbook="playbooks/models.yml")
    assert rc == 0, output
    # The control host runs no Ollama, so it pulls nothing.
    assert recap_changed(output, CONTROL) == 0, output

    token = open_webui_token(CONTROL)
    status, body = fetch(CONTROL, "http://127.0.0.1:3000/ollama/config", token=token)
    assert status == "200", body
    assert json.loads(body)["OLLAMA_BASE_URLS"] == [ollama_url(GPU_1, ""), ollama_url(GPU_2, "")]
    status, body = fetch(CONTROL, "http://127.0.0.1:3000/ollama/api/tags", timeout=10, token=token)
    assert status == "200", body
    # Upstream's merge: each model names the backends (by index in OLLAMA_BASE_URLS) that have it.
    listed = {model["name"]: model["urls"] for model in json.loads(body)["models"]}
    assert listed == {"llama3.2:3b": [0], "nomic-embed-text:latest": [1]}, listed

    rc, output = run_site(playbook="playbooks/models.yml")
    assert rc == 0, output
    assert [recap_changed(output, name) for name in (CONTROL, GPU_1, GPU_2)] == [0, 0, 0], output


def test_firewall_drift_is_predicted_then_repaired_alone():
    gpu_1 = node(GPU_1)
    allow = next(rule for rule in chain(GPU_1) if rule.endswith("-j RETURN"))
    gpu_1.check_output("iptables -w " + allow.replace("-A ", "-D ", 1))
    assert fetch(CONTROL, ollama_url(GPU_1), timeout=3)[0] == "ERROR"

    rc, output = run_site("--check", "--diff", "--limit", GPU_1)
    assert rc == 0, output
    assert recap_changed(output, GPU_1) == 1, output
    assert allow not in chain(GPU_1)

    rc, output = run_site("--limit", GPU_1)
    assert rc == 0, output
    assert recap_changed(output, GPU_1) == 1, output
    assert allow in chain(GPU_1)
    assert fetch(CONTROL, ollama_url(GPU_1))[0] == "200"


def test_an_earlier_versions_stopped_unit_is_predicted_then_required_and_started():
    # As an earlier version left it: wanted by Docker (not required) and stopped. Stopping the unit
    # takes no rule away (no ExecStop), so Ollama stays closed; the repair is the relink and the start.
    gpu_1 = node(GPU_1)
    rules = chain(GPU_1)
    gpu_1.check_output(
        "systemctl disable --quiet %s && mkdir -p /etc/systemd/system/docker.service.wants"
        " && ln -s /etc/systemd/system/%s %s && systemctl daemon-reload && systemctl stop %s", UNIT, UNIT, WANTED_LINK, UNIT)
    assert gpu_1.check_output("systemctl is-active docker.service") == "active"
    assert gpu_1.run("systemctl is-active %s", UNIT).stdout.strip() == "inactive"
    assert chain(GPU_1) == rules
    assert fetch(GPU_2, ollama_url(GPU_1), timeout=3)[0] == "ERROR"

    rc, output = run_site("--check", "--diff", "--limit", GPU_1)
    assert rc == 0, output
    assert recap_changed(output, GPU_1) == 2, output
    assert gpu_1.file(WANTED_LINK).is_symlink and not gpu_1.file(REQUIRED_LINK).exists

    rc, output = run_site("--limit", GPU_1)
    assert rc == 0, output
    assert recap_changed(output, GPU_1) == 2, output
    assert gpu_1.check_output("systemctl is-active %s", UNIT) == "active"
    assert gpu_1.file(REQUIRED_LINK).is_symlink and not gpu_1.file(WANTED_LINK).exists
    assert UNIT in gpu_1.check_output("systemctl show -p Requires --value docker.service").split()
    assert chain(GPU_1) == rules
    assert fetch(CONTROL, ollama_url(GPU_1))[0] == "200"
    assert fetch(GPU_2, ollama_url(GPU_1), timeout=3)[0] == "ERROR"


def wait_for_healthy_ollama(name, timeout=180):
    deadline = time.monotonic() + timeout
    while True:
        entry = containers(node(name)).get("ollama", {})
        if (entry.get("State"), entry.get("Health")) == ("running", "healthy"):
            return
        assert time.monotonic() < deadline, (name, entry)
        time.sleep(2)


def assert_ollama_answers_nobody(name, other):
    for source in (CONTROL, other):
        status, rest = fetch(source, ollama_url(name), timeout=3)
        assert status == "ERROR", (source, name, status, rest)
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        urllib.request.urlopen(ollama_url(name), timeout=3)


def test_the_firewall_fails_closed():
    """Docker's stop takes no rule away, and Docker does not start (so publishes nothing) while the unit fails."""
    gpu_1 = node(GPU_1)
    try:
        gpu_1.check_output("systemctl stop docker.socket docker.service")
        rules = gpu_1.check_output("iptables -w -S").splitlines()
        assert "-N HOMELAB-FLEET" in rules, rules
        assert "-A HOMELAB-FLEET -j DROP" in rules, rules
        assert any(rule.startswith("-A DOCKER-USER ") and rule.endswith("-j HOMELAB-FLEET") for rule in rules), rules
        assert "-A FORWARD -j DOCKER-USER" in rules, rules

        # A boot (no rule at all) with a firewall that fails: Docker must not come up without it.
        gpu_1.check_output("cp -p %s %s.orig && echo 'exit 1' > %s", SCRIPT, SCRIPT, SCRIPT)
        gpu_1.check_output("iptables -w -F && iptables -w -X && iptables -w -t nat -F && iptables -w -t nat -X")
        assert gpu_1.run("systemctl restart %s", UNIT).rc != 0
        assert gpu_1.run("systemctl restart docker.service").rc != 0
        assert gpu_1.run("systemctl is-active docker.service").stdout.strip() != "active"
        assert gpu_1.run("systemctl is-failed %s", UNIT).stdout.strip() == "failed"
        assert_ollama_answers_nobody(GPU_1, GPU_2)
    finally:
        gpu_1.run("test ! -f %s.orig || mv %s.orig %s", SCRIPT, SCRIPT, SCRIPT)
        gpu_1.run("systemctl reset-failed %s", UNIT)
        gpu_1.check_output("systemctl start docker.socket docker.service")
        wait_for_healthy_ollama(GPU_1)
    assert gpu_1.check_output("systemctl is-active %s", UNIT) == "active"
    assert forward_rules(GPU_1)[0] == "-A FORWARD -j DOCKER-USER"
    assert fetch(CONTROL, ollama_url(GPU_1))[0] == "200"
    assert fetch(GPU_2, ollama_url(GPU_1), timeout=3)[0] == "ERROR"


def test_a_docker_daemon_that_skips_docker_user_is_refused():
    gpu_2 = node(GPU_2)
    daemon_json = gpu_2.file("/etc/docker/daemon.json").content_string
    try:
        for key, value in (("iptables", False), ("firewall-backend", "nftables")):
            # dockerd is not restarted: only the file says it, as after an edit by hand.
            gpu_2.check_output("printf %%s %s > /etc/docker/daemon.json", json.dumps(dict(json.loads(daemon_json), **{key: value})))
            rc, output = run_site("--limit", GPU_2, playbook=FIREWALL_PLAYBOOK)
            assert_refused(rc, output, GPU_2, "(%s in /etc/docker/daemon.json" % json.dumps({key: value})[1:-1],
                           "homelab_fleet_firewall cannot keep other hosts from Ollama on %s:%d" % (ADDRESS[GPU_2], OLLAMA_PORT))
    finally:
        gpu_2.check_output("printf %%s %s > /etc/docker/daemon.json", daemon_json)
    assert gpu_2.file("/etc/docker/daemon.json").content_string == daemon_json


def test_switched_off_the_firewall_is_taken_away_and_switched_on_it_is_back():
    gpu_2 = node(GPU_2)
    off = ("--limit", GPU_2, "--extra-vars", '{"homelab_fleet_firewall": false}')
    try:
        rc, output = run_site(*off, playbook=FIREWALL_PLAYBOOK)
        assert rc == 0, output
        assert recap_changed(output, GPU_2) == 1, output
        assert "homelab_fleet_firewall is false" in output, output
        assert not gpu_2.file(SCRIPT).exists and not gpu_2.file("/etc/systemd/system/" + UNIT).exists
        assert not gpu_2.file(REQUIRED_LINK).exists
        assert "HOMELAB-FLEET" not in gpu_2.check_output("iptables -w -S")
        # Docker went on running (stopping the unit no longer required stopped nothing else).
        assert gpu_2.check_output("systemctl is-active docker.service") == "active"
        assert fetch(GPU_1, ollama_url(GPU_2))[0] == "200"

        rc, output = run_site(*off, playbook=FIREWALL_PLAYBOOK)
        assert rc == 0, output
        assert recap_changed(output, GPU_2) == 0, output
    finally:
        rc, output = run_site("--limit", GPU_2, playbook=FIREWALL_PLAYBOOK)
        assert rc == 0, output
    assert gpu_2.file(REQUIRED_LINK).is_symlink
    assert gpu_2.check_output("systemctl is-active %s", UNIT) == "active"
    assert fetch(CONTROL, ollama_url(GPU_2))[0] == "200"
    assert fetch(GPU_1, ollama_url(GPU_2), timeout=3)[0] == "ERROR"


def test_the_health_table_has_a_row_for_every_host():
    rc, output = run_site(playbook="playbooks/health.yml")
    assert rc == 0, output
    assert "NO REPORT" not in output, output
    rows = re.findall(r"^\s*-?\s*\"?(homelab-fleet-\S+)\s+(\S+)\s+healthy\b", output, re.MULTILINE)
    assert {(CONTROL, "open-webui"), (CONTROL, "n8n"), (CONTROL, "coolify"), (GPU_1, "ollama"), (GPU_2, "ollama")} <= set(rows), output
    assert not {row for row in rows if row[0] != CONTROL and row[1] != "ollama"}, rows
