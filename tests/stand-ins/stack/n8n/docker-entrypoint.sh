#!/bin/sh
# STAND-IN for tests: /docker-entrypoint.sh of the n8n stand-in image. Like
# upstream's, it runs `n8n` with the container's arguments (none: `n8n start`).
if [ "$#" -gt 0 ]; then
    exec n8n "$@"
fi
exec n8n
