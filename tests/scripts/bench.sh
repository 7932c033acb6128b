#!/usr/bin/env bash
# `make bench`: how long site.yml takes on Molecule targets (Debian 13, Docker from Debian's
# packages, over the community.docker.docker connection with pipelining), measured in one run:
#   - one host with the whole stack (the `stack` scenario): a fresh converge, two no-op re-runs,
#     and the floor (tests/bench/floor.yml: site.yml's facts and one `docker compose ps` per stack)
#   - the three-host fleet (the `fleet` scenario): a fresh converge and two no-op re-runs
#   - the most used community Docker role, Docker only, two no-op re-runs on a target of its own,
#     when BENCH_COMMUNITY_DOCKER_ROLE names a checkout of geerlingguy/ansible-role-docker
#     (Galaxy is unreachable here, so the role is not fetched)
#   - stack_health's wait against its slowest probe
# Prints one table, then the targets. Figures for tuning, not a timed test. Every timed run
# must report changed=0 (after the fresh converge), or the bench fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
export MOLECULE_GLOB='molecule/*/molecule.yml' ANSIBLE_CONFIG="$PWD/ansible.cfg" ANSIBLE_NOCOLOR=1 PY_COLORS=0
community_role=${BENCH_COMMUNITY_DOCKER_ROLE:-}
work=$(mktemp -d)
# Every timed run's whole output, to read what a figure is made of.
log_dir=tests/output/logs/bench
rm -rf "$log_dir"
mkdir -p "$log_dir"
scenarios=(stack fleet)
[[ -n "$community_role" ]] && scenarios+=(default)

# Each scenario in an ephemeral directory of this run (outside the repository, which lint reads),
# so the inventory below is this run's and not one that Molecule keeps for another checkout.
ephemeral() { echo "$work/molecule-$1"; }
molecule_step() {
    MOLECULE_EPHEMERAL_DIRECTORY=$(ephemeral "$1") molecule "$2" --scenario-name "$1" >"$work/molecule.log" 2>&1 \
        || { tail -40 "$work/molecule.log" >&2; return 1; }
}
cleanup() {
    for scenario in "${scenarios[@]}"; do molecule_step "$scenario" destroy >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT

rows=()
# timed LABEL SCENARIO PLAYBOOK [MUST_BE_NOOP]: run PLAYBOOK on SCENARIO's hosts; sets `seconds`.
timed() {
    local label=$1 scenario=$2 playbook=$3 noop=${4:-noop} started ended changed log
    log="$log_dir/$(tr '[:upper:]' '[:lower:]' <<<"$label" | tr -c 'a-z0-9\n' '-' | tr -s '-').log"
    started=$(date +%s.%N)
    # profile_tasks: the log says which tasks took the time.
    ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks \
        ansible-playbook -i "$(ephemeral "$scenario")/inventory" "$playbook" >"$log" 2>&1 \
        || { tail -60 "$log" >&2; exit 1; }
    ended=$(date +%s.%N)
    seconds=$(echo "$ended - $started" | bc)
    changed=$(grep -oP '\bchanged=\K[0-9]+' "$log" | paste -sd+ | bc)
    # Every task the run went through, skipped ones included (each costs time even when skipped).
    tasks=$(grep -c '^TASK \[' "$log")
    if [[ $noop == noop && $changed -ne 0 ]]; then
        grep -E '^changed:' "$log" >&2
        echo "bench: $label reported changed=$changed, not 0" >&2
        exit 1
    fi
    rows+=("$(printf '| %-44s | %8.1f | %7s | %5s |' "$label" "$seconds" "$changed" "$tasks")")
}
best() { printf '%s\n' "$@" | sort -n | head -1; }
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }
verdict() { if (($(echo "$1 <= $2" | bc -l))); then echo "holds"; else echo "DOES NOT HOLD"; fi; }

for scenario in "${scenarios[@]}"; do
    for step in destroy create prepare; do molecule_step "$scenario" "$step"; done
done

timed "one host, whole stack: fresh converge" stack site.yml changes
noop_one=()
for run in 1 2; do timed "one host, whole stack: no-op re-run $run" stack site.yml; noop_one+=("$seconds"); done
floor=()
for run in 1 2; do timed "one host: floor $run" stack tests/bench/floor.yml; floor+=("$seconds"); done

timed "three hosts (fleet): fresh converge" fleet site.yml changes
noop_fleet=()
for run in 1 2; do timed "three hosts (fleet): no-op re-run $run" fleet site.yml; noop_fleet+=("$seconds"); done

community=()
if [[ -n "$community_role" ]]; then
    cat >"$work/community-docker.yml" <<EOF
- name: Install Docker with the community role, from Debian's packages
  hosts: homelab
  become: true
  vars:
    docker_add_repo: false
    docker_packages: [docker.io]
    docker_compose_package: docker-compose
    docker_obsolete_packages: []
  roles:
    - role: $community_role
EOF
    timed "community Docker role alone: fresh converge" default "$work/community-docker.yml" changes
    for run in 1 2; do
        # Its no-op re-runs report changes on Debian's packages (measured: 4 on every run).
        timed "community Docker role alone: no-op re-run $run" default "$work/community-docker.yml" changes
        community+=("$seconds")
    done
fi

printf '| %-44s | %8s | %7s | %5s |\n' "run" "wall (s)" "changed" "tasks"
printf '|%s|%s|%s|%s|\n' "----------------------------------------------" "----------" "---------" "-------"
printf '%s\n' "${rows[@]}"
.venv/bin/python tests/scripts/bench_stack_health.py

one=$(best "${noop_one[@]}") low=$(best "${floor[@]}") three=$(best "${noop_fleet[@]}")
round() { printf "%.1f" "$1"; }
echo
echo "Targets (best of the two runs each):"
echo "- re-run / floor: $(round "$one") s / $(round "$low") s = $(ratio "$one" "$low") (target <= 1.5: $(verdict "$(ratio "$one" "$low")" 1.5))"
echo "- three hosts / one host: $(round "$three") s / $(round "$one") s = $(ratio "$three" "$one") (target <= 1.3: $(verdict "$(ratio "$three" "$one")" 1.3))"
if ((${#community[@]})); then
    theirs=$(best "${community[@]}")
    echo "- whole site.yml / community Docker role alone: $(round "$one") s / $(round "$theirs") s = $(ratio "$one" "$theirs")" \
        "(target <= 0.7: $(verdict "$(ratio "$one" "$theirs")" 0.7))"
else
    echo "- whole site.yml / community Docker role alone: not measured (set BENCH_COMMUNITY_DOCKER_ROLE)"
fi
echo "- changed=0 on every no-op re-run and floor run: holds (the bench stops otherwise)"
echo "Each run's output, with profile_tasks: $log_dir"
