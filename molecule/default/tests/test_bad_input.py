"""Negative converges: bad input fails with one clear sentence before the host changes."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "integration"))
from playbook_runs import assert_refused, run_site  # noqa: E402


@pytest.fixture
def preserved(host):
    """Save files byte for byte and put them back after the test, whatever happens."""
    saved = []

    def _preserve(path):
        host.check_output("cp -a %s %s.homelab-test-saved" % (path, path))
        saved.append(path)
        return host.file(path).sha256sum

    yield _preserve
    for path in saved:
        host.check_output("mv -f %s.homelab-test-saved %s" % (path, path))


def host_state(host):
    """What a failed run must not touch: daemon.json, the installed packages, the service."""
    return (
        host.file("/etc/docker/daemon.json").sha256sum,
        host.check_output("dpkg-query -W -f='${Package} ${Version} ${Status}\\n' | sha256sum"),
        host.service("docker").is_running,
    )


def test_unsupported_distribution_fails_before_changing_anything(host, preserved):
    # Stand-in for an unsupported distribution: the target's os-release claims Debian 11.
    preserved("/usr/lib/os-release")
    preserved("/etc/debian_version")
    host.check_output("echo 11.11 > /etc/debian_version")
    host.check_output(
        "sed -i -e 's/^VERSION_ID=.*/VERSION_ID=\"11\"/' -e 's/^VERSION_CODENAME=.*/VERSION_CODENAME=bullseye/' "
        "-e 's/^VERSION=.*/VERSION=\"11 (bullseye)\"/' /usr/lib/os-release"
    )
    before = host_state(host)
    rc, output = run_site()
    assert_refused(rc, output, host.backend.host,
                   "The docker role does not support Debian 11", "use Debian 12 or 13, or Ubuntu 22.04 or 24.04.")
    assert host_state(host) == before


def test_daemon_json_that_is_not_json_fails_and_is_left_unchanged(host, preserved):
    preserved("/etc/docker/daemon.json")
    host.check_output("printf '{\"log-driver\": \"json-file\",,}\\n' > /etc/docker/daemon.json")
    before = host_state(host)
    rc, output = run_site()
    assert_refused(rc, output, host.backend.host,
                   "/etc/docker/daemon.json is not valid JSON (", "fix or remove it, it was left unchanged.")
    assert host_state(host) == before
