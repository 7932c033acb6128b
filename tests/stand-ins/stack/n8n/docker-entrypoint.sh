#!/bin/sh
# /docker-entrypoint.sh of the test image of the real n8n (our own script, with
# the semantics of the official image's): tini runs it, and it runs `n8n` with
# the container's arguments appended, or `n8n` alone when there are none.
if [ "$#" -gt 0 ]; then
    exec n8n "$@"
fi
exec n8n
