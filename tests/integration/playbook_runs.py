"""Run the project's site.yml against a Molecule target from a testinfra suite.

Used for negative converges: a bad input must fail with one clear sentence and
change nothing on the host.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
# Colour codes, in case something still forces colour on.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


def run_site(*extra_args, playbook="site.yml"):
    """Run ansible-playbook with Molecule's inventory; return (rc, combined output, without colour)."""
    # Molecule sets ANSIBLE_FORCE_COLOR=1 when its own output is coloured (TERM=xterm*),
    # and that wins over ANSIBLE_NOCOLOR: colour codes would split the recap line.
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    command = [
        "ansible-playbook",
        "--inventory", os.environ["MOLECULE_INVENTORY_FILE"],
        os.path.join(PROJECT, playbook),
    ] + list(extra_args)
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
    return completed.returncode, ANSI_ESCAPE.sub("", completed.stdout + completed.stderr)


def recap_changed(output, host):
    """The `changed=N` count from the play recap for host."""
    match = re.search(r"^%s\s+:.*\bchanged=(\d+)" % re.escape(host), output, re.MULTILINE)
    if match is None:
        raise AssertionError("no play recap for %s in:\n%s" % (host, output))
    return int(match.group(1))


def flat(output):
    """The output with every run of white space made one space (the YAML result format folds long messages)."""
    return " ".join(output.split())


def assert_refused(rc, output, host, *sentences):
    """A bad-input run failed, said each sentence, and changed nothing; return its folded output."""
    assert rc != 0, output
    folded = flat(output)
    for sentence in sentences:
        assert sentence in folded
    assert recap_changed(output, host) == 0
    return folded


def gpu_facts(*extra_args):
    """Run tests/integration/gpu_facts.yml; return (rc, output, the GPU facts it printed or None)."""
    rc, output = run_site(*extra_args, playbook=os.path.join("tests", "integration", "gpu_facts.yml"))
    match = re.search(r"HOMELAB_TEST_GPU_FACTS=(\{[^}]*\})", output)
    return rc, output, json.loads(match.group(1)) if match else None
