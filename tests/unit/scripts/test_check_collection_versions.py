"""The requirements.yml range check used by `make lint`."""

from __future__ import annotations

import importlib.util
import os

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "check_collection_versions.py")
spec = importlib.util.spec_from_file_location("check_collection_versions", SCRIPT)
check_collection_versions = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check_collection_versions)

REQUIREMENTS = {"collections": [{"name": "community.docker", "version": ">=4.0.0,<5.0.0"}]}


def test_version_inside_range_passes():
    assert check_collection_versions.check(REQUIREMENTS, {"community.docker": "4.8.5"}) == []


def test_version_outside_range_fails_with_names():
    problems = check_collection_versions.check(REQUIREMENTS, {"community.docker": "5.0.1"})
    assert problems == ["community.docker 5.0.1 is installed but requirements.yml wants >=4.0.0,<5.0.0"]


def test_missing_collection_fails():
    problems = check_collection_versions.check(REQUIREMENTS, {})
    assert problems == ["community.docker is not installed (requirements.yml wants >=4.0.0,<5.0.0)"]
