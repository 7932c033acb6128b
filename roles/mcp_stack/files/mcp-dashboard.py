"""Managed by homelab.core.mcp_stack: the MCP stack's status page.

Reads one JSON file per deployed server from /etc/mcp-dashboard/servers.d ({name, url, endpoint}),
probes each every PROBE_INTERVAL seconds with a real MCP `initialize` sent through the gateway
with the access key (/run/secrets/mcp_access_key), and serves on 0.0.0.0:8080:
  /             the page, which fetches /api/status same-origin and refreshes itself
  /api/status   {"interval": s, "servers": [{name, endpoint, status, latency_ms, checked_at, detail}]}
  /healthz      200 "ok"
The key never leaves this process: the browser sees only the results.
"""

import json
import os
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SERVERS_DIR = Path(os.environ.get("MCP_DASHBOARD_SERVERS_DIR", "/etc/mcp-dashboard/servers.d"))
KEY_FILE = Path(os.environ.get("MCP_DASHBOARD_KEY_FILE", "/run/secrets/mcp_access_key"))
INTERVAL = float(os.environ.get("MCP_DASHBOARD_PROBE_INTERVAL", "5"))
PORT = int(os.environ.get("MCP_DASHBOARD_PORT", "8080"))

INITIALIZE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "homelab-mcp-dashboard", "version": "1"}}}).encode()

STATUS = {"interval": INTERVAL, "servers": []}
LOCK = threading.Lock()

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>MCP servers</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; }
th, td { padding: .4rem .9rem; border-bottom: 1px solid #ddd; text-align: left; }
.dot { display: inline-block; width: .8rem; height: .8rem; border-radius: 50%; margin-right: .4rem; }
.up .dot { background: #2e7d32; } .down .dot { background: #c62828; } .unknown .dot { background: #9e9e9e; }
#updated { color: #666; font-size: .9rem; }
</style>
</head>
<body>
<h1>MCP servers</h1>
<table>
<thead><tr><th>Server</th><th>Status</th><th>Latency</th><th>Last check</th><th>Endpoint</th></tr></thead>
<tbody id="servers"><tr><td colspan="5">Loading...</td></tr></tbody>
</table>
<p id="updated"></p>
<script>
"use strict";
function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }
async function refresh() {
  let data;
  try {
    const response = await fetch("/api/status", {cache: "no-store"});
    data = await response.json();
  } catch (error) {
    document.getElementById("updated").textContent = "Status endpoint unreachable; retrying.";
    return 5;
  }
  const body = document.getElementById("servers");
  body.replaceChildren();
  for (const server of data.servers) {
    const row = document.createElement("tr");
    row.className = server.status;
    row.dataset.server = server.name;
    row.appendChild(cell(server.name));
    const status = cell(server.status);
    status.insertBefore(Object.assign(document.createElement("span"), {className: "dot"}), status.firstChild);
    row.appendChild(status);
    row.appendChild(cell(server.latency_ms === null ? "-" : server.latency_ms + " ms"));
    row.appendChild(cell(server.checked_at || "-"));
    row.appendChild(cell(server.endpoint));
    body.appendChild(row);
  }
  if (data.servers.length === 0) {
    body.appendChild(Object.assign(document.createElement("tr"), {innerHTML: "<td colspan='5'>No server is deployed.</td>"}));
  }
  document.getElementById("updated").textContent = "Updated " + new Date().toISOString() + ", every " + data.interval + " s.";
  return data.interval;
}
async function loop() { const seconds = await refresh(); setTimeout(loop, seconds * 1000); }
loop();
</script>
</body>
</html>
"""

FAVICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
           '<circle cx="8" cy="8" r="7" fill="#2e7d32"/></svg>')


def servers():
    found = []
    for path in sorted(SERVERS_DIR.glob("*.json")):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return found


def probe(server, key):
    request = urllib.request.Request(server["url"], data=INITIALIZE, headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
        "Authorization": "Bearer " + key})
    begin = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=4) as response:
            response.read(65536)
            status, detail = ("up", "") if response.status == 200 else ("down", "HTTP %d" % response.status)
    except urllib.error.HTTPError as error:
        status, detail = "down", "HTTP %d" % error.code
    except OSError as error:
        status, detail = "down", str(getattr(error, "reason", error))
    latency = round((time.monotonic() - begin) * 1000)
    return {"name": server["name"], "endpoint": server["endpoint"], "status": status,
            "latency_ms": latency if status == "up" else None,
            "checked_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "detail": detail}


def probe_forever():
    while True:
        key = KEY_FILE.read_text().strip() if KEY_FILE.exists() else ""
        results = [probe(server, key) for server in servers()]
        with LOCK:
            STATUS["servers"] = results
        time.sleep(INTERVAL)


class Handler(BaseHTTPRequestHandler):
    server_version = "homelab-mcp-dashboard"

    def reply(self, status, content_type, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/":
            self.reply(200, "text/html; charset=utf-8", PAGE)
        elif self.path == "/api/status":
            with LOCK:
                self.reply(200, "application/json", json.dumps(STATUS))
        elif self.path in ("/favicon.svg", "/favicon.ico"):
            self.reply(200, "image/svg+xml", FAVICON)
        elif self.path == "/healthz":
            self.reply(200, "text/plain", "ok\n")
        else:
            self.reply(404, "text/plain", "not found\n")

    def log_message(self, fmt, *args):
        if self.path not in ("/healthz", "/api/status"):
            super().log_message(fmt, *args)


def main():
    threading.Thread(target=probe_forever, daemon=True).start()
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()


if __name__ == "__main__":
    main()
