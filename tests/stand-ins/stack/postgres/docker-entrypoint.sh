#!/usr/bin/env bash
# Test image entrypoint for the REAL PostgreSQL server from Debian packages,
# published to the test registry as library/postgres:16-alpine. Written for
# this test tree; it mimics what the official image's entrypoint does:
#   - `docker run IMAGE -c x=y` runs `postgres -c x=y`;
#   - started as root: creates and chowns $PGDATA to postgres (uid 70), then
#     re-runs itself as postgres (setpriv);
#   - empty $PGDATA: initdb with the superuser $POSTGRES_USER (default
#     postgres) and the password from $POSTGRES_PASSWORD or
#     $POSTGRES_PASSWORD_FILE, trust on the local socket and 127.0.0.1 (so
#     `docker exec ... psql -U USER` works like upstream), scram-sha-256 for
#     every other TCP client; creates $POSTGRES_DB; runs
#     /docker-entrypoint-initdb.d/*.sh and *.sql;
#   - non-empty $PGDATA: starts as it is (the password is NOT changed, as
#     upstream);
#   - finally execs postgres in the foreground, listening on '*':5432.
set -Eeuo pipefail

log() { printf '%s docker-entrypoint: %s\n' "$(date -u +%FT%TZ)" "$*"; }

# file_env VAR: VAR from $VAR or from the file named by $VAR_FILE.
file_env() {
    local var=$1 file_var="${1}_FILE"
    if [[ -n "${!var:-}" && -n "${!file_var:-}" ]]; then
        log "error: both $var and $file_var are set (but are exclusive)" >&2
        exit 1
    fi
    if [[ -n "${!file_var:-}" ]]; then
        printf -v "$var" '%s' "$(<"${!file_var}")"
    fi
    export "$var"="${!var:-}"
    unset "$file_var"
}

initialise() {
    file_env POSTGRES_PASSWORD
    : "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
    if [[ -z "$POSTGRES_PASSWORD" && "${POSTGRES_HOST_AUTH_METHOD:-}" != trust ]]; then
        log "error: Database is uninitialized and superuser password is not specified." >&2
        log "       Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to a non-empty value." >&2
        exit 1
    fi
    log "initialising $PGDATA for superuser $POSTGRES_USER"
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as upstream
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --auth-local=trust --auth-host=trust ${POSTGRES_INITDB_ARGS:-} >/dev/null
    printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >>"$PGDATA/pg_hba.conf"

    pg_ctl --pgdata="$PGDATA" --options="-c listen_addresses='' -p 5432" --wait --silent start
    local psql=(psql -v ON_ERROR_STOP=1 --no-psqlrc --username "$POSTGRES_USER" --no-password --dbname postgres)
    if [[ "$POSTGRES_DB" != postgres ]]; then
        "${psql[@]}" --set db="$POSTGRES_DB" -q <<<'CREATE DATABASE :"db";'
    fi
    local script
    for script in /docker-entrypoint-initdb.d/*; do
        case "$script" in
            *.sh) log "running $script"; bash "$script" ;;
            *.sql) log "running $script"; "${psql[@]}" --dbname "$POSTGRES_DB" -q -f "$script" ;;
            *) [[ -e "$script" ]] && log "ignoring $script" ;;
        esac
    done
    pg_ctl --pgdata="$PGDATA" --mode=fast --wait --silent stop
    log "PostgreSQL init process complete; ready for start up."
}

if [[ "${1:-}" == -* ]]; then
    set -- postgres "$@"
fi

if [[ "${1:-}" == postgres ]]; then
    if [[ $(id -u) -eq 0 ]]; then
        mkdir -p "$PGDATA" /var/run/postgresql
        find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
        chmod 700 "$PGDATA"
        chown postgres:postgres /var/run/postgresql
        chmod 3777 /var/run/postgresql
        exec setpriv --reuid=postgres --regid=postgres --init-groups -- "${BASH_SOURCE[0]}" "$@"
    fi
    if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
        initialise
    else
        log "PostgreSQL database directory appears to contain a database; skipping initialisation"
    fi
    unset POSTGRES_PASSWORD
fi

exec "$@"
