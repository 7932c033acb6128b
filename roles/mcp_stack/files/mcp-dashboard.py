"""Managed by homelab.core.mcp_stack: the homelab's status page (loopback only), probing everything server-side.

Reads one JSON file per deployed MCP server from /etc/mcp-dashboard/servers.d ({name, url, endpoint}) and the
homelab's view from /etc/mcp-dashboard/homelab.json (homelab.core.status_page: the main stack's services
with how to probe each, the GPU decision, Ollama's API, the backup status file). Every PROBE_INTERVAL seconds,
all at once, it sends each MCP server a real MCP `initialize` through the gateway with the access key
(/run/secrets/mcp_access_key), then ends the session that opened (DELETE), each main-stack service its HTTP
probe (or a Postgres SSLRequest, a Redis PING) over the status networks, asks Ollama for its installed
(/api/tags) and loaded (/api/ps) models, and reads the backup tool's status file (mounted read-only).
It serves on 0.0.0.0:8080:
  /             the page, which fetches /api/status same-origin and refreshes itself
  /api/status   {"interval", "generated_at", "servers", "services", "gpu", "ollama", "backup"}
  /healthz      200 "ok"
The key never leaves this process, and only chosen fields of what it reads reach the page: no secret does.
"""

import json
import os
import socket
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SERVERS_DIR = Path(os.environ.get("MCP_DASHBOARD_SERVERS_DIR", "/etc/mcp-dashboard/servers.d"))
HOMELAB_FILE = Path(os.environ.get("MCP_DASHBOARD_HOMELAB_FILE", "/etc/mcp-dashboard/homelab.json"))
KEY_FILE = Path(os.environ.get("MCP_DASHBOARD_KEY_FILE", "/run/secrets/mcp_access_key"))
INTERVAL = float(os.environ.get("MCP_DASHBOARD_PROBE_INTERVAL", "5"))
TIMEOUT = float(os.environ.get("MCP_DASHBOARD_PROBE_TIMEOUT", "3"))
PORT = int(os.environ.get("MCP_DASHBOARD_PORT", "8080"))
# A verified backup older than this is shown as stale (amber), not as failed.
BACKUP_STALE_HOURS = float(os.environ.get("MCP_DASHBOARD_BACKUP_STALE_HOURS", "48"))

INITIALIZE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "homelab-mcp-dashboard", "version": "1"}}}).encode()
# PostgreSQL's SSLRequest: any server answers one byte, S or N, before any authentication.
PG_SSL_REQUEST = struct.pack("!ii", 8, 80877103)

STATUS = {"interval": INTERVAL, "generated_at": None, "servers": [], "services": [], "gpu": None,
          "ollama": None, "backup": {"state": "unknown", "text": "not read yet"}}
LOCK = threading.Lock()

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Homelab status</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem 2rem; color: #222; }
h1 { margin-bottom: .3rem; } h2 { margin: 1.4rem 0 .4rem; font-size: 1.15rem; }
table { border-collapse: collapse; }
th, td { padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: left; font-size: .92rem; }
.dot { display: inline-block; width: .8rem; height: .8rem; border-radius: 50%; margin-right: .4rem; vertical-align: -.05rem; }
.up .dot, .ok .dot { background: #2e7d32; } .down .dot, .none .dot { background: #c62828; }
.stale .dot { background: #ef8f00; } .unknown .dot, .elsewhere .dot, .unprobed .dot { background: #9e9e9e; }
tr.down td { background: #fdecea; }
.facts p { margin: .25rem 0; } .muted, #updated { color: #666; font-size: .88rem; }
ul { margin: .2rem 0; padding-left: 1.2rem; }
.models { display: flex; gap: 3rem; }
</style>
</head>
<body>
<h1>Homelab status</h1>
<div class="facts">
<p id="gpu" class="unknown"><span class="dot"></span><b>GPU:</b> <span class="value">Loading...</span></p>
<p id="backup" class="unknown"><span class="dot"></span><b>Last verified backup:</b> <span class="value">Loading...</span></p>
</div>
<h2>Main stack</h2>
<table>
<thead><tr><th>Service</th><th>Status</th><th>HTTP</th><th>Latency</th><th>Local URL</th><th>Detail</th></tr></thead>
<tbody id="services"><tr><td colspan="6">Loading...</td></tr></tbody>
</table>
<h2>Ollama models</h2>
<div class="models">
<div><b>Loaded</b><ul id="models-loaded"><li class="muted">Loading...</li></ul></div>
<div><b>Installed</b><ul id="models-installed"><li class="muted">Loading...</li></ul></div>
</div>
<h2>MCP stack</h2>
<table>
<thead><tr><th>Server</th><th>Status</th><th>Latency</th><th>Last check</th><th>Endpoint</th></tr></thead>
<tbody id="servers"><tr><td colspan="5">Loading...</td></tr></tbody>
</table>
<p id="updated"></p>
<script>
"use strict";
function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = text;
  if (className) node.className = className;
  return node;
}
function statusCell(status) {
  const td = el("td", status);
  td.insertBefore(el("span", null, "dot"), td.firstChild);
  return td;
}
function linkCell(url) {
  const td = el("td");
  if (url) { const a = el("a", url); a.href = url; td.appendChild(a); } else { td.textContent = "-"; }
  return td;
}
function latency(ms) { return ms === null || ms === undefined ? "-" : ms + " ms"; }
function size(bytes) {
  if (!bytes) return "0 B";
  const units = ["B", "KB", "MB", "GB", "TB"];
  const power = Math.min(Math.floor(Math.log(bytes) / Math.log(1000)), units.length - 1);
  return (bytes / Math.pow(1000, power)).toFixed(power ? 1 : 0) + " " + units[power];
}
function fact(id, state, text) {
  const node = document.getElementById(id);
  node.className = state;
  node.dataset.state = state;
  node.querySelector(".value").textContent = text;
}
function rows(body, columns, items, empty) {
  body.replaceChildren();
  if (items.length === 0) {
    const row = el("tr"); const td = el("td", empty); td.colSpan = columns; row.appendChild(td); body.appendChild(row);
  }
}
function models(id, items, empty, describe) {
  const list = document.getElementById(id);
  list.replaceChildren();
  for (const item of items) list.appendChild(el("li", describe(item)));
  if (items.length === 0) list.appendChild(el("li", empty, "muted"));
}
function render(data) {
  const gpu = data.gpu;
  if (gpu) fact("gpu", gpu.label === "unknown" ? "unknown" : "ok", gpu.label + " (homelab_gpu_mode " + gpu.mode + "): " + gpu.reason);
  else fact("gpu", "unknown", "not handed to the status page (deploy with site.yml)");
  const backup = data.backup;
  fact("backup", backup.state, backup.text);

  const services = document.getElementById("services");
  rows(services, 6, data.services, "The main stack's services were not handed to the status page (deploy with site.yml).");
  for (const service of data.services) {
    const row = el("tr", null, service.status);
    row.dataset.service = service.name;
    row.title = service.description || "";
    row.appendChild(el("td", service.name));
    row.appendChild(statusCell(service.status));
    row.appendChild(el("td", service.http_status === null ? "-" : String(service.http_status)));
    row.appendChild(el("td", latency(service.latency_ms)));
    row.appendChild(linkCell(service.local_url));
    row.appendChild(el("td", service.detail || ""));
    services.appendChild(row);
  }

  const ollama = data.ollama;
  if (!ollama || ollama.status !== "up") {
    const why = !ollama ? "Ollama does not run on this host." : ollama.detail;
    models("models-loaded", [], why, null);
    models("models-installed", [], why, null);
  } else {
    models("models-loaded", ollama.loaded, "none loaded",
           m => m.name + " (" + size(m.size) + ", " + size(m.size_vram) + " in GPU memory"
                + (m.expires_at ? ", until " + m.expires_at : "") + ")");
    models("models-installed", ollama.installed, "none installed", m => m.name + " (" + size(m.size) + ")");
  }

  const servers = document.getElementById("servers");
  rows(servers, 5, data.servers, "No MCP service is deployed.");
  for (const server of data.servers) {
    const row = el("tr", null, server.status);
    row.dataset.server = server.name;
    row.appendChild(el("td", server.name));
    row.appendChild(statusCell(server.status));
    row.appendChild(el("td", latency(server.latency_ms)));
    row.appendChild(el("td", server.checked_at || "-"));
    row.appendChild(el("td", server.endpoint || server.detail || "-"));
    servers.appendChild(row);
  }
  document.getElementById("updated").textContent =
    "Probed " + (data.generated_at || "-") + ", every " + data.interval + " s, from the dashboard's container.";
}
async function refresh() {
  let data;
  try {
    const response = await fetch("/api/status", {cache: "no-store"});
    data = await response.json();
  } catch (error) {
    document.getElementById("updated").textContent = "Status endpoint unreachable; retrying.";
    return 5;
  }
  render(data);
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


def now():
    return datetime.now(timezone.utc)


def stamp(moment=None):
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_json(path, default):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def servers():
    found = []
    for path in sorted(SERVERS_DIR.glob("*.json")):
        entry = read_json(path, None)
        if isinstance(entry, dict):
            found.append(entry)
    return found


def homelab():
    view = read_json(HOMELAB_FILE, {})
    return view if isinstance(view, dict) else {}


def reason(error):
    """A short, secret-free sentence for a failed probe."""
    if isinstance(error, urllib.error.HTTPError):
        return "HTTP %d" % error.code
    error = getattr(error, "reason", error)
    if isinstance(error, socket.gaierror):
        return "not running (its name does not resolve)"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "no answer within %g s" % TIMEOUT
    return str(error)[:200] or type(error).__name__


def timed(function):
    """(status, http_status, detail, latency_ms) of a probe function returning (up, http_status, detail)."""
    begin = time.monotonic()
    try:
        up, http_status, detail = function()
    except urllib.error.HTTPError as error:
        up, http_status, detail = False, error.code, reason(error)
    except (OSError, ValueError) as error:
        up, http_status, detail = False, None, reason(error)
    latency = round((time.monotonic() - begin) * 1000)
    return ("up" if up else "down"), http_status, detail, (latency if up else None)


def http_get(url):
    with urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "homelab-status"}), timeout=TIMEOUT) as response:
        response.read(65536)
        return response.status < 400, response.status, ""


def postgres(host, port):
    with socket.create_connection((host, port), timeout=TIMEOUT) as connection:
        connection.sendall(PG_SSL_REQUEST)
        answer = connection.recv(1)
    if answer in (b"S", b"N"):
        return True, None, "PostgreSQL answers (TLS %s)" % ("offered" if answer == b"S" else "off")
    return False, None, "not a PostgreSQL answer"


def redis(host, port):
    with socket.create_connection((host, port), timeout=TIMEOUT) as connection:
        connection.sendall(b"PING\r\n")
        answer = connection.recv(128).decode("ascii", "replace")
    # Without the password Redis answers NOAUTH: it is up and asks for the password (which this page never has).
    if answer.startswith("+PONG") or answer.startswith("-NOAUTH"):
        return True, None, "Redis answers PING"
    return False, None, answer.strip()[:80] or "no answer"


def negotiated_version(body, content_type):
    """The protocolVersion of an initialize answer, sent as JSON or as server-sent events; None if unreadable."""
    if "text/event-stream" in content_type:
        lines = [line[5:].strip() for line in body.decode("utf-8", "replace").splitlines() if line.startswith("data:")]
        body = lines[0].encode() if lines else b""
    try:
        version = json.loads(body)["result"]["protocolVersion"]
    except (ValueError, KeyError, TypeError):
        return None
    return version if isinstance(version, str) and version.isprintable() and len(version) < 40 else None


def end_session(url, key, session, version):
    """Ends the session an initialize opened (Streamable HTTP: DELETE with its Mcp-Session-Id). Without it,
    a probe every few seconds piles up sessions: n8n-mcp refuses new ones at N8N_MCP_MAX_SESSIONS (100, for
    SESSION_TIMEOUT_MINUTES, 30) with 429, and after 20 such failures its limiter shuts out every client
    behind the same address. A server may refuse the DELETE (405); nothing is left to do then."""
    headers = {"Authorization": "Bearer " + key, "Mcp-Session-Id": session, "User-Agent": "homelab-status"}
    if version:
        headers["MCP-Protocol-Version"] = version
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers, method="DELETE"), timeout=TIMEOUT) as answer:
            answer.read(4096)
    except (OSError, ValueError):
        pass


def probe_server(server, key):
    """One MCP server: a real `initialize` through the gateway, with the key, and the session it opened ended."""
    opened = []

    def call():
        request = urllib.request.Request(server["url"], data=INITIALIZE, headers={
            "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
            "Authorization": "Bearer " + key, "User-Agent": "homelab-status"})
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            body = response.read(65536)
            session = response.headers.get("Mcp-Session-Id")
            if session and session.isprintable() and len(session) < 256:
                opened.append((session, negotiated_version(body, response.headers.get("Content-Type") or "")))
            return response.status == 200, response.status, "" if response.status == 200 else "HTTP %d" % response.status
    status, _http, detail, latency = timed(call)
    for session, version in opened:
        end_session(server["url"], key, session, version)
    return {"name": server["name"], "endpoint": server.get("endpoint", ""), "status": status, "latency_ms": latency,
            "checked_at": stamp(), "detail": detail}


def probe_service(service):
    """One main-stack (or MCP-stack) service from the homelab view: its probe, or why it has none."""
    result = {"name": str(service.get("name", "")), "stack": service.get("stack", "main"),
              "description": str(service.get("description") or ""), "local_url": service.get("local_url"),
              "status": "unprobed", "http_status": None, "latency_ms": None, "checked_at": stamp(), "detail": ""}
    probe = service.get("probe") or {}
    if service.get("elsewhere"):
        result.update(status="elsewhere", detail="runs on the %s hosts, not on this one" % service["elsewhere"])
        return result
    protocol = probe.get("protocol")
    if protocol == "http":
        status, http_status, detail, latency = timed(lambda: http_get(probe["url"]))
        path = urllib.parse.urlsplit(probe["url"]).path
        detail = detail or "GET %s" % path
    elif protocol == "postgres":
        status, http_status, detail, latency = timed(lambda: postgres(probe["host"], int(probe["port"])))
    elif protocol == "redis":
        status, http_status, detail, latency = timed(lambda: redis(probe["host"], int(probe["port"])))
    else:
        result["detail"] = "no server-side probe: `docker compose ps` shows its container health"
        return result
    result.update(status=status, http_status=http_status, detail=detail, latency_ms=latency)
    return result


def ollama_models(ollama):
    """Installed (/api/tags) and loaded (/api/ps) models, names and sizes only."""
    if not ollama or not ollama.get("url"):
        return None
    try:
        lists = {}
        for path in ("/api/tags", "/api/ps"):
            with urllib.request.urlopen(ollama["url"] + path, timeout=TIMEOUT) as response:
                lists[path] = json.loads(response.read(4 * 1024 * 1024)).get("models") or []
    except (OSError, ValueError, AttributeError) as error:
        return {"status": "down", "detail": "Ollama's API does not answer: %s" % reason(error), "installed": [], "loaded": []}

    def pick(model, *keys):
        return {key: model.get(key) for key in keys if isinstance(model, dict)}
    installed = sorted((pick(model, "name", "size", "modified_at") for model in lists["/api/tags"]), key=lambda m: str(m.get("name")))
    loaded = [pick(model, "name", "size", "size_vram", "expires_at") for model in lists["/api/ps"]]
    return {"status": "up", "detail": "", "installed": installed, "loaded": loaded}


def age_text(seconds):
    minutes = int(seconds // 60)
    if minutes < 60:
        return "%d min" % minutes
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return "%d h %d min" % (hours, minutes)
    return "%d days %d h" % divmod(hours, 24)


def backup_status(path, moment=None):
    """{state: ok|stale|none, text, name, verified_at, age_seconds}: the newest verified backup, from the backup
    tool's status file (written after each backup that verified)."""
    moment = moment or now()
    record = read_json(path, None) if path else None
    if not isinstance(record, dict) or not record.get("verified_at"):
        return {"state": "none", "text": "none recorded on this host (playbooks/backup.yml, or the backup timer, records one)",
                "name": None, "verified_at": None, "age_seconds": None}
    try:
        verified = datetime.fromisoformat(str(record["verified_at"]).replace("Z", "+00:00"))
        if verified.tzinfo is None:
            verified = verified.replace(tzinfo=timezone.utc)
    except ValueError:
        return {"state": "none", "text": "the backup status file is not readable", "name": None, "verified_at": None,
                "age_seconds": None}
    age = max(0, (moment - verified).total_seconds())
    name = str(record.get("name") or "")[:64]
    state = "stale" if age > BACKUP_STALE_HOURS * 3600 else "ok"
    text = "%s ago (%s, verified %s)" % (age_text(age), name, stamp(verified))
    if record.get("whole") is False:
        text += "; smaller than the one before, so it pruned nothing"
    if state == "stale":
        text += "; older than %g h" % BACKUP_STALE_HOURS
    return {"state": state, "text": text, "name": name, "verified_at": stamp(verified), "age_seconds": int(age)}


def probe_all(pool, key, view):
    """One round: every probe at once, so one slow service never delays the others."""
    mcp_servers = [pool.submit(probe_server, server, key) for server in servers()]
    main = view.get("main") or {}
    services = [pool.submit(probe_service, service) for service in main.get("services") or []]
    own = [pool.submit(probe_service, service) for service in view.get("mcp") or []]
    ollama = pool.submit(ollama_models, main.get("ollama"))
    dashboard = {"name": "dashboard", "endpoint": "this page", "status": "up", "latency_ms": 0, "checked_at": stamp(),
                 "detail": ""}
    gateway = [dict(item.result(), endpoint=entry.get("endpoint") or item.result()["detail"])
               for entry, item in zip(view.get("mcp") or [], own)]
    return {
        "interval": INTERVAL,
        "generated_at": stamp(),
        "servers": gateway + [dashboard] + [item.result() for item in mcp_servers],
        "services": [item.result() for item in services],
        "gpu": main.get("gpu"),
        "ollama": ollama.result(),
        "backup": backup_status(view.get("backup_status")),
    }


def probe_forever():
    with ThreadPoolExecutor(max_workers=24) as pool:
        while True:
            begin = time.monotonic()
            key = KEY_FILE.read_text().strip() if KEY_FILE.exists() else ""
            result = probe_all(pool, key, homelab())
            with LOCK:
                STATUS.update(result)
            time.sleep(max(0.5, INTERVAL - (time.monotonic() - begin)))


class Handler(BaseHTTPRequestHandler):
    server_version = "homelab-mcp-dashboard"

    def reply(self, status, content_type, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
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
