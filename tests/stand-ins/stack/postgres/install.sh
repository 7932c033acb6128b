#!/usr/bin/env bash
# Runs inside a build container: the REAL PostgreSQL server from Debian's
# packages, arranged like the official postgres:alpine image (user postgres
# with uid/gid 70, created first so that the package reuses it; no cluster
# made at install time; listen_addresses '*' in new clusters).
# The JIT (LLVM, about 175 MB) is left out with dpkg path-exclude: the
# packages stay installed, and PostgreSQL runs without JIT when its provider
# library is absent, without an error.
set -Eeuo pipefail

cat >/etc/dpkg/dpkg.cfg.d/homelab-postgres-nojit <<'CFG'
path-exclude /usr/lib/postgresql/*/lib/bitcode/*
path-exclude /usr/lib/postgresql/*/lib/llvmjit*
path-exclude /usr/lib/*/libLLVM*
path-exclude /usr/lib/*/libz3.so*
CFG

groupadd --system --gid 70 postgres
useradd --system --uid 70 --gid 70 --home-dir /var/lib/postgresql --shell /bin/bash postgres
install -d -o postgres -g postgres /var/lib/postgresql

apt-get update -q >/dev/null
apt-get install -y -q postgresql-common >/dev/null
sed -ri 's/^#?(create_main_cluster) .*$/\1 = false/' /etc/postgresql-common/createcluster.conf
apt-get install -y -q postgresql >/dev/null
rm -rf /var/lib/apt/lists/*

major=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -1)
ln -s "$major" /usr/lib/postgresql/current
sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" "/usr/share/postgresql/$major/postgresql.conf.sample"
install -d -o postgres -g postgres -m 3777 /var/run/postgresql
install -d -o postgres -g postgres -m 0700 /var/lib/postgresql/data
install -d /docker-entrypoint-initdb.d
install -m 0755 /homelab-build/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
[[ $(id -u postgres):$(id -g postgres) == 70:70 ]]
echo "homelab-build: version PostgreSQL $("/usr/lib/postgresql/$major/bin/postgres" --version | sed 's/^.*) //')"
