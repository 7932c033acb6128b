#!/bin/sh
# Managed by homelab.core.mcp_stack. Exports each file in /run/secrets/env as the variable it is
# named after, then runs the server: credentials reach it through its environment without being
# in the container's configuration (docker inspect) or in argv.
set -eu
if [ -d /run/secrets/env ]; then
    for file in /run/secrets/env/*; do
        [ -f "$file" ] || continue
        name=$(basename "$file")
        value=$(cat "$file")
        export "$name=$value"
    done
fi
exec "$@"
