#!/usr/bin/env bash
# Runs inside a build container: the REAL Redis server from Debian's packages,
# arranged like the official redis:alpine image (user redis uid 999, group
# redis gid 1000, created first so that the package reuses them; /data).
set -Eeuo pipefail

groupadd --gid 1000 redis
useradd --system --uid 999 --gid 1000 --home-dir /var/lib/redis --shell /usr/sbin/nologin redis

apt-get update -q >/dev/null
apt-get install -y -q redis-server >/dev/null
rm -rf /var/lib/apt/lists/*

install -d -o redis -g redis /data
install -m 0755 /homelab-build/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
[[ $(id -u redis):$(id -g redis) == 999:1000 ]]
echo "homelab-build: version Redis $(redis-server --version | sed -E 's/^Redis server v=([^ ]+).*/\1/')"
