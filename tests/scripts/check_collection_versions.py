"""Fail when an installed collection is outside the range requirements.yml declares.

Usage: check_collection_versions.py requirements.yml
Reads `ansible-galaxy collection list --format json` (the collections Ansible
will actually load) and checks each requirement's version range.
"""

from __future__ import annotations

import json
import subprocess
import sys

import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version


def installed_versions():
    output = subprocess.run(
        ["ansible-galaxy", "collection", "list", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    versions = {}
    # The first path listed wins, exactly as Ansible resolves collections.
    for collections in json.loads(output).values():
        for name, info in collections.items():
            versions.setdefault(name, info["version"])
    return versions


def check(requirements, versions):
    problems = []
    for requirement in requirements.get("collections", []):
        name, wanted = requirement["name"], requirement.get("version", "*")
        found = versions.get(name)
        if found is None:
            problems.append("%s is not installed (requirements.yml wants %s)" % (name, wanted))
        elif wanted != "*" and Version(found) not in SpecifierSet(wanted):
            problems.append("%s %s is installed but requirements.yml wants %s" % (name, found, wanted))
    return problems


def main(argv):
    with open(argv[1], encoding="utf-8") as handle:
        requirements = yaml.safe_load(handle)
    versions = installed_versions()
    problems = check(requirements, versions)
    for problem in problems:
        print("collection range check: " + problem, file=sys.stderr)
    if problems:
        return 1
    for requirement in requirements.get("collections", []):
        print("collection range check: %s %s within %s" % (requirement["name"], versions[requirement["name"]], requirement["version"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
