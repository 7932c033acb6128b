"""The MCP stack's pins: base images and package versions, as roles/mcp_stack/defaults/main.yml ships them."""

from __future__ import annotations

import os
import re

import yaml

HERE = os.path.dirname(__file__)
with open(os.path.join(HERE, "..", "..", "..", "roles", "mcp_stack", "defaults", "main.yml"), encoding="utf-8") as handle:
    DEFAULTS = yaml.safe_load(handle)
with open(os.path.join(HERE, "..", "..", "stand-ins", "stack", "build-images.sh"), encoding="utf-8") as handle:
    BUILD_SCRIPT = handle.read()


def test_every_version_is_pinned_exactly():
    for name, version in DEFAULTS["mcp_stack_versions"].items():
        assert re.match(r"^[0-9]+\.[0-9]+\.[0-9]+$", version), name


def test_the_test_base_images_are_published_under_the_roles_base_images():
    """A base image the tests publish under another tag would leave the role's pin untested."""
    node_version = re.search(r"^n8n_node_version=(\S+)$", BUILD_SCRIPT, re.M).group(1)
    published = {}
    for repository, tag in re.findall(r'^\s+"[\w-]+-base ([\w./-]+):(\S+) \$\w+"$', BUILD_SCRIPT, re.M):
        published[repository] = tag.replace("$n8n_node_version", node_version)
    pinned = {image["repository"]: image["tag"] for image in DEFAULTS["mcp_stack_base_images"].values()}
    assert published == pinned


def test_the_x_server_keeps_the_sdk_below_2():
    # x-mcp-server 1.7.0 asks for mcp>=1.8 with no upper bound and crashes on import with mcp 2.x.
    assert DEFAULTS["mcp_stack_versions"]["python_mcp_sdk"].startswith("1.")


def test_every_python_venv_pins_the_sdk():
    """A venv that installs the SDK only as a dependency takes the newest release in range at build time."""
    sdk = DEFAULTS["mcp_stack_versions"]["python_mcp_sdk"]
    # mcp-proxy 0.13.0: mcp>=1.27.1,<2; tiktok-studio-mcp 0.1.4: mcp>=1.2,<2 (their wheels' Requires-Dist).
    major, minor, _patch = (int(part) for part in sdk.split("."))
    assert major == 1 and minor >= 27
    for name in ("tiktok-mcp", "x-mcp"):
        build = DEFAULTS["mcp_stack_catalogue"][name]["build"]
        assert build["args"]["MCP_SDK_VERSION"] == "{{ mcp_stack_versions.python_mcp_sdk }}"
        installs = re.findall(r"/opt/[\w-]+/bin/pip install [^\n]*", build["dockerfile"])
        assert installs, name
        for install in installs:
            assert "==${MCP_SDK_VERSION}" in install, install
