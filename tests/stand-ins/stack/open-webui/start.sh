#!/usr/bin/env bash
# STAND-IN for tests: /app/backend/start.sh of the Open WebUI stand-in image.
# Like upstream's start.sh it runs from its own directory (/app/backend), so a
# generated .webui_secret_key lands there, then it execs the server.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
exec python3 /usr/local/lib/homelab-standin/open_webui.py "$@"
