#!/usr/bin/env bash
# Run a command, keep its whole output in a log, and when it fails repeat why at the end.
#
# Usage: repeat-failures.sh LOG COMMAND [ARG...]
# Env:   REPEAT_FAILURES_QUIET=1 writes the output only to LOG, not also to standard output
#        (for runs side by side, whose outputs would interleave).
#
# Molecule prints its verifier's failures long before it stops: a destroy and a
# recap follow them. CI often shows only the last lines of a run, so on failure
# this prints pytest's FAILED/ERROR lines and Ansible's fatal lines once more,
# last, and exits with the command's status.
set -euo pipefail

log_file=$1
shift
mkdir -p "$(dirname "$log_file")"

status=0
if [[ ${REPEAT_FAILURES_QUIET:-} == 1 ]]; then
    "$@" >"$log_file" 2>&1 || status=$?
else
    "$@" 2>&1 | tee "$log_file" || status=$?
fi
if ((status == 0)); then
    exit 0
fi

# Drop colour codes and the "  │ " that Molecule may put before a playbook's or
# pytest's lines; keep the lines that say what failed, the shortest kinds first,
# few enough that they fit in the tail CI shows.
plain_log=$(sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^ *│ //' "$log_file")
reasons=$(
    grep -E '^(FAILED|ERROR) [^ ]+::' <<<"$plain_log" || true
    # A fatal line and the indented YAML result lines under it, as one line.
    awk '/^fatal: \[/ { if (f) print f; f = $0; next }
         f && /^ / && n < 6 { sub(/^ +/, " "); f = f $0; n++; next }
         f { print f; f = ""; n = 0 }
         END { if (f) print f }' <<<"$plain_log"
    grep -E '^E   ' <<<"$plain_log" || true
)
reasons=$(cut -c1-300 <<<"$reasons" | awk 'NF && !seen[$0]++' | head -n 15)
printf '\n==== repeat-failures: "%s" exited with %d; the whole output is in %s ====\n' "$*" "$status" "$log_file"
if [[ -n "$reasons" ]]; then
    printf '%s\n' "$reasons"
else
    printf '(no FAILED, ERROR or fatal line; the last lines were:)\n'
    tail -n 15 <<<"$plain_log"
fi
exit "$status"
