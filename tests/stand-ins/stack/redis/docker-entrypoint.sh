#!/bin/sh
# Test image entrypoint for the REAL Redis server from Debian packages,
# published to the test registry as library/redis:7-alpine. Written for this
# test tree; it mimics what the official image's entrypoint does:
#   - `docker run IMAGE --appendonly yes` or `IMAGE x.conf` runs redis-server;
#   - started as root with redis-server: gives /data (the working directory)
#     to redis (uid 999) and re-runs itself as redis (setpriv);
#   - umask 0077 unless one was set;
#   - protected mode off unless a config file sets it (upstream builds it off:
#     ports are only reachable when published).
set -eu

case "${1:-}" in
    -* | *.conf) set -- redis-server "$@" ;;
esac

if [ "${1:-}" = redis-server ] && [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --clear-groups -- "$0" "$@"
fi

if [ "$(umask)" = 0022 ]; then
    umask 0077
fi

if [ "${1:-}" = redis-server ]; then
    config=""
    if [ -f "${2:-}" ]; then
        config=$2
    fi
    if [ -z "$config" ] || ! grep -q '^protected-mode' "$config"; then
        shift
        if [ -n "$config" ]; then
            shift
            set -- "$config" --protected-mode no "$@"
        else
            set -- --protected-mode no "$@"
        fi
        set -- redis-server "$@"
    fi
fi

exec "$@"
