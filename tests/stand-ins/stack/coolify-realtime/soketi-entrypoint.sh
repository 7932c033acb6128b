#!/bin/sh
# Test image of coollabsio/coolify-realtime:1.0.17: our own script, written after upstream's
# docker/coolify-realtime/soketi-entrypoint.sh (coollabsio/coolify v4.3.10), which the image's
# ENTRYPOINT ["/bin/sh", "/soketi-entrypoint.sh"] runs. As upstream's, it starts the terminal
# server and soketi side by side, prefixes their log lines, forwards TERM and INT to both, and
# when one exits stops the other and exits with its code.
#   - soketi is the REAL soketi, started as upstream starts it: node /app/bin/server.js start
#     (it reads SOKETI_DEFAULT_APP_ID/KEY/SECRET, SOKETI_DEBUG, SOKETI_PORT ... itself).
#   - the terminal server (6002) is a STAND-IN (coolify-terminal-standin; see realtime.py),
#     in place of upstream's node /terminal/terminal-server.js.
# Upstream's "watch" argument (node --watch of the terminal server) has no use here.

log() {
    echo "$(date '+%Y-%m-%d %H:%M:%S') [ENTRYPOINT] $*"
}

start_logger() {
    prefix="$1"
    fifo_path="$2"
    while IFS= read -r line; do
        echo "$(date '+%Y-%m-%d %H:%M:%S') [$prefix] $line"
    done <"$fifo_path" &
}

TERMINAL_LOG_FIFO="/tmp/coolify-terminal-log.$$"
SOKETI_LOG_FIFO="/tmp/coolify-soketi-log.$$"
rm -f "$TERMINAL_LOG_FIFO" "$SOKETI_LOG_FIFO"
mkfifo "$TERMINAL_LOG_FIFO" "$SOKETI_LOG_FIFO"
trap 'rm -f "$TERMINAL_LOG_FIFO" "$SOKETI_LOG_FIFO"' EXIT

log "Starting realtime container (test image: real soketi on 6001, STAND-IN terminal server on 6002)"
log "SOKETI_DEBUG=${SOKETI_DEBUG:-unset}"

start_logger TERMINAL "$TERMINAL_LOG_FIFO"
start_logger SOKETI "$SOKETI_LOG_FIFO"

coolify-terminal-standin >"$TERMINAL_LOG_FIFO" 2>&1 &
TERMINAL_PID=$!
log "Terminal server (stand-in) started pid=$TERMINAL_PID"

node /app/bin/server.js start >"$SOKETI_LOG_FIFO" 2>&1 &
SOKETI_PID=$!
log "Soketi started pid=$SOKETI_PID"

forward_signal() {
    log "Forwarding signal $1 to terminal=$TERMINAL_PID soketi=$SOKETI_PID"
    kill -"$1" "$TERMINAL_PID" 2>/dev/null || true
    kill -"$1" "$SOKETI_PID" 2>/dev/null || true
}
trap 'forward_signal TERM' TERM
trap 'forward_signal INT' INT

# stop_when_gone NAME PID OTHER_NAME OTHER_PID: when PID has exited, stop the other and exit with its code.
stop_when_gone() {
    kill -0 "$2" 2>/dev/null && return 0
    wait "$2"
    EXIT_CODE=$?
    log "$1 exited code=$EXIT_CODE; stopping $3 pid=$4"
    kill "$4" 2>/dev/null || true
    wait "$4" 2>/dev/null || true
    exit "$EXIT_CODE"
}

while true; do
    stop_when_gone "Terminal server" "$TERMINAL_PID" soketi "$SOKETI_PID"
    stop_when_gone Soketi "$SOKETI_PID" terminal "$TERMINAL_PID"
    sleep 1
done
