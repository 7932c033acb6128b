"""STAND-IN for tests: imitates Coolify's realtime server, coollabsio/coolify-realtime:1.0.17.

Not soketi: no WebSocket, no Pusher protocol (the real soketi, @soketi/soketi on npm, needs
uWebSockets.js, which it names as a GitHub dependency, unreachable here). What it copies, read
in coollabsio/coolify at v4.3.10:
  - docker/coolify-realtime/Dockerfile: soketi 1.6 on 6001, Coolify's terminal server
    (terminal-server.js) on 6002; busybox wget and curl in the image.
  - docker-compose.prod.yml lines 65-82: SOKETI_DEFAULT_APP_ID, _KEY and _SECRET from
    Coolify's PUSHER_APP_*, /data/coolify/ssh at /var/www/html/storage/app/ssh, and the health
    check `wget -qO- http://127.0.0.1:6001/ready && wget -qO- http://127.0.0.1:6002/ready`.
  - terminal-server.js lines 89-91: GET /ready on 6002 answers "OK".
It requires the three SOKETI_DEFAULT_APP_* variables (exit 1 when one is missing; real soketi
would start with its demo credentials, which breaks Coolify's realtime channel, so a missing one
is a wiring defect either way) and answers:
  :6001  GET / and GET /ready -> "OK"; GET /accept-traffic -> "OK"
  :6002  GET /ready -> "OK"
"""

import os
import sys

from standin_http import exit_on_signals, log, require_env, serve

VERSION = "1.0.17"
SERVICE = "coolify-realtime"


def ok(_handler):
    return 200, "OK"


def main():
    exit_on_signals(SERVICE)
    env = require_env(SERVICE, ("SOKETI_DEFAULT_APP_ID", "SOKETI_DEFAULT_APP_KEY", "SOKETI_DEFAULT_APP_SECRET"))
    log(SERVICE, f"STAND-IN coolify-realtime {VERSION}; default app of {len(env)} settings")
    soketi = {("GET", "/"): ok, ("GET", "/ready"): ok, ("GET", "/accept-traffic"): ok}
    terminal = {("GET", "/ready"): ok}
    serve(SERVICE, [("0.0.0.0", int(os.environ.get("SOKETI_PORT") or 6001), soketi),
                    ("0.0.0.0", 6002, terminal)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
