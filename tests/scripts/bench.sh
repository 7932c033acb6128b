#!/usr/bin/env bash
# `make bench`: wall time of a fresh converge and of a no-op re-run of site.yml
# on the Molecule `default` target (Debian 13, Docker from Debian's packages).
# Figures for tuning, not a timed test. Prints a small table.
set -euo pipefail
cd "$(dirname "$0")/../.."
export MOLECULE_GLOB='molecule/*/molecule.yml' ANSIBLE_CONFIG="$PWD/ansible.cfg" ANSIBLE_NOCOLOR=1 PY_COLORS=0

scenario=default
# Its own ephemeral directory, so the inventory below is this run's and not one that
# Molecule keeps for another checkout with the same folder name.
export MOLECULE_EPHEMERAL_DIRECTORY="$PWD/tests/output/bench-$scenario"
cleanup() { molecule destroy --scenario-name "$scenario" >/dev/null 2>&1 || true; }
trap cleanup EXIT

molecule destroy --scenario-name "$scenario" >/dev/null
molecule create --scenario-name "$scenario" >/dev/null
molecule prepare --scenario-name "$scenario" >/dev/null
inventory="$MOLECULE_EPHEMERAL_DIRECTORY/inventory"

log=$(mktemp)
converge() {
    local started ended
    started=$(date +%s.%N)
    ansible-playbook -i "$inventory" molecule/$scenario/converge.yml >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
    ended=$(date +%s.%N)
    printf '| %-26s | %8.1f | %7s |\n' "$1" "$(echo "$ended - $started" | bc)" \
        "$(grep -oP 'changed=\K[0-9]+' "$log" | paste -sd+ | bc)"
}

printf '| %-26s | %8s | %7s |\n' "site.yml run" "wall (s)" "changed"
printf '|%s|%s|%s|\n' "----------------------------" "----------" "---------"
converge "fresh converge"
converge "no-op re-run"
converge "no-op re-run (again)"
rm -f "$log"
.venv/bin/python tests/scripts/bench_stack_health.py
