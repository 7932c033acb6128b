#!/usr/bin/env bash
# Smoke-test the main-stack test images on this host's Docker engine: each one
# runs with its ports published on 127.0.0.1 only and answers its health
# check; the behaviours the role relies on are tried (PostgreSQL data kept
# across a container re-create, the real n8n's owner setup, login, encryption
# key and EACCES, Coolify logging in
# to PostgreSQL and Redis, the cloudflared token handling, clean SIGTERM
# exits), and, when skopeo and docker-registry are installed, the archives
# are pushed into a throwaway local registry and one is pulled back.
#
# Builds the images first (cached: seconds). Everything it starts is named
# homelab-stack-build-smoke-* and removed at the end.
# Usage: smoke-test.sh      Env: HOMELAB_TEST_CACHE (as build-images.sh)
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out="${HOMELAB_TEST_CACHE:-/var/cache/homelab-test}/stack-images"
prefix=homelab-stack-build-smoke
net=$prefix
work=$(mktemp -d)
started=()
registry_pid=""
passed=0
failed=0

cleanup() {
    if ((${#started[@]})); then
        docker rm -f -v "${started[@]}" >/dev/null 2>&1 || true
    fi
    docker network rm "$net" >/dev/null 2>&1 || true
    if [[ -n "$registry_pid" ]]; then
        kill "$registry_pid" 2>/dev/null || true
        wait "$registry_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

ok() { passed=$((passed + 1)); echo "ok   - $1"; }
bad() { failed=$((failed + 1)); echo "FAIL - $1"; }
# check WHAT CMD...: the command succeeds.
check() {
    local what=$1
    shift
    if "$@" >"$work/last.out" 2>&1; then ok "$what"; else bad "$what: $(tail -c 300 "$work/last.out")"; fi
}
# expect WHAT ACTUAL PATTERN: ACTUAL, its lines joined by spaces, matches the extended regex PATTERN.
expect() {
    local actual=${2//$'\n'/ }
    if grep -Eq -- "$3" <<<"$actual"; then ok "$1"; else bad "$1 (got: ${actual:0:300}; wanted /$3/)"; fi
}
# refute WHAT ACTUAL FIXED: ACTUAL does not contain the fixed string FIXED.
refute() {
    if grep -Fq -- "$3" <<<"$2"; then bad "$1 (found a forbidden string)"; else ok "$1"; fi
}
wait_until() { # wait_until SECONDS CMD...
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 1
    done
}
run() { # run NAME DOCKER-RUN-ARGS... : a detached container with network alias NAME
    local name=$1
    shift
    docker rm -f -v "$prefix-$name" >/dev/null 2>&1 || true
    started+=("$prefix-$name")
    docker run -d --name "$prefix-$name" --network "$net" --network-alias "$name" "$@" >/dev/null
}
port() { # port NAME CONTAINER-PORT: the host port, after checking it is bound to 127.0.0.1 only
    local mapping
    mapping=$(docker port "$prefix-$1" "$2")
    [[ $mapping == 127.0.0.1:* && $(wc -l <<<"$mapping") -eq 1 ]] || { echo "bad binding: $mapping" >&2; return 1; }
    echo "${mapping##*:}"
}
exit_code() { # exit_code NAME: wait (at most 90 s) for the container to end; print its status
    timeout 90 docker wait "$prefix-$1"
}
logs() { docker logs "$prefix-$1" 2>&1; }
stops_cleanly() { # stops_cleanly NAME: docker stop ends it within 8 s with status 0
    local begin=$SECONDS
    docker stop -t 20 "$prefix-$1" >/dev/null
    [[ $((SECONDS - begin)) -le 8 && $(docker inspect -f '{{.State.ExitCode}}' "$prefix-$1") == 0 ]]
}
image() { echo "homelab-test/stack-$1"; }

"$here/build-images.sh"
docker network create "$net" >/dev/null
# The real n8n's version is build-images.sh's choice: read it from images.txt.
n8n_tag=$(sed -n 's|^n8n\.tar n8nio/n8n:||p' "$out/images.txt")

echo "# image labels"
for name in postgres:16-alpine redis:7-alpine ollama:0.32.15 open-webui:v0.12.4 "n8n:$n8n_tag" \
    coolify:4.3.10 coolify-realtime:1.0.17 cloudflared:2026.8.2; do
    expect "label of $name" "$(docker image inspect -f '{{index .Config.Labels "org.homelab.test-image"}}' \
        "$(image "$name")")" '^(STAND-IN for tests|real (PostgreSQL|Redis|n8n))'
done

echo "# postgres (real)"
mkdir "$work/pg"
pg_env=(-e POSTGRES_USER=coolify -e POSTGRES_PASSWORD=db-secret -e POSTGRES_DB=coolify)
run postgres "${pg_env[@]}" -v "$work/pg:/var/lib/postgresql/data" -p 127.0.0.1::5432 "$(image postgres:16-alpine)"
check "postgres: pg_isready -U coolify -d coolify" wait_until 60 docker exec "$prefix-postgres" pg_isready -U coolify -d coolify
check "postgres: 5432 published on 127.0.0.1 only" port postgres 5432
expect "postgres: data dir owned by uid 70, mode 700" "$(stat -c '%u:%g %a' "$work/pg")" '^70:70 700$'
expect "postgres: server runs as uid 70" "$(docker exec "$prefix-postgres" awk '/^Uid/ {print $2}' /proc/1/status)" '^70$'
check "postgres: write a row" docker exec "$prefix-postgres" psql -U coolify -d coolify -v ON_ERROR_STOP=1 \
    -c "CREATE TABLE keep (v text); INSERT INTO keep VALUES ('survives-recreate');"
check "postgres: stops cleanly on its stop signal" stops_cleanly postgres
docker rm -f "$prefix-postgres" >/dev/null
run postgres "${pg_env[@]}" -v "$work/pg:/var/lib/postgresql/data" "$(image postgres:16-alpine)"
check "postgres: re-created container is ready" wait_until 60 docker exec "$prefix-postgres" pg_isready -U coolify -d coolify
expect "postgres: row read back after re-create" \
    "$(docker exec "$prefix-postgres" psql -U coolify -d coolify -tAc 'SELECT v FROM keep' 2>&1)" '^survives-recreate$'
expect "postgres: second start skipped initdb" "$(logs postgres)" 'skipping initialisation'
run pg-nopass "$(image postgres:16-alpine)"
expect "postgres: no password on an empty PGDATA exits 1" "$(exit_code pg-nopass) $(logs pg-nopass)" \
    '^1 .*superuser password is not specified'

echo "# redis (real)"
mkdir "$work/redis"
run redis -v "$work/redis:/data" -p 127.0.0.1::6379 "$(image redis:7-alpine)" \
    redis-server --requirepass redis-secret --appendonly yes --dir /data
check "redis: redis-cli -a ... ping" wait_until 30 sh -c "docker exec $prefix-redis redis-cli -a redis-secret ping 2>/dev/null | grep -qx PONG"
check "redis: 6379 published on 127.0.0.1 only" port redis 6379
expect "redis: /data chowned to uid 999" "$(stat -c '%u' "$work/redis")" '^999$'
expect "redis: server runs as uid 999 gid 1000" \
    "$(docker exec "$prefix-redis" awk '/^(Uid|Gid)/ {print $2}' /proc/1/status | paste -sd:)" '^999:1000$'
expect "redis: a wrong password is refused" \
    "$(docker exec "$prefix-redis" redis-cli -a wrong ping 2>&1)" 'WRONGPASS|invalid'

echo "# coolify stand-in (logs in to the real postgres and redis)"
app_key="base64:$(head -c 32 /dev/urandom | base64)"
coolify_env=(-e "APP_KEY=$app_key" -e DB_PASSWORD=db-secret -e REDIS_PASSWORD=redis-secret)
run coolify "${coolify_env[@]}" -p 127.0.0.1::8080 "$(image coolify:4.3.10)"
check "coolify: GET /api/health answers OK" wait_until 60 sh -c \
    "curl -fsS http://127.0.0.1:$(port coolify 8080)/api/health | grep -qx OK"
check "coolify: curl inside the container" docker exec "$prefix-coolify" curl -fsS http://127.0.0.1:8080/api/health
expect "coolify: logged in to postgres and redis" "$(logs coolify)" 'redis redis:6379: connected and authenticated'
run coolify-badpw -e "APP_KEY=$app_key" -e DB_PASSWORD=wrong -e REDIS_PASSWORD=redis-secret "$(image coolify:4.3.10)"
expect "coolify: a wrong DB_PASSWORD exits 1" "$(exit_code coolify-badpw) $(logs coolify-badpw)" \
    '^1 .*password authentication failed'
run coolify-nokey -e DB_PASSWORD=x -e REDIS_PASSWORD=y "$(image coolify:4.3.10)"
expect "coolify: no APP_KEY exits 1" "$(exit_code coolify-nokey) $(logs coolify-nokey)" '^1 .*APP_KEY'
run coolify-shortkey -e APP_KEY=base64:c2hvcnQ= -e DB_PASSWORD=x -e REDIS_PASSWORD=y "$(image coolify:4.3.10)"
expect "coolify: a short APP_KEY exits 1" "$(exit_code coolify-shortkey) $(logs coolify-shortkey)" '^1 .*32 random bytes'
run coolify-nodb "${coolify_env[@]}" -e DB_HOST=nowhere -e STANDIN_WAIT_SECONDS=3 "$(image coolify:4.3.10)"
expect "coolify: an unreachable database exits 1 after the wait" "$(exit_code coolify-nodb) $(logs coolify-nodb)" \
    '^1 .*not reachable, giving up'

echo "# coolify-realtime (real soketi, terminal stand-in)"
run realtime -e SOKETI_DEFAULT_APP_ID=app -e SOKETI_DEFAULT_APP_KEY=key -e SOKETI_DEFAULT_APP_SECRET=secret \
    -p 127.0.0.1::6001 "$(image coolify-realtime:1.0.17)"
check "realtime: GET :6001/ready" wait_until 30 sh -c "curl -fsS http://127.0.0.1:$(port realtime 6001)/ready | grep -qx OK"
check "realtime: wget :6001/ready and :6002/ready inside" docker exec "$prefix-realtime" sh -c \
    'wget -qO- http://127.0.0.1:6001/ready && wget -qO- http://127.0.0.1:6002/ready'
# Real soketi on 6001: without SOKETI_DEFAULT_APP_* it starts with its demo app (src/server.ts at 1.6.1).
expect "realtime: the image is real soketi" "$(docker image inspect -f '{{index .Config.Labels "org.homelab.test-image"}}' \
    "$(image coolify-realtime:1.0.17)")" '^real soketi '

echo "# ollama stand-in"
mkdir "$work/ollama"
run ollama -v "$work/ollama:/root/.ollama" -p 127.0.0.1::11434 "$(image ollama:0.32.15)"
check "ollama: docker exec ollama list" wait_until 30 docker exec "$prefix-ollama" ollama list
o=$(port ollama 11434)
expect "ollama: GET /" "$(curl -fsS "http://127.0.0.1:$o/")" '^Ollama is running$'
expect "ollama: GET /api/version" "$(curl -fsS "http://127.0.0.1:$o/api/version")" '"version": "0.32.15"'
expect "ollama: POST /api/pull streams JSON lines" \
    "$(curl -fsS "http://127.0.0.1:$o/api/pull" -d '{"model": "llama3.2:1b"}' | tail -1)" '"status": "success"'
expect "ollama: ollama --version" "$(docker exec "$prefix-ollama" ollama --version)" 'ollama version is 0.32.15'
check "ollama: no curl in the image (as upstream)" docker exec "$prefix-ollama" sh -c '! command -v curl'
docker rm -f "$prefix-ollama" >/dev/null
run ollama -v "$work/ollama:/root/.ollama" "$(image ollama:0.32.15)"
check "ollama: pulled model listed after re-create" wait_until 30 sh -c \
    "docker exec $prefix-ollama ollama list | grep -q '^llama3.2:1b '"
expect "ollama: DELETE /api/delete" "$(docker exec "$prefix-ollama" ollama rm llama3.2:1b)" "deleted 'llama3.2:1b'"

echo "# open-webui (the real release)"
mkdir "$work/webui"
run open-webui -e OLLAMA_BASE_URL=http://ollama:11434 -v "$work/webui:/app/backend/data" -p 127.0.0.1::8080 \
    "$(image open-webui:v0.12.4)"
check "open-webui: GET /health" wait_until 90 sh -c \
    "curl -fsS http://127.0.0.1:$(port open-webui 8080)/health | grep -q '\"status\":true'"
w=$(port open-webui 8080)
expect "open-webui: GET /api/version" "$(curl -fsS "http://127.0.0.1:$w/api/version")" '"version":"0.12.4"'
check "open-webui: wrote webui.db into its data bind mount" test -s "$work/webui/webui.db"
check "open-webui: start.sh generated /app/backend/.webui_secret_key" docker exec "$prefix-open-webui" test -s /app/backend/.webui_secret_key

echo "# n8n (real)"
mkdir "$work/n8n"
chown 1000:1000 "$work/n8n"
# No telemetry host is reachable here; with diagnostics on, n8n's shutdown waits
# about 9 s for its telemetry flush, which would fail the 8 s SIGTERM check.
n8n_env=(-e N8N_ENCRYPTION_KEY=key-one -e WEBHOOK_URL=https://n8n.example.test/ -e N8N_HOST=n8n.example.test
    -e N8N_PROTOCOL=https -e N8N_PROXY_HOPS=1 -e N8N_SECURE_COOKIE=false -e N8N_DIAGNOSTICS_ENABLED=false)
run n8n "${n8n_env[@]}" -v "$work/n8n:/home/node/.n8n" -p 127.0.0.1::5678 "$(image "n8n:$n8n_tag")"
n=$(port n8n 5678)
check "n8n: GET /healthz/readiness (database migrated)" wait_until 120 curl -fsS "http://127.0.0.1:$n/healthz/readiness"
check "n8n: health check with node -e inside" docker exec "$prefix-n8n" node -e \
    "fetch('http://127.0.0.1:5678/healthz/readiness').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"
expect "n8n: runs as uid 1000" "$(docker exec "$prefix-n8n" id -u)" '^1000$'
expect "n8n: n8n --version" "$(docker exec "$prefix-n8n" n8n --version)" "^${n8n_tag//./\\.}$"
expect "n8n: settings before setup" "$(curl -fsS "http://127.0.0.1:$n/rest/settings")" '"showSetupOnFirstLoad": ?true'
owner='{"email": "owner@example.test", "firstName": "Home", "lastName": "Lab", "password": "Secret-pass1"}'
setup() { curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$owner" "http://127.0.0.1:$n/rest/owner/setup"; }
expect "n8n: first owner setup -> 200" "$(setup)" '^200$'
expect "n8n: second owner setup -> 400" "$(setup)" '^400$'
expect "n8n: settings after setup" "$(curl -fsS "http://127.0.0.1:$n/rest/settings")" '"showSetupOnFirstLoad": ?false'
login() { # login PASSWORD: the HTTP status; the session cookie in $work/n8n-cookies
    curl -sS -c "$work/n8n-cookies" -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"emailOrLdapLoginId\": \"owner@example.test\", \"password\": \"$1\"}" "http://127.0.0.1:$n/rest/login"
}
expect "n8n: login with a wrong password -> 401" "$(login Wrong-pass1)" '^401$'
expect "n8n: login with the owner password -> 200" "$(login Secret-pass1)" '^200$'
# Unauthenticated, /rest/settings is n8n's public subset, without the URLs.
expect "n8n: webhook URL from the environment (signed in)" \
    "$(curl -fsS -b "$work/n8n-cookies" "http://127.0.0.1:$n/rest/settings")" '"urlBaseWebhook": ?"https://n8n.example.test/"'
expect "n8n: config holds the key, mode 600" "$(stat -c '%u %a' "$work/n8n/config") $(cat "$work/n8n/config")" \
    '^1000 600 .*"encryptionKey": "key-one"'
check "n8n: stops cleanly on SIGTERM" stops_cleanly n8n
run n8n-rekey "${n8n_env[@]}" -e N8N_ENCRYPTION_KEY=key-two -v "$work/n8n:/home/node/.n8n" "$(image "n8n:$n8n_tag")"
expect "n8n: a changed N8N_ENCRYPTION_KEY exits 1" "$(exit_code n8n-rekey) $(logs n8n-rekey)" \
    '^1 .*Mismatching encryption keys'
mkdir -m 0755 "$work/n8n-root"
run n8n-eacces -v "$work/n8n-root:/home/node/.n8n" "$(image "n8n:$n8n_tag")"
expect "n8n: a root-owned 0755 data dir exits 1 with EACCES" "$(exit_code n8n-eacces) $(logs n8n-eacces)" \
    "^1 .*EACCES: permission denied, open '/home/node/.n8n/config'"

echo "# cloudflared stand-in"
token=$(printf '{"a":"%s","t":"%s","s":"%s"}' "$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
    "$(cat /proc/sys/kernel/random/uuid)" "$(head -c 32 /dev/urandom | base64)" | base64 -w0)
mkdir "$work/cf"
printf '%s\n' "$token" >"$work/cf/token"
chown 65532:65532 "$work/cf/token"
chmod 0400 "$work/cf/token"
run cloudflared -v "$work/cf/token:/etc/cloudflared/token:ro" -p 127.0.0.1::20241 "$(image cloudflared:2026.8.2)" \
    tunnel --no-autoupdate --metrics 0.0.0.0:20241 run --token-file /etc/cloudflared/token
check "cloudflared: tunnel --metrics 127.0.0.1:20241 ready" wait_until 30 \
    docker exec "$prefix-cloudflared" cloudflared tunnel --metrics 127.0.0.1:20241 ready
expect "cloudflared: GET /ready" "$(curl -fsS "http://127.0.0.1:$(port cloudflared 20241)/ready")" '"readyConnections": 1'
expect "cloudflared: runs as uid 65532" "$(docker exec "$prefix-cloudflared" id -u)" '^65532$'
refute "cloudflared: token not in the logs" "$(logs cloudflared)" "$token"
refute "cloudflared: token not in docker inspect" "$(docker inspect "$prefix-cloudflared")" "$token"
check "cloudflared: ready fails against a dead address" \
    docker exec "$prefix-cloudflared" sh -c '! cloudflared tunnel --metrics 127.0.0.1:20999 ready'
check "cloudflared: stops cleanly on SIGTERM" stops_cleanly cloudflared
run cf-env -e "TUNNEL_TOKEN=$token" "$(image cloudflared:2026.8.2)" tunnel --metrics 127.0.0.1:20241 run
check "cloudflared: token from TUNNEL_TOKEN" wait_until 30 \
    docker exec "$prefix-cf-env" cloudflared tunnel --metrics 127.0.0.1:20241 ready
run cf-bad -e TUNNEL_TOKEN=not-a-token-4711 "$(image cloudflared:2026.8.2)" tunnel run
expect "cloudflared: a malformed token exits 1" "$(exit_code cf-bad) $(logs cf-bad)" '^1 .*Provided Tunnel token is not valid'
refute "cloudflared: the malformed token is not printed" "$(logs cf-bad)" "not-a-token-4711"
cp "$work/cf/token" "$work/cf/root-token"
chown 0:0 "$work/cf/root-token"
run cf-rootfile -v "$work/cf/root-token:/etc/cloudflared/token:ro" "$(image cloudflared:2026.8.2)" \
    tunnel run --token-file /etc/cloudflared/token
expect "cloudflared: a root-only token file exits 1" "$(exit_code cf-rootfile) $(logs cf-rootfile)" \
    '^1 .*Failed to read token file.*Permission denied'

echo "# SIGTERM"
for name in redis coolify realtime ollama open-webui; do
    check "$name: stops cleanly on SIGTERM" stops_cleanly "$name"
done

if command -v skopeo >/dev/null && command -v docker-registry >/dev/null; then
    echo "# registry round trip"
    reg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
        "$work/registry" "$reg_port" >"$work/registry.yml"
    docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
    registry_pid=$!
    wait_until 20 curl -fsS "http://127.0.0.1:$reg_port/v2/" || true
    while read -r tar ref; do
        check "skopeo copy $tar -> $ref" skopeo copy --quiet --dest-tls-verify=false \
            "docker-archive:$out/$tar" "docker://127.0.0.1:$reg_port/$ref"
    done <"$out/images.txt"
    pulled="127.0.0.1:$reg_port/n8nio/n8n:$n8n_tag"
    check "docker pull $pulled" docker pull -q "$pulled"
    docker rmi "$pulled" >/dev/null 2>&1 || true
fi

echo "$passed passed, $failed failed"
((failed == 0))
