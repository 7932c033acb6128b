"""What an update would do (module_utils/_update.py and the update_report filter)."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.homelab.core.plugins.filter.update_report import update_report
from ansible_collections.homelab.core.plugins.module_utils import _update

REPO = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..")


def main_stack(images=None, registry=""):
    with open(os.path.join(REPO, "roles", "main_stack", "defaults", "main.yml"), encoding="utf-8") as stream:
        catalogue = yaml.safe_load(stream)["main_stack_catalogue"]
    # Coolify's four services as the default main_stack_coolify_enabled (true) renders them.
    for entry in catalogue.values():
        if entry.get("enabled") == "{{ main_stack_coolify_enabled }}":
            entry["enabled"] = True
    return {"name": "main", "project": "homelab", "root": "/opt/homelab", "data_root": "/opt/homelab/data",
            "image_registry": registry, "services": catalogue, "overrides": {"images": images or {}}}


def running_as_pinned(stack, registry="127.0.0.1:5000"):
    rows = _update.update_plan(stack, {}, "none")
    return {row["service"]: {"image": row["target"], "id": "sha256:" + row["service"].ljust(64, "0")[:64],
                             "digests": ["%s@sha256:%s" % (row["target"].rsplit(":", 1)[0], "ab" * 32)]} for row in rows}


def by_service(rows):
    return {row["service"]: row for row in rows}


@pytest.mark.parametrize("reference, expected", [
    ("127.0.0.1:5000/ollama/ollama:0.32.16", ("127.0.0.1:5000", "ollama/ollama", "0.32.16", "")),
    ("ghcr.io/open-webui/open-webui:v0.12.4-cuda", ("ghcr.io", "open-webui/open-webui", "v0.12.4-cuda", "")),
    ("postgres:16-alpine", ("docker.io", "library/postgres", "16-alpine", "")),
    ("localhost/redis@sha256:" + "0" * 64, ("localhost", "redis", "latest", "sha256:" + "0" * 64)),
])
def test_references_are_read_as_the_catalogue_writes_them(reference, expected):
    image = _update.parse_reference(reference)
    assert (image["registry"], image["repository"], image["tag"], image["digest"]) == expected


def test_a_converged_stack_keeps_everything():
    stack = main_stack(registry="127.0.0.1:5000")
    rows = _update.update_plan(stack, running_as_pinned(stack), "none")
    assert {row["action"] for row in rows} == {"keep"}
    assert "cloudflared" not in by_service(rows)  # off without a token, like the deploy
    assert _update.report(rows, "updated") == ["service  old version  new version  result"]


def test_a_changed_pin_recreates_only_that_service_and_pins_back_to_what_ran():
    stack = main_stack(registry="127.0.0.1:5000")
    running = running_as_pinned(stack)
    rows = by_service(_update.update_plan(main_stack({"ollama": {"tag": "0.32.16"}}, "127.0.0.1:5000"), running, "none"))
    assert [name for name, row in rows.items() if row["action"] != "keep"] == ["ollama"]
    ollama = rows["ollama"]
    assert (ollama["old_version"], ollama["new_version"]) == ("0.32.15", "0.32.16")
    assert ollama["rollback_image"] == {"registry": "127.0.0.1:5000", "repository": "ollama/ollama", "tag": "0.32.15", "digest": ""}
    assert ollama["digest"] == "sha256:" + "ab" * 32
    assert ollama["data_paths"] == ["ollama"] and ollama["database"] == ""
    assert ollama["tags_url"] == "http://127.0.0.1:5000/v2/ollama/ollama/tags/list"
    assert rows["n8n"]["tags_url"] == "http://127.0.0.1:5000/v2/n8nio/n8n/tags/list"


def test_the_gpu_suffix_is_not_pinned_back_twice():
    stack = main_stack()
    running = {"open-webui": {"image": "ghcr.io/open-webui/open-webui:v0.12.4-cuda", "id": "sha256:1", "digests": []}}
    rows = by_service(_update.update_plan(main_stack({"open-webui": {"tag": "v0.12.5"}}), running, "nvidia"))
    assert rows["open-webui"]["target"] == "ghcr.io/open-webui/open-webui:v0.12.5-cuda"
    assert rows["open-webui"]["rollback_image"]["tag"] == "v0.12.4"
    assert rows["open-webui"]["tags_url"] == "https://ghcr.io/v2/open-webui/open-webui/tags/list"
    assert rows["ollama"]["action"] == "new"
    assert rows["ollama"]["tags_url"] == "https://registry-1.docker.io/v2/ollama/ollama/tags/list"


def test_a_postgres_major_change_is_named_and_a_minor_one_is_not():
    running = {"coolify-db": {"image": "docker.io/library/postgres:16-alpine", "id": "sha256:1", "digests": []}}
    major = by_service(_update.update_plan(main_stack({"coolify-db": {"tag": "17-alpine"}}), running))["coolify-db"]
    assert major["postgres_major"] == [16, 17] and major["database"] == "postgres"
    minor = by_service(_update.update_plan(main_stack({"coolify-db": {"tag": "16.6-alpine"}}), running))["coolify-db"]
    assert minor["postgres_major"] is None and minor["action"] == "recreate"


def test_newer_tags_keep_the_suffix_and_come_newest_first():
    tags = ["0.32.15", "0.32.16", "0.33.0", "0.33.0-rocm", "latest", "0.31.9", "0.33.0-rc1"]
    assert _update.newer_tags("0.32.15", tags) == ["0.33.0", "0.32.16"]
    assert _update.newer_tags("16-alpine", ["17-alpine", "16.6-alpine", "17", "15-alpine"]) == ["17-alpine", "16.6-alpine"]
    assert _update.newer_tags("latest", tags) == []


def test_the_preview_says_which_registries_answered():
    stack = main_stack(registry="127.0.0.1:5000")
    rows = _update.update_plan(main_stack({"ollama": {"tag": "0.32.16"}}, "127.0.0.1:5000"), running_as_pinned(stack), "none")
    results = [{"item": row, "status": 200 if row["service"] == "ollama" else -1,
                "json": {"tags": ["0.32.15", "0.32.16", "0.32.17"]} if row["service"] == "ollama" else None} for row in rows]
    lines = update_report(rows, tag_results=results)
    assert lines[0].split() == ["service", "running", "digest", "pinned", "action", "newer", "upstream"]
    ollama = [line for line in lines if line.startswith("ollama ")][0].split()
    assert ollama == ["ollama", "0.32.15", "ab" * 6, "0.32.16", "recreate", "0.32.17"]
    assert [line for line in lines if line.startswith("n8n ")][0].split()[-2:] == ["no", "answer"]
    assert update_report(rows)[1].endswith("not asked")


def test_the_final_table_names_each_changed_service_and_its_result():
    stack = main_stack(registry="127.0.0.1:5000")
    rows = _update.update_plan(main_stack({"ollama": {"tag": "0.32.17"}}, "127.0.0.1:5000"), running_as_pinned(stack), "none")
    assert update_report(rows, outcome="rolled back") == [
        "service  old version  new version  result",
        "ollama   0.32.15      0.32.17      rolled back",
    ]
