"""Shared fixtures for the homelab.core unit tests.

The collection is importable as ``ansible_collections.homelab.core`` because
``make setup`` links the repository into ``collections/`` and ``pytest.ini``
puts that folder on ``sys.path``.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from ansible.module_utils.testing import patch_module_args

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


class ModuleExit(Exception):
    """Raised instead of ``sys.exit`` so a test can read the module result."""

    def __init__(self, result):
        super().__init__(result)
        self.result = result


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    kwargs["failed"] = False
    raise ModuleExit(kwargs)


def _fail_json(self, msg, **kwargs):
    kwargs.setdefault("changed", False)
    kwargs["failed"] = True
    kwargs["msg"] = msg
    raise ModuleExit(kwargs)


@pytest.fixture
def run_module(monkeypatch):
    """Run a module's ``main()`` with arguments; return its result dict.

    ``exit_json``/``fail_json`` are patched so the result comes back as a dict
    with ``failed`` set, instead of being printed and exiting the process.
    Pass ``_ansible_check_mode=True`` or ``_ansible_diff=True`` in ``args`` to
    select check mode or diff mode.
    """
    from ansible.module_utils import basic

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)

    def _run(module, args):
        with patch_module_args(args):
            with pytest.raises(ModuleExit) as raised:
                module.main()
        result = raised.value.result
        # Every result must be serialisable, exactly as Ansible would need it.
        json.dumps(result)
        return result

    return _run


@pytest.fixture
def fixture_text():
    """Read a recorded output from ``tests/unit/fixtures``."""

    def _read(*parts):
        with open(os.path.join(FIXTURES, *parts), encoding="utf-8") as handle:
            return handle.read()

    return _read


# Make sure a missing collection link fails loudly rather than as ImportError noise.
if not os.path.isdir(os.path.join(os.path.dirname(__file__), "..", "..", "collections", "ansible_collections", "homelab", "core")):
    sys.exit("collections/ansible_collections/homelab/core is missing: run `make setup` first.")


def run_ollama_standin(models, log_dir, **env):
    """Run the labelled Ollama stand-in on a free loopback port until the generator is closed; yields its URL."""
    import socket
    import subprocess
    import time
    import urllib.request

    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    environment = dict(os.environ, OLLAMA_HOST="127.0.0.1:%d" % port, OLLAMA_MODELS=str(models),
                       PYTHONPATH=os.path.join(root, "tests", "stand-ins", "stack", "common"), **env)
    with open(os.path.join(str(log_dir), "ollama.log"), "wb") as log:
        process = subprocess.Popen([sys.executable, os.path.join(root, "tests", "stand-ins", "stack", "ollama", "ollama.py"),
                                    "serve"], env=environment, stdout=log, stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d" % port
    for _attempt in range(100):
        try:
            urllib.request.urlopen(url + "/api/version", timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
