"""The guard for next time: every pin of the main stack's catalogue has the features the role uses.

Reads roles/main_stack/defaults/main.yml as it ships. A pin below the `min_version` its entry
records (cloudflared's --token-file since 2025.4.0, n8n's N8N_ENCRYPTION_KEY_FILE since 1.116,
Open-WebUI's WEBUI_SECRET_KEY_FILE since 0.6.14) fails here, in `make unit`.
"""

from __future__ import annotations

import os
import re

import pytest
import yaml

from ansible_collections.homelab.core.plugins.module_utils import _catalogue

DEFAULTS = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "main_stack", "defaults", "main.yml")
with open(DEFAULTS, encoding="utf-8") as handle:
    CATALOGUE = yaml.safe_load(handle)["main_stack_catalogue"]


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_each_pin_is_a_release_at_or_above_the_minimum_its_features_need(name):
    entry = CATALOGUE[name]
    assert _catalogue.TAG.match(entry["image"]["tag"]) and entry["image"]["tag"] != "latest"
    assert _catalogue.version_problem("main_stack_catalogue", name, entry) is None


@pytest.mark.parametrize("name, feature", [("cloudflared", "--token-file"), ("n8n", "N8N_ENCRYPTION_KEY_FILE"), ("n8n", "N8N_INSTANCE_OWNER_"),
                                           ("open-webui", "WEBUI_SECRET_KEY_FILE")])
def test_the_features_the_role_relies_on_have_their_minimum_recorded(name, feature):
    assert feature in CATALOGUE[name]["min_version"]["feature"]


def test_the_guard_catches_the_pin_that_broke_the_tunnel():
    entry = dict(CATALOGUE["cloudflared"], image=dict(CATALOGUE["cloudflared"]["image"], tag="2025.2.1"))
    assert "older than 2025.4.0" in _catalogue.version_problem("main_stack_catalogue", "cloudflared", entry)


BUILD_SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "stand-ins", "stack", "build-images.sh")


def test_the_stack_test_images_are_published_under_the_catalogues_pins():
    """A test image under an old tag would let the stack test pass against a pin nobody ships."""
    with open(BUILD_SCRIPT, encoding="utf-8") as handle:
        script = handle.read()
    # Tags may name the script's own version variables ($n8n_version, v$owui_version).
    versions = dict(re.findall(r"^(\w+_version)=(\S+)$", script, re.M))
    published = {}
    for repository, tag in re.findall(r'^\s+"[\w-]+ ([\w./-]+):(\S+) \$\w+"$', script, re.M):
        published[repository] = re.sub(r"\$(\w+)", lambda match: versions[match.group(1)], tag)
    pinned = {entry["image"]["repository"]: entry["image"]["tag"].lstrip("v") for entry in CATALOGUE.values()}
    # The script also builds the MCP stack's base images, under other names.
    assert {repository: published[repository].lstrip("v") for repository in pinned if repository in published} == pinned
