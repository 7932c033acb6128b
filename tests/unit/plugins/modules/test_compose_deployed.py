# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import base64
import json
import os

import pytest

from ansible_collections.homelab.core.plugins.modules import compose_deployed

DOCKER = "/usr/bin/docker"
COMPOSE_VERSION = "2.26.1-4"
GATEWAY = "homelab-mcp-mcp-gateway-1"


class FakeDocker:
    """Stands in for ``AnsibleModule.run_command``: answers the docker calls from a recorded inspect output.

    ``images`` maps image references to the image ID they name now; ``ps`` is what ``docker ps -q`` lists.
    """

    def __init__(self, inspect, images, present=(), named=()):
        self.inspect = inspect
        self.images = dict(images)
        self.present = list(present)
        # (name, project label) of every container, for the listing of names.
        self.named = list(named)
        self.calls = []

    def __call__(self, args, **kwargs):
        self.calls.append(args)
        assert args[0] == DOCKER
        verb = args[1:3]
        if verb == ["compose", "version"]:
            return 0, COMPOSE_VERSION + "\n", ""
        if args[1] == "ps" and "--format" in args:
            assert args[-1] == '{{.Names}}\t{{.Label "com.docker.compose.project"}}'
            return 0, "".join("%s\t%s\n" % pair for pair in self.named), ""
        if args[1] == "ps":
            assert "label=com.docker.compose.project=homelab-mcp" in args
            return 0, "".join("%064d\n" % number for number, _line in enumerate(self.inspect.splitlines())), ""
        if args[1] == "inspect":
            return 0, self.inspect, ""
        if verb == ["image", "inspect"]:
            references = args[5:]
            missing = [reference for reference in references if self.images.get(reference) is None]
            out = "".join(self.images[reference] + "\n" for reference in references if reference not in missing)
            return (1 if missing else 0), out, "".join("Error: No such image: %s\n" % name for name in missing)
        assert verb == ["image", "ls"]
        # docker's reference filter: the repository pattern, here a namespace and a wildcard.
        (wanted,) = [arg.split("=", 2)[2] for arg in args if arg.startswith("--filter=reference=")]
        assert wanted.endswith("/*")
        return 0, "".join(image + "\n" for image in self.present if image.startswith(wanted[:-1])), ""


@pytest.fixture
def inspect_text(fixture_text):
    """``docker inspect`` of the four MCP containers of the stack scenario, right after a deploy (compose 2.26.1)."""
    return fixture_text("compose", "inspect-deployed-2.26.tsv")


@pytest.fixture
def docker(monkeypatch, inspect_text):
    from ansible.module_utils import basic

    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None:
                        "/usr/bin/" + name)

    def install(inspect=None, images=None, present=(), named=()):
        text = inspect_text if inspect is None else inspect
        if images is None:
            images = dict((container["reference"], container["image"])
                          for container in compose_deployed.parse_inspect(text).values())
        fake = FakeDocker(text, images, present, named)
        monkeypatch.setattr(basic.AnsibleModule, "run_command", fake)
        return fake

    return install


@pytest.fixture
def stack(tmp_path):
    """A stack root with a compose file and an env file; returns the module arguments."""
    compose = tmp_path / "docker-compose-mcp.yml"
    compose.write_text("services: {}\n")
    env = tmp_path / "env-x-mcp.env"
    env.write_text("A=1\n")
    return {"project": "homelab-mcp", "state_file": str(tmp_path / ".homelab-mcp.deployed.json"),
            "inputs": [str(compose), str(env), str(tmp_path / "absent.env")]}


def record(run_module, args):
    result = run_module(compose_deployed, dict(args, record=True))
    assert not result["failed"], result
    return result


def compare(run_module, args):
    result = run_module(compose_deployed, args)
    assert not result["failed"], result
    return result


def replace_in_line(text, container, old, new):
    lines = text.splitlines(True)
    for index, line in enumerate(lines):
        if line.startswith("/" + container + "\t"):
            assert old in line
            lines[index] = line.replace(old, new)
    return "".join(lines)


def test_parse_inspect_reads_each_container_and_leaves_out_one_offs(inspect_text):
    one_off = inspect_text.splitlines()[0].replace("homelab-mcp-dashboard-1", "homelab-mcp-dashboard-run-0a1b")
    one_off = one_off.replace('"com.docker.compose.oneoff":"False"', '"com.docker.compose.oneoff":"True"')
    containers = compose_deployed.parse_inspect(inspect_text + one_off + "\n")
    assert sorted(containers) == ["homelab-mcp-dashboard-1", "homelab-mcp-mcp-gateway-1", "homelab-mcp-tiktok-mcp-1",
                                  "homelab-mcp-x-mcp-1"]
    gateway = containers[GATEWAY]
    assert gateway["service"] == "mcp-gateway"
    assert gateway["config_hash"] == "05228b3f54dcd6bcd476b50b12966e758567064447e05576eb716d4a4e48fd4f"
    assert gateway["image"] == "sha256:b681bb8adb9846b8f1058bc3f00dc75d9cbfd6cffe37b27a13e68f28d761412c"
    assert gateway["reference"] == "homelab.local/homelab-mcp/mcp-gateway:712c5316533d0c8e"
    assert (gateway["status"], gateway["health"]) == ("running", "healthy")


def test_inputs_digest_follows_content_and_presence_not_order(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_text("1")
    digest = compose_deployed.inputs_digest([str(one), str(two)])
    assert digest == compose_deployed.inputs_digest([str(two), str(one)])
    two.write_text("")
    assert compose_deployed.inputs_digest([str(one), str(two)]) != digest
    two.unlink()
    one.write_text("2")
    assert compose_deployed.inputs_digest([str(one), str(two)]) != digest


def test_without_a_record_the_stack_is_not_converged(run_module, docker, stack):
    docker()
    result = compare(run_module, stack)
    assert result["converged"] is False
    assert result["reasons"] == ["there is no record of an earlier deploy"]


def test_the_recorded_state_compares_converged_and_recording_it_again_changes_nothing(run_module, docker, stack):
    docker()
    assert record(run_module, stack)["changed"] is True
    written = json.loads(open(stack["state_file"]).read())
    assert written["compose_version"] == COMPOSE_VERSION
    assert written["containers"][GATEWAY]["config_hash"].startswith("05228b3f")
    assert record(run_module, stack)["changed"] is False
    result = compare(run_module, stack)
    assert (result["converged"], result["reasons"], result["changed"]) == (True, [], False)


def test_record_in_check_mode_writes_nothing(run_module, docker, stack):
    docker()
    assert record(run_module, dict(stack, _ansible_check_mode=True))["changed"] is True
    assert compare(run_module, stack)["reasons"] == ["there is no record of an earlier deploy"]


@pytest.mark.parametrize("drift, reason", [
    (lambda text: replace_in_line(text, GATEWAY, "\trunning\thealthy", "\texited\t"),
     "homelab-mcp-mcp-gateway-1 is exited, recorded running (healthy)"),
    (lambda text: replace_in_line(text, GATEWAY, "\trunning\thealthy", "\trunning\tunhealthy"),
     "homelab-mcp-mcp-gateway-1 is running (unhealthy), recorded running (healthy)"),
    (lambda text: replace_in_line(text, GATEWAY, "05228b3f54dcd6bc", "0000000000000000"),
     "homelab-mcp-mcp-gateway-1 was recreated with another config"),
    (lambda text: "".join(line for line in text.splitlines(True) if not line.startswith("/" + GATEWAY)),
     "homelab-mcp-mcp-gateway-1 is missing"),
    (lambda text: text + text.splitlines(True)[0].replace("dashboard-1", "dashboard-2"),
     "homelab-mcp-dashboard-2 was not there after the last deploy"),
], ids=["stopped", "unhealthy", "recreated", "removed", "extra"])
def test_each_drift_of_a_container_is_named(run_module, docker, stack, inspect_text, drift, reason):
    docker()
    record(run_module, stack)
    docker(inspect=drift(inspect_text))
    result = compare(run_module, stack)
    assert result["converged"] is False
    assert result["reasons"] == [reason]


def test_a_changed_input_file_is_not_converged(run_module, docker, stack):
    docker()
    record(run_module, stack)
    with open(stack["inputs"][1], "a") as handle:
        handle.write("B=2\n")
    assert compare(run_module, stack)["reasons"] == ["the stack's files changed since the last deploy"]


def test_another_compose_version_is_not_converged(run_module, docker, stack):
    docker()
    record(run_module, stack)
    with open(stack["state_file"]) as handle:
        written = json.load(handle)
    written["compose_version"] = "2.24.0"
    with open(stack["state_file"], "w") as handle:
        json.dump(written, handle)
    assert compare(run_module, stack)["reasons"] == ["compose is 2.26.1-4, the last deploy was with 2.24.0"]


def test_a_moved_tag_or_a_missing_image_is_not_converged(run_module, docker, stack, inspect_text):
    fake = docker()
    record(run_module, stack)
    reference = "homelab.local/homelab-mcp/mcp-gateway:712c5316533d0c8e"
    fake.images[reference] = "sha256:" + "1" * 64
    assert compare(run_module, stack)["reasons"] == ["%s's image %s now names another image" % (GATEWAY, reference)]
    fake.images[reference] = None
    assert compare(run_module, stack)["reasons"] == ["%s's image %s is not on the host" % (GATEWAY, reference)]
    # One image inspect for all references, then one each only because one was missing.
    image_calls = [args for args in fake.calls[-6:] if args[1:3] == ["image", "inspect"]]
    assert len(image_calls[0]) == 5 + 4 and all(len(args) == 6 for args in image_calls[1:])


def test_an_unreadable_record_warns_and_counts_as_none(run_module, docker, stack, monkeypatch):
    from ansible.module_utils import basic

    warnings = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, warning: warnings.append(warning))
    docker()
    with open(stack["state_file"], "w") as handle:
        handle.write("{not json")
    result = compare(run_module, stack)
    assert result["reasons"] == ["there is no record of an earlier deploy"]
    assert len(warnings) == 1 and warnings[0].startswith("Ignoring the unreadable record %s" % stack["state_file"])


def test_present_images_lists_the_built_tags_under_the_stacks_namespace(run_module, docker, stack):
    docker(present=["homelab.local/homelab-mcp/x-mcp:a023a13b23e66d88", "homelab.local/homelab-mcp/x-mcp:<none>",
                    "homelab.local/other/x-mcp:ffffffffffffffff"])
    result = compare(run_module, dict(stack, image_namespace="homelab.local/homelab-mcp"))
    assert result["present_images"] == ["homelab.local/homelab-mcp/x-mcp:a023a13b23e66d88"]
    assert compare(run_module, stack)["present_images"] == []


def test_the_comparison_before_the_plan_digests_the_files_the_record_lists(run_module, docker, stack):
    docker()
    record(run_module, stack)
    assert json.loads(open(stack["state_file"]).read())["input_paths"] == sorted(stack["inputs"])
    before_the_plan = dict((key, value) for key, value in stack.items() if key != "inputs")
    assert compare(run_module, before_the_plan)["converged"] is True
    # A recorded input that a user deleted counts, though the plan that would name it has not run yet.
    os.remove(stack["inputs"][1])
    assert compare(run_module, before_the_plan)["reasons"] == ["the stack's files changed since the last deploy"]


def test_a_record_of_the_earlier_format_is_not_converged(run_module, docker, stack):
    docker()
    record(run_module, stack)
    written = json.loads(open(stack["state_file"]).read())
    written.update(version=1)
    del written["input_paths"]
    with open(stack["state_file"], "w") as handle:
        json.dump(written, handle)
    assert "the record is of another format" in compare(run_module, stack)["reasons"]


def test_the_secrets_are_read_in_the_same_call_and_a_planted_link_is_refused(run_module, docker, stack, tmp_path):
    docker()
    secrets = tmp_path / "main-stack.json"
    secrets.write_text('{"a": "b"}\n')
    result = compare(run_module, dict(stack, read=[str(secrets), str(tmp_path / "later.json")]))
    assert result["contents"] == {str(secrets): base64.b64encode(b'{"a": "b"}\n').decode()}
    assert result["missing"] == [str(tmp_path / "later.json")]
    planted = tmp_path / "planted.json"
    planted.symlink_to("/etc/shadow")
    refused = run_module(compose_deployed, dict(stack, read=[str(planted)]))
    assert refused["failed"] is True and refused["msg"].startswith("Cannot read %s (it is a symbolic link" % planted)
    assert "contents" not in refused


def test_a_name_the_stack_needs_that_another_projects_container_holds_is_named(run_module, docker, stack):
    docker(named=[("coolify-realtime", ""), ("coolify", "homelab-mcp"), ("coolify-db", "someone-else"), ("other", "")])
    result = compare(run_module, dict(stack, container_names=["coolify", "coolify-db", "coolify-realtime", "coolify-redis"]))
    assert result["foreign_containers"] == ["coolify-db", "coolify-realtime"]


def test_without_docker_the_stack_is_not_converged(run_module, monkeypatch, stack):
    from ansible.module_utils import basic

    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: None)
    result = compare(run_module, stack)
    assert (result["converged"], result["reasons"]) == (False, ["there is no docker CLI on the host"])
