#!/usr/bin/env bash
# Run every Molecule scenario (`molecule test`), in two lanes side by side: the `stack`
# scenario, the longest by far, in one, and all the others one after another in the second.
# The second lane's scenarios fit beside `stack`, but on two cores `stack` itself runs slower
# for the company: on a clean clone, the `stack` lane took 2407 s and the other 1292 s, and the
# whole `make test` 2572 s, against 2529 s before, in one lane without the fleet scenario.
#
# Usage: molecule-lanes.sh LOG_DIR
# Each scenario's whole output goes to LOG_DIR/molecule-<scenario>.log; this prints when each
# starts and ends, and for a failed one why (tests/scripts/repeat-failures.sh). A lane stops at
# its first failed scenario; the other lane runs on. Exits non-zero when any scenario failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
log_dir=$1
long_lane=(stack)
mkdir -p "$log_dir"

other_lane=()
for file in molecule/*/molecule.yml; do
    scenario=$(basename "$(dirname "$file")")
    [[ " ${long_lane[*]} " == *" $scenario "* ]] || other_lane+=("$scenario")
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
lane "${long_lane[@]}" &
long_pid=$!
# Interrupted: take the other lane down too.
trap 'kill "$long_pid" 2>/dev/null || true' EXIT
other_status=0
lane "${other_lane[@]}" || other_status=$?
long_status=0
wait "$long_pid" || long_status=$?
echo "molecule-lanes: both lanes done in $((SECONDS - started)) s"
((other_status == 0 && long_status == 0))
