"""The pins check of docs/upstream-evidence.md used by `make lint`: it passes on the repository
as it is, and fails, naming the pin, on each kind of drift between the document and the catalogues.

The drifts are made on copies of the real files, read and changed as data, so that the tests
keep working when a pin moves on purpose (with its row).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SCRIPT = os.path.join(ROOT, "tests", "scripts", "check_upstream_evidence.py")
DOCUMENT = os.path.join(ROOT, "docs", "upstream-evidence.md")
DEFAULTS = {
    "main": os.path.join(ROOT, "roles", "main_stack", "defaults", "main.yml"),
    "mcp": os.path.join(ROOT, "roles", "mcp_stack", "defaults", "main.yml"),
}


def run_check(document=DOCUMENT, **defaults):
    """The checker's result on the real files, except those given (document=, main=, mcp=)."""
    paths = dict(DEFAULTS, **defaults)
    return subprocess.run(
        [sys.executable, SCRIPT, "--document", document, "--main-defaults", paths["main"], "--mcp-defaults", paths["mcp"]],
        capture_output=True, text=True, check=False,
    )


def load_defaults(which):
    with open(DEFAULTS[which], encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def write_defaults(directory, which, data):
    path = os.path.join(str(directory), which + "-defaults.yml")
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(data, handle)
    return path


def problems_naming(result, *words):
    return [line for line in result.stderr.splitlines() if all(word in line for word in words)]


def test_the_repository_passes_with_one_summary_line():
    result = run_check()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert len(result.stdout.splitlines()) == 1 and "match the pins table" in result.stdout


def test_an_unchanged_copy_passes(tmp_path):
    """The copies below differ from the real files only in the change each test makes."""
    result = run_check(main=write_defaults(tmp_path, "main", load_defaults("main")), mcp=write_defaults(tmp_path, "mcp", load_defaults("mcp")))
    assert result.returncode == 0, result.stderr


def test_a_changed_image_tag_fails_naming_the_pin_and_both_versions(tmp_path):
    data = load_defaults("main")
    image = data["main_stack_catalogue"]["n8n"]["image"]
    documented, image["tag"] = image["tag"], image["tag"] + "-next"
    result = run_check(main=write_defaults(tmp_path, "main", data))
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert problems_naming(result, "main_stack_catalogue.n8n", "pins %s-next" % documented, "pinned at %s" % documented)


def test_a_changed_package_version_fails_naming_it(tmp_path):
    data = load_defaults("mcp")
    data["mcp_stack_versions"]["x_mcp"] += ".post1"
    result = run_check(mcp=write_defaults(tmp_path, "mcp", data))
    assert result.returncode == 1
    assert problems_naming(result, "mcp_stack_versions.x_mcp", data["mcp_stack_versions"]["x_mcp"])


def test_a_removed_document_row_fails_naming_the_pin_without_row(tmp_path):
    with open(DOCUMENT, encoding="utf-8") as handle:
        lines = handle.read().splitlines(keepends=True)
    kept = [line for line in lines if not (line.startswith("|") and "`mcp_stack_versions.tiktok_mcp`" in line)]
    assert len(kept) == len(lines) - 1
    document = os.path.join(str(tmp_path), "upstream-evidence.md")
    with open(document, "w", encoding="utf-8") as handle:
        handle.writelines(kept)
    result = run_check(document=document)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert problems_naming(result, "mcp_stack_versions.tiktok_mcp", "has no row")


def test_a_pin_the_catalogues_dropped_fails_naming_the_stale_row(tmp_path):
    data = load_defaults("mcp")
    del data["mcp_stack_versions"]["x_mcp"]
    result = run_check(mcp=write_defaults(tmp_path, "mcp", data))
    assert result.returncode == 1
    assert problems_naming(result, "mcp_stack_versions.x_mcp", "no pin of the catalogues")


def swap_cloudflared_repository(data):
    data["main_stack_catalogue"]["cloudflared"]["image"]["repository"] = "example/cloudflared"
    return "docker.io/example/cloudflared"


def move_coolify_registry(data):
    data["main_stack_catalogue"]["coolify"]["image"]["registry"] = "registry.example.org"
    return "registry.example.org/coollabsio/coolify"


def swap_x_mcp_package(data):
    build = data["mcp_stack_catalogue"]["x-mcp"]["build"]
    assert '"x-mcp-server==${X_MCP_VERSION}"' in build["dockerfile"]
    build["dockerfile"] = build["dockerfile"].replace('"x-mcp-server==', '"x-twitter-mcp==')
    return "PyPI x-twitter-mcp"


@pytest.mark.parametrize("which, change", [
    # Same tag, another image: the row's evidence is about an image the catalogue no longer has.
    ("main", swap_cloudflared_repository),
    ("main", move_coolify_registry),
    # Same version key, another package installed with it.
    ("mcp", swap_x_mcp_package),
])
def test_a_row_naming_an_image_or_package_the_catalogues_no_longer_have_fails(tmp_path, which, change):
    data = load_defaults(which)
    now_pinned = change(data)
    result = run_check(**{which: write_defaults(tmp_path, which, data)})
    assert result.returncode == 1
    assert problems_naming(result, now_pinned), result.stderr


def test_a_document_without_its_pins_table_fails(tmp_path):
    with open(DOCUMENT, encoding="utf-8") as handle:
        text = handle.read()
    document = os.path.join(str(tmp_path), "upstream-evidence.md")
    with open(document, "w", encoding="utf-8") as handle:
        handle.write(text.replace("\n## Pins\n", "\n## Versions\n"))
    result = run_check(document=document)
    assert result.returncode == 1
    assert result.stderr.splitlines() == ["upstream evidence: %s has no '## Pins' section" % document]
