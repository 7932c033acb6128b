#!/usr/bin/env bash
# Real-hardware check of the GPU layer: run homelab.core.gpu_info, probe
# containers included, against this machine and print its JSON result on stdout
# (warnings and errors go to stderr).
#
# Usage: scripts/gpu-check.sh [ansible options]      e.g. --become --ask-become-pass
# Env:   GPU_CHECK_PROBE_IMAGE   probe image (default nvidia/cuda:12.4.1-base-ubuntu22.04;
#                                Docker pulls it when it is missing)
#        GPU_CHECK_REQUIRED      "true" makes any problem fail the check (exit 2)
#        GPU_CHECK_MODEL         an installed Ollama model (never pulled): also run the inference gate,
#                                homelab.core.ollama_inference_gate, a one-token generate then GET /api/ps,
#                                and add its result as "inference_gate" (it must be 100% in VRAM)
#        GPU_CHECK_OLLAMA_URL    Ollama's API (default http://127.0.0.1:11434)
# Needs `make setup` (the .venv and the collection link); the machine needs the
# NVIDIA driver, Docker, and for a clean result the NVIDIA Container Toolkit.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
image=${GPU_CHECK_PROBE_IMAGE:-nvidia/cuda:12.4.1-base-ubuntu22.04}
required=${GPU_CHECK_REQUIRED:-false}

if [[ ! -e $repo/collections/ansible_collections/homelab/core ]]; then
    echo "gpu-check: the collection link is missing; run 'make setup' in $repo first." >&2
    exit 1
fi
ansible_bin=$repo/.venv/bin/ansible
[[ -x $ansible_bin ]] || ansible_bin=ansible

result=$(mktemp) gate=$(mktemp)
trap 'rm -f "$result" "$gate" "$gate.args"' EXIT

# ansible.posix.json prints the whole run as one JSON document; keep gpu_info's result.
rc=0
ANSIBLE_CONFIG=$repo/ansible.cfg ANSIBLE_COLLECTIONS_PATH=$repo/collections \
    ANSIBLE_LOAD_CALLBACK_PLUGINS=true ANSIBLE_STDOUT_CALLBACK=ansible.posix.json \
    "$ansible_bin" localhost --inventory localhost, --connection local \
    --extra-vars 'ansible_python_interpreter={{ ansible_playbook_python }}' \
    --module-name homelab.core.gpu_info \
    --args "{\"probe_container\": true, \"probe_image\": \"$image\", \"required\": $required}" \
    "$@" >"$result" || rc=$?

# The inference gate: the module itself, run by the same Python without Ansible's controller.
python=$(dirname "$ansible_bin")/python3
if [[ -n ${GPU_CHECK_MODEL:-} ]]; then
    mode=$([[ $required == true ]] && echo required || echo auto)
    "$python" -c 'import json, sys; print(json.dumps({"ANSIBLE_MODULE_ARGS": dict(zip(sys.argv[1::2], sys.argv[2::2]))}))' \
        url "${GPU_CHECK_OLLAMA_URL:-http://127.0.0.1:11434}" model "$GPU_CHECK_MODEL" mode "$mode" >"$gate.args"
    PYTHONPATH=$repo/collections "$python" -m ansible_collections.homelab.core.plugins.modules.ollama_inference_gate \
        "$gate.args" >"$gate" || rc=${rc/#0/2}
fi

"$python" - "$result" "$gate" <<'PYTHON' || rc=${rc/#0/1}
import json
import sys

with open(sys.argv[1], encoding="utf-8") as handle:
    run = json.load(handle)
result = run["plays"][0]["tasks"][0]["hosts"]["localhost"]
with open(sys.argv[2], encoding="utf-8") as handle:
    gate = handle.read().strip()
if gate:
    result["inference_gate"] = json.loads(gate)
    for problem in result["inference_gate"].get("problems", []):
        print("[WARNING]: %s %s" % (problem["diagnosis"], problem["remedy"]), file=sys.stderr)
json.dump(result, sys.stdout, indent=2, sort_keys=True)
print()
PYTHON
exit "$rc"
