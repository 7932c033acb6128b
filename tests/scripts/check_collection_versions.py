"""Fail when a collection the code uses is undeclared, or installed outside its declared range.

Usage: check_collection_versions.py requirements.yml [galaxy.yml]
Reads `ansible-galaxy collection list --format json` (the collections Ansible
will actually load) and checks each requirement's version range. Then scans the
repository for FQCNs (task modules, filters, tests, lookups, connections): every
collection used anywhere must be in requirements.yml, and every collection used
by what the collection ships (roles, playbooks, plugins) in galaxy.yml's
dependencies too.
"""

from __future__ import annotations

import glob
import json
import os
import re
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


# Where a collection's FQCN can stand: a task's module key, a filter or test, a lookup, a connection.
FQCN_USES = [
    re.compile(r"^\s*(?:- )?\s*([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*:(?:\s|$)", re.MULTILINE),
    re.compile(r"\|\s*([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*\b"),
    re.compile(r"\bis\s+(?:not\s+)?([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*\b"),
    re.compile(r"\b(?:lookup|query)\(\s*['\"]([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*['\"]"),
    re.compile(r"\b(?:connection|name):\s*['\"]?([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*['\"]?\s*$", re.MULTILINE),
    re.compile(r"\bansible_collections\.([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.plugins\b"),
]
# Part of ansible-core, or this collection itself.
BUILT_IN = {"ansible.builtin", "ansible.legacy", "homelab.core"}
SHIPPED = ("roles", "playbooks", "plugins", "site.yml")
SCANNED = SHIPPED + ("molecule", "tests", "inventories")


def used_collections(text, known):
    """Collections whose FQCNs appear in text; only names of real collections count (not host.docker.internal)."""
    found = set()
    for pattern in FQCN_USES:
        for namespace, name in pattern.findall(text):
            collection = "%s.%s" % (namespace, name)
            if collection in known and collection not in BUILT_IN:
                found.add(collection)
    return found


def repository_uses(root, tops, known):
    uses = {}
    for top in tops:
        path = os.path.join(root, top)
        files = [path] if os.path.isfile(path) else glob.glob(os.path.join(path, "**", "*"), recursive=True)
        for file_path in files:
            if not file_path.endswith((".yml", ".yaml", ".j2", ".py")) or "/fixtures/" in file_path:
                continue
            with open(file_path, encoding="utf-8") as handle:
                for collection in used_collections(handle.read(), known):
                    uses.setdefault(collection, os.path.relpath(file_path, root))
    return uses


def undeclared(uses, declared, where):
    return ["%s is used (%s) but not declared in %s" % (name, uses[name], where) for name in sorted(set(uses) - set(declared))]


def main(argv):
    with open(argv[1], encoding="utf-8") as handle:
        requirements = yaml.safe_load(handle)
    versions = installed_versions()
    problems = check(requirements, versions)
    root = os.path.dirname(os.path.abspath(argv[1]))
    required = [requirement["name"] for requirement in requirements.get("collections", [])]
    problems += undeclared(repository_uses(root, SCANNED, versions), required, os.path.basename(argv[1]))
    if len(argv) > 2:
        with open(argv[2], encoding="utf-8") as handle:
            dependencies = (yaml.safe_load(handle) or {}).get("dependencies") or {}
        problems += undeclared(repository_uses(root, SHIPPED, versions), dependencies, os.path.basename(argv[2]) + " dependencies")
    for problem in problems:
        print("collection range check: " + problem, file=sys.stderr)
    if problems:
        return 1
    for requirement in requirements.get("collections", []):
        print("collection range check: %s %s within %s" % (requirement["name"], versions[requirement["name"]], requirement["version"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
