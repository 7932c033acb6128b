"""One Ollama per GPU (homelab_ollama_gpu_layout) and Ollama's memory settings: the pure rules
(module_utils/_ollama_server.py, _catalogue.split_per_gpu) and what the engine renders from them."""

from __future__ import annotations

import copy

import pytest
import yaml

from ansible_collections.homelab.core.plugins.filter.ollama_layout import ollama_layout
from ansible_collections.homelab.core.plugins.filter.ollama_settings import ollama_settings
from ansible_collections.homelab.core.plugins.filter.stack_plan import stack_plan
from ansible_collections.homelab.core.plugins.filter.status_page import gpu_line
from ansible_collections.homelab.core.plugins.module_utils import _backup, _catalogue, _catalogue_schema, _ollama_server, _update
from ansible_collections.homelab.core.plugins.module_utils._compose_document import gpu_deploy

# --- Durations as Ollama reads OLLAMA_KEEP_ALIVE (envconfig.KeepAlive at v0.32.15) ------------------


@pytest.mark.parametrize("value, seconds", [
    ("5m", 300), ("1h30m", 5400), ("90s", 90), ("1.5h", 5400), (".5s", 0.5), ("1.s", 1), ("300ms", 0.3),
    ("2h45m30.5s", 9930.5), ("1\u00b5s", 1e-6), ("1us", 1e-6), ("0", 0), ("+0", 0), ("-0", 0),
    # Not a Go duration: whole seconds (strconv.ParseInt); below zero is for ever.
    ("300", 300), ("-1", -1), ("00", 0), (-1, -1), (0, 0), (3600, 3600), ("  5m ", 300),
])
def test_a_duration_ollama_reads_is_accepted(value, seconds):
    assert _ollama_server.keep_alive_seconds(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [
    "5 m", "5min", "5M", "five minutes", "", ".s", "-", "1.5", "1e3s", "1_000s", "m", "2562048h", "99999999999999999999",
    True, 1.5, None, [],
])
def test_what_ollama_would_silently_replace_by_5m_is_refused(value):
    assert _ollama_server.keep_alive_seconds(value) is None


# --- The memory settings --------------------------------------------------------------------------


def test_unset_settings_stay_out_of_the_environment_so_ollama_keeps_its_defaults():
    assert ollama_settings({"main_stack_ollama_keep_alive": None, "main_stack_ollama_num_parallel": "",
                            "main_stack_ollama_flash_attention": None}) == {"env": {}, "problems": []}


def test_set_settings_are_rendered_as_ollama_reads_them():
    found = ollama_settings({"main_stack_ollama_keep_alive": -1, "main_stack_ollama_max_loaded_models": "2",
                             "main_stack_ollama_num_parallel": 0, "main_stack_ollama_flash_attention": "no",
                             "main_stack_ollama_sched_spread": True})
    assert found == {"problems": [], "env": {"OLLAMA_KEEP_ALIVE": "-1", "OLLAMA_MAX_LOADED_MODELS": "2",
                                             "OLLAMA_NUM_PARALLEL": "0", "OLLAMA_FLASH_ATTENTION": "false",
                                             "OLLAMA_SCHED_SPREAD": "true"}}


@pytest.mark.parametrize("variable, value, words", [
    ("main_stack_ollama_keep_alive", "10 min", ["main_stack_ollama_keep_alive ('10 min') is not a duration Ollama reads",
                                                "5m, 1h30m or 300 (seconds)"]),
    ("main_stack_ollama_keep_alive", True, ["main_stack_ollama_keep_alive (True)"]),
    ("main_stack_ollama_max_loaded_models", -1, ["main_stack_ollama_max_loaded_models (-1) must be a whole number of 0"]),
    ("main_stack_ollama_max_loaded_models", True, ["must be a whole number"]),
    ("main_stack_ollama_num_parallel", "+2", ["main_stack_ollama_num_parallel ('+2')"]),
    ("main_stack_ollama_num_parallel", 1.5, ["must be a whole number"]),
    ("main_stack_ollama_flash_attention", "auto", ["main_stack_ollama_flash_attention ('auto') must be true or false",
                                                   "reads any other word as true"]),
    ("main_stack_ollama_sched_spread", 2, ["main_stack_ollama_sched_spread (2) must be true or false"]),
])
def test_a_bad_setting_is_one_sentence_naming_the_variable_and_the_fix(variable, value, words):
    found = ollama_settings({variable: value})
    assert found["env"] == {} and len(found["problems"]) == 1
    assert found["problems"][0].startswith(variable) and found["problems"][0].endswith(".")
    for word in words:
        assert word in found["problems"][0]


def test_sched_spread_is_refused_with_one_gpu_per_ollama_and_per_gpu_in_a_fleet():
    problems = ollama_settings({"main_stack_ollama_sched_spread": True}, layout="per_gpu", fleet=True)["problems"]
    assert problems == [
        "homelab_ollama_gpu_layout is per_gpu, which a fleet does not support: the control hosts reach each GPU node's one "
        "Ollama and cannot know how many GPUs a node has; keep shared in a fleet.",
        "main_stack_ollama_sched_spread spreads a model over the GPUs one Ollama sees, but homelab_ollama_gpu_layout "
        "per_gpu gives each Ollama one GPU; leave it unset, or set homelab_ollama_gpu_layout to shared.",
    ]
    assert ollama_settings({"main_stack_ollama_sched_spread": False}, layout="per_gpu")["problems"] == []
    assert ollama_settings({"main_stack_ollama_sched_spread": True}, layout="shared", fleet=True)["problems"] == []
    assert "choose shared" in ollama_settings({}, layout="per-gpu")["problems"][0]


# --- How many Ollamas ---------------------------------------------------------------------------

FLEET = {"fleet": False, "ollama_urls": ["http://ollama:11434"],
         "ollama": {"address": "127.0.0.1", "port": 11434, "url": "http://127.0.0.1:11434"}}


@pytest.mark.parametrize("layout, decision, gpu_off, devices, reason", [
    ("shared", {"reservation": "nvidia", "gpu_count": 4}, False, [], ""),
    ("per_gpu", {"reservation": "nvidia", "gpu_count": 2}, False, ["0", "1"], ""),
    ("per_gpu", {"reservation": "cdi", "gpu_count": 3}, False, ["0", "1", "2"], ""),
    # Recorded indices win over the count.
    ("per_gpu", {"reservation": "cdi", "gpu_count": 2, "gpu_indices": [0, 2]}, False, ["0", "2"], ""),
    ("per_gpu", {"reservation": "cdi", "gpu_count": 1}, False, [], "this host has 1 GPU"),
    ("per_gpu", {"reservation": "none", "gpu_count": 2}, False, [], "reservation none"),
    ("per_gpu", {}, False, [], "reservation none"),
    ("per_gpu", {"reservation": "nvidia", "gpu_count": 2}, True, [], "homelab_gpu_mode is off"),
    ("per_gpu", {"reservation": "cdi", "gpu_count": 2, "wsl": True}, False, [], "WSL2"),
    ("per_gpu", {"reservation": "cdi", "gpu_count": 2, "cdi_devices": ["nvidia.com/gpu=all", "nvidia.com/gpu=0"]}, False,
     [], "the CDI spec offers no nvidia.com/gpu=1"),
])
def test_per_gpu_runs_one_ollama_per_recorded_gpu_where_the_host_can(layout, decision, gpu_off, devices, reason):
    view = ollama_layout(decision, layout, gpu_off=gpu_off, fleet=FLEET, url="http://127.0.0.1:11434",
                         models_path="/opt/homelab/data/ollama/models", data_root="/opt/homelab/data")
    assert view["devices"] == devices and reason in view["reason"] and bool(view["reason"]) == bool(reason)
    if devices:
        assert view["layout"] == "per_gpu"
        assert view["urls"] == ["http://ollama-gpu%s:11434" % device for device in devices]
        assert [item["service"] for item in view["instances"]] == ["ollama-gpu%s" % device for device in devices]
    else:
        assert view["layout"] == "shared" and view["urls"] == ["http://ollama:11434"]
        assert view["instances"] == [{"name": "ollama", "service": "ollama", "device": None, "url": "http://127.0.0.1:11434",
                                      "models_path": "/opt/homelab/data/ollama/models"}]


def test_a_fleet_keeps_one_ollama_per_node():
    view = ollama_layout({"reservation": "nvidia", "gpu_count": 2}, "per_gpu", fleet=dict(FLEET, fleet=True))
    assert view["devices"] == [] and "fleet" in view["reason"]


def test_each_instance_is_reached_on_the_published_port_plus_its_index_or_its_own_override():
    view = ollama_layout({"reservation": "nvidia", "gpu_count": 3}, "per_gpu",
                         fleet=dict(FLEET, ollama={"address": "::1", "port": 12000}),
                         models_path="", ports={"ollama_gpu2": 13000}, data_root="/srv/data")
    assert [(item["name"], item["url"], item["models_path"]) for item in view["instances"]] == [
        ("gpu0", "http://[::1]:12000", ""), ("gpu1", "http://[::1]:12001", ""), ("gpu2", "http://[::1]:13000", "")]


# --- The engine: one service per GPU ------------------------------------------------------------

STACK = {
    "name": "main", "project": "homelab", "root": "/opt/homelab", "data_root": "/opt/homelab/data",
    "compose_file": "docker-compose.yml", "secrets_file": "secrets/main-stack.json", "bind_address": "127.0.0.1",
    "image_registry": "", "networks": {"intranet": {"driver": "bridge"}}, "secrets": {},
    "services": {
        "ollama": {
            "image": {"registry": "docker.io", "repository": "ollama/ollama", "tag": "0.32.15", "digest": ""},
            "port": 11434, "container_port": 11434, "gpu": True, "per_gpu": True, "placement": "gpu_nodes",
            "data": [{"path": "ollama", "target": "/root/.ollama", "owner": 0, "group": 0, "mode": "0755"}],
            "backup": {"models": ["ollama/models"]}, "env": {"OLLAMA_KEEP_ALIVE": "30m"}, "probe": {"path": "/api/version"},
        },
        "open-webui": {
            "image": {"registry": "ghcr.io", "repository": "open-webui/open-webui", "tag": "v0.12.4", "digest": ""},
            "gpu_image_tag_suffix": "-cuda", "port": 3000, "container_port": 8080, "gpu": True,
            "env": {"OLLAMA_BASE_URL": "http://ollama-gpu0:11434"},
            "depends_on": {"ollama": "service_healthy"}, "probe": {"path": "/health"},
        },
    },
    "overrides": {"images": {}, "ports": {}}, "inventory_secrets": {}, "rotate_secrets": [],
    "variables": {"images": "main_stack_images", "ports": "main_stack_ports", "secrets": "main_stack_secrets",
                  "rotate_secrets": "main_stack_rotate_secrets", "catalogue": "main_stack_catalogue"},
}
PERSISTED = {"config_hash_key": "k" * 48}


def stack(devices=("0", "1"), active=True, **overrides):
    definition = copy.deepcopy(STACK)
    definition["per_gpu"] = {"devices": list(devices), "active": active}
    definition["overrides"].update(overrides)
    return definition


def plan_of(definition, reservation="nvidia"):
    plan = stack_plan(definition, persisted=PERSISTED, gpu_reservation=reservation)
    return plan, yaml.safe_load(plan["compose"])


def test_without_a_split_the_engine_renders_exactly_what_it_did_before():
    plain = copy.deepcopy(STACK)
    del plain["services"]["ollama"]["per_gpu"]
    expected = plan_of(plain)
    for definition in (stack(active=False), stack(devices=["0"]), stack(devices=[]), copy.deepcopy(STACK)):
        plan, document = plan_of(definition)
        assert document == expected[1] and plan["probes"] == expected[0]["probes"]
        assert plan["data_dirs"] == expected[0]["data_dirs"]


@pytest.mark.parametrize("reservation, devices", [
    ("nvidia", [{"driver": "nvidia", "device_ids": ["0"], "capabilities": ["gpu"]},
                {"driver": "nvidia", "device_ids": ["1"], "capabilities": ["gpu"]}]),
    ("cdi", [{"driver": "cdi", "device_ids": ["nvidia.com/gpu=0"], "capabilities": ["gpu"]},
             {"driver": "cdi", "device_ids": ["nvidia.com/gpu=1"], "capabilities": ["gpu"]}]),
])
def test_two_gpus_give_two_ollamas_each_with_its_device_port_and_data(reservation, devices):
    plan, document = plan_of(stack(), reservation)
    services = document["services"]
    assert list(services) == ["ollama-gpu0", "ollama-gpu1", "open-webui"]
    for index in (0, 1):
        service = services["ollama-gpu%d" % index]
        assert service["deploy"]["resources"]["reservations"]["devices"] == [devices[index]]
        assert service["ports"] == ["127.0.0.1:%d:11434" % (11434 + index)]
        assert service["volumes"] == ["/opt/homelab/data/ollama/gpu%d:/root/.ollama" % index]
        assert service["env_file"] == ["env/ollama-gpu%d.env" % index]
        assert service["image"] == "docker.io/ollama/ollama:0.32.15"
    assert services["open-webui"]["deploy"] == gpu_deploy(reservation)
    assert services["open-webui"]["depends_on"] == {"ollama-gpu0": {"condition": "service_healthy"},
                                                    "ollama-gpu1": {"condition": "service_healthy"}}
    assert plan["data_dirs"] == {"/opt/homelab/data/ollama": ["ollama-gpu0", "ollama-gpu1"],
                                 "/opt/homelab/data/ollama/gpu0": ["ollama-gpu0"],
                                 "/opt/homelab/data/ollama/gpu1": ["ollama-gpu1"]}
    entries = {entry["path"]: entry for entry in plan["files"]}
    assert entries["/opt/homelab/env/ollama.env"]["state"] == "absent"
    assert entries["/opt/homelab/env/ollama-gpu1.env"]["content"].endswith("OLLAMA_KEEP_ALIVE=30m\n")
    directories = [entry["path"] for entry in plan["files"] if entry["state"] == "directory" and "/data/ollama" in entry["path"]]
    assert directories == ["/opt/homelab/data/ollama", "/opt/homelab/data/ollama/gpu0", "/opt/homelab/data/ollama/gpu1"]
    assert plan["probes"][:2] == [{"service": "ollama-gpu0", "url": "http://127.0.0.1:11434/api/version"},
                                  {"service": "ollama-gpu1", "url": "http://127.0.0.1:11435/api/version"}]


def test_back_to_shared_the_instances_files_go_and_their_data_stays():
    plan, document = plan_of(stack(active=False))
    assert list(document["services"]) == ["ollama", "open-webui"]
    entries = {entry["path"]: entry for entry in plan["files"]}
    assert entries["/opt/homelab/env/ollama-gpu0.env"]["state"] == "absent"
    # Nothing under data/ is ever removed: the per-GPU model directories are neither listed nor absent.
    assert not any("/data/ollama/gpu" in path for path in entries)
    # ... and they stay out of backups, as the shared Ollama's models do.
    backup = _backup.backup_plan([stack(active=False)])
    assert backup["exclude"] == ["ollama/models", "ollama/gpu0/models", "ollama/gpu1/models"]
    assert _backup.backup_plan([stack()])["exclude"] == backup["exclude"]


def test_an_instance_takes_its_own_port_and_image_override_and_rolls_back_its_own_directory():
    definition = stack(ports={"ollama": 12000, "ollama_gpu1": 13000}, images={"ollama-gpu0": {"tag": "0.32.14"}})
    _plan, document = plan_of(definition)
    assert document["services"]["ollama-gpu0"]["ports"] == ["127.0.0.1:12000:11434"]
    assert document["services"]["ollama-gpu1"]["ports"] == ["127.0.0.1:13000:11434"]
    assert document["services"]["ollama-gpu0"]["image"].endswith(":0.32.14")
    assert document["services"]["ollama-gpu1"]["image"].endswith(":0.32.15")
    rows = {row["service"]: row for row in _update.update_plan(definition, {})}
    assert rows["ollama-gpu1"]["data_paths"] == ["ollama/gpu1"]
    assert _catalogue.stack_problems([definition]) == []


def test_the_check_names_an_instance_port_that_collides_or_is_no_port():
    problems = _catalogue.stack_problems([stack(ports={"ollama_gpu1": 3000})])
    assert "main_stack_ports.ollama_gpu1 and main_stack_ports.open-webui publish the same host port 3000; give each " \
           "service its own port." in problems
    # An instance this host does not run (one GPU) is still checked as a port, and a key for a service that is never
    # split is unknown.
    problems = _catalogue.stack_problems([stack(devices=["0"], ports={"ollama-gpu3": "x", "open_webui_gpu1": 3001})])
    assert "main_stack_ports.ollama-gpu3 is 'x', which is not a port; give a whole number from 1 to 65535." in problems
    assert any(problem.startswith("main_stack_ports has an unknown service 'open_webui_gpu1'") for problem in problems)


def test_per_gpu_needs_a_service_that_gets_the_gpu():
    definition = copy.deepcopy(STACK)
    definition["services"]["ollama"]["gpu"] = False
    assert _catalogue_schema.catalogue_problems(definition) == [
        "main stack: main_stack_catalogue.ollama.per_gpu is true, but the service does not get the GPU, so it is never "
        "split per GPU; add gpu: true, or remove per_gpu."]


def test_the_status_page_says_one_ollama_per_gpu():
    line = gpu_line({"mode": "auto", "reservation": "cdi", "gpu_count": 2, "ollama_instances": 2})
    assert line["reason"].endswith("; one Ollama per GPU (homelab_ollama_gpu_layout per_gpu), each reserving its GPU alone")
    assert "per GPU" not in gpu_line({"mode": "auto", "reservation": "cdi", "gpu_count": 2, "ollama_instances": 0})["reason"]
