"""Read the JUnit reports that Ansible's junit callback writes for Molecule runs.

With ``JUNIT_FAIL_ON_CHANGE=true`` every task that reported ``changed`` is a
test case with a failure, so a report tells exactly which tasks a converge
changed. Shared by the Molecule scenarios' testinfra suites.
"""

from __future__ import annotations

import glob
import json
import os
import xml.etree.ElementTree as ET


def _report_time(path):
    # Files are named <playbook>-<epoch seconds>.xml.
    return float(os.path.basename(path)[: -len(".xml")].rsplit("-", 1)[1])


def latest_report(directory, playbook="converge"):
    reports = glob.glob(os.path.join(directory, "%s-*.xml" % playbook))
    if not reports:
        raise AssertionError("no %s JUnit report in %s" % (playbook, directory))
    return max(reports, key=_report_time)


def changed_tasks(report_path):
    """Return the names of the tasks (without host, play and role prefix) that changed."""
    names = set()
    for case in ET.parse(report_path).getroot().iter("testcase"):
        if case.find("failure") is None and case.find("error") is None:
            continue
        # "[host] play: role : task" -> "task"
        names.add(case.get("name").split(": ", 1)[1].split(" : ")[-1])
    return names


def expected_changes(ephemeral_directory, marker="expected-repairs.json"):
    """Tasks the last side effect says the next converge must change (empty before any)."""
    path = os.path.join(ephemeral_directory, marker)
    if not os.path.exists(path):
        return set()
    with open(path, encoding="utf-8") as handle:
        return set(json.load(handle))
