#!/usr/bin/env bash
# Runs inside the build container of the Open-WebUI test image (from homelab-test/stack-python311:bookworm),
# after build-images.sh copied the wheels and the sdist that stage_open_webui downloaded from PyPI to
# /homelab-wheels and /homelab-sdist. Installs the REAL Open-WebUI offline and lays it out as upstream's
# Dockerfile at v0.12.4 does: the backend package in /app/backend/open_webui (its WORKDIR, so env.py's
# BACKEND_DIR is /app/backend and DATA_DIR /app/backend/data), the built frontend in /app/build,
# /app/CHANGELOG.md and /app/package.json (env.py reads VERSION from BASE_DIR/package.json), and
# upstream's own backend/start.sh, unchanged.
# Usage: install.sh OPEN_WEBUI_VERSION TORCH_VERSION START_SH_SHA256 PYTHON_VERSION (the one the wheels were picked for)
set -Eeuo pipefail
version=$1 torch_version=$2 start_sh_sha256=$3 python_version=$4
venv=/opt/open-webui
sdist=/homelab-sdist/open_webui-$version.tar.gz

test "$(python3 -c 'import platform; print(platform.python_version())')" = "$python_version"
python3 -m venv "$venv"
"$venv/bin/pip" install --no-index --find-links /homelab-wheels --no-cache-dir --disable-pip-version-check -q \
    "open-webui==$version" "torch==$torch_version"
rm -rf /homelab-wheels

site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
install -d /app/backend
mv "$site/open_webui" /app/backend/open_webui
mv /app/backend/open_webui/frontend /app/build
cp /app/backend/open_webui/CHANGELOG.md /app/CHANGELOG.md
tar -xzf "$sdist" -C /app --strip-components=1 \
    "open_webui-$version/package.json" "open_webui-$version/LICENSE" \
    "open_webui-$version/LICENSE_HISTORY" "open_webui-$version/LICENSE_NOTICE"
tar -xzf "$sdist" -C /app/backend --strip-components=2 "open_webui-$version/backend/start.sh"
rm -rf /homelab-sdist
echo "$start_sh_sha256  /app/backend/start.sh" | sha256sum -c --quiet
chmod 0755 /app/backend/start.sh
install -d /app/backend/data
# As upstream's Dockerfile: chroma's telemetry id, all zeros.
install -d /root/.cache/chroma
printf %s 00000000-0000-0000-0000-000000000000 >/root/.cache/chroma/telemetry_user_id

# The result: the versions, and what start.sh runs (`python3 -m uvicorn open_webui.main:app` from /app/backend).
test "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("open-webui"))')" = "$version"
test "$("$venv/bin/python" -c 'import torch; print(torch.__version__)')" = "$torch_version+cpu"
test "$(python3 -c 'import json; print(json.load(open("/app/package.json"))["version"])')" = "$version"
test "$(PATH=$venv/bin:$PATH command -v python3)" = "$venv/bin/python3"
echo "homelab-build: open-webui $version, torch $torch_version, $("$venv/bin/python" --version)"
