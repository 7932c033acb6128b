"""Managed by homelab.core.mcp_stack: health check of an MCP server inside its container.

Usage: mcp-health URL. A URL ending in /mcp gets a real MCP `initialize` (Streamable HTTP); any
other URL a GET. Exit 0 on a 2xx answer, 1 otherwise.
"""
import json
import sys
import urllib.request

url = sys.argv[1]
if url.rstrip("/").endswith("/mcp"):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "homelab-health", "version": "1"}}})
    request = urllib.request.Request(url, data=body.encode(), headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
else:
    request = urllib.request.Request(url)
try:
    with urllib.request.urlopen(request, timeout=4) as response:
        sys.exit(0 if 200 <= response.status < 300 else 1)
except OSError as error:
    print(error, file=sys.stderr)
    sys.exit(1)
