#!/usr/bin/env bash
# Run every Molecule scenario (`molecule test`) in three lanes side by side: the `stack` scenario,
# the longest by far, in one, `stack-lifecycle` (the same host taken through teardown, backup,
# restore and update) in the second, and all the others one after another in the third. The
# scenarios mostly wait (containers starting, health checks, Ansible's round trips): with `stack`
# running alone, two cores were 60-90 % idle in its verify, so the lanes share them without
# slowing each other much. On a clean clone, `stack` took 1848 s, `stack-lifecycle` 1358 s and the
# third lane 1595 s, and the whole `make test` 2031 s, against 2640 s with two lanes, when `stack`
# held the lifecycle tests too.
#
# Usage: molecule-lanes.sh LOG_DIR
# Each scenario's whole output goes to LOG_DIR/molecule-<scenario>.log; this prints when each
# starts and ends, and for a failed one why (tests/scripts/repeat-failures.sh). A lane stops at
# its first failed scenario; the others run on. Exits non-zero when any scenario failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
log_dir=$1
# Each of these runs in a lane of its own; every other scenario in the last lane.
own_lanes=(stack stack-lifecycle)
mkdir -p "$log_dir"

shared_lane=()
for file in molecule/*/molecule.yml; do
    scenario=$(basename "$(dirname "$file")")
    [[ " ${own_lanes[*]} " == *" $scenario "* ]] || shared_lane+=("$scenario")
done

# lane NAME...: the scenarios one after another; stops at the first that fails.
lane() {
    local scenario started status
    for scenario in "$@"; do
        started=$SECONDS
        echo "molecule-lanes: $scenario started"
        status=0
        REPEAT_FAILURES_QUIET=1 tests/scripts/repeat-failures.sh "$log_dir/molecule-$scenario.log" \
            molecule test --scenario-name "$scenario" || status=$?
        if ((status != 0)); then
            echo "molecule-lanes: $scenario FAILED (exit $status) after $((SECONDS - started)) s"
            return "$status"
        fi
        echo "molecule-lanes: $scenario passed in $((SECONDS - started)) s"
    done
}

started=$SECONDS
pids=()
# Interrupted: take the other lanes down too.
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
for scenario in "${own_lanes[@]}"; do
    lane "$scenario" &
    pids+=($!)
done
lane "${shared_lane[@]}" &
pids+=($!)
failed=0
for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
done
echo "molecule-lanes: all lanes done in $((SECONDS - started)) s"
((failed == 0))
