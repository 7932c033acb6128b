#!/usr/bin/env bash
# Run a command with a working Docker engine and the test tools available.
#
# Installs what the Molecule harness needs when it is missing (Debian's
# docker.io, debootstrap, skopeo, docker-registry), starts dockerd when none
# answers, runs "$@", and stops the dockerd it started (and only that one).
set -euo pipefail

log() { printf 'with-docker-engine: %s\n' "$*" >&2; }

needed_packages=()
command -v dockerd >/dev/null || needed_packages+=(docker.io)
command -v debootstrap >/dev/null || needed_packages+=(debootstrap)
command -v skopeo >/dev/null || needed_packages+=(skopeo)
command -v docker-registry >/dev/null || needed_packages+=(docker-registry)
if ((${#needed_packages[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        log "missing ${needed_packages[*]} and not root: install them, then re-run."
        exit 1
    fi
    log "installing ${needed_packages[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${needed_packages[@]}" ca-certificates iptables >/dev/null
    # The docker-registry package starts a system-wide registry we do not use.
    if [[ " ${needed_packages[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null \
        && systemctl is-active --quiet docker-registry 2>/dev/null; then
        systemctl stop docker-registry || true
    fi
fi

started_pid=""
stop_engine() {
    if [[ -n "$started_pid" ]]; then
        log "stopping the dockerd it started (pid $started_pid)"
        kill "$started_pid" 2>/dev/null || true
        for _ in $(seq 1 60); do
            kill -0 "$started_pid" 2>/dev/null || return 0
            sleep 0.5
        done
        kill -9 "$started_pid" 2>/dev/null || true
    fi
}
trap stop_engine EXIT

if ! docker info >/dev/null 2>&1; then
    log "no Docker engine answers; starting dockerd"
    dockerd_log="${TMPDIR:-/tmp}/homelab-test-dockerd.log"
    setsid dockerd --pidfile /run/homelab-test-dockerd.pid >"$dockerd_log" 2>&1 < /dev/null &
    started_pid=$!
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        kill -0 "$started_pid" 2>/dev/null || { log "dockerd exited; see $dockerd_log"; tail -20 "$dockerd_log" >&2; exit 1; }
        sleep 0.5
    done
    docker info >/dev/null 2>&1 || { log "dockerd did not answer within 30 s; see $dockerd_log"; exit 1; }
fi

"$@"
