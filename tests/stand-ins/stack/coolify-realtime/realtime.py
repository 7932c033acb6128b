"""STAND-IN for tests: imitates Coolify's realtime server, coollabsio/coolify-realtime:1.0.6.

Not soketi: no WebSocket, no Pusher protocol. The real image runs soketi on
6001 and Coolify's terminal server on 6002. This stand-in requires
SOKETI_DEFAULT_APP_ID, SOKETI_DEFAULT_APP_KEY and SOKETI_DEFAULT_APP_SECRET
(exit 1 when one is missing; real soketi would start with demo credentials,
which breaks Coolify's realtime channel) and answers:
  :6001  GET / and GET /ready -> "OK"; GET /accept-traffic -> "OK"
  :6002  GET /ready -> "OK"
"""

import os
import sys

from standin_http import exit_on_signals, log, require_env, serve

VERSION = "1.0.6"
SERVICE = "coolify-realtime"


def ok(_handler):
    return 200, "OK"


def main():
    exit_on_signals(SERVICE)
    env = require_env(SERVICE, ("SOKETI_DEFAULT_APP_ID", "SOKETI_DEFAULT_APP_KEY", "SOKETI_DEFAULT_APP_SECRET"))
    log(SERVICE, f"STAND-IN coolify-realtime {VERSION}; app id {env['SOKETI_DEFAULT_APP_ID']}")
    soketi = {("GET", "/"): ok, ("GET", "/ready"): ok, ("GET", "/accept-traffic"): ok}
    terminal = {("GET", "/ready"): ok}
    serve(SERVICE, [("0.0.0.0", int(os.environ.get("SOKETI_PORT") or 6001), soketi),
                    ("0.0.0.0", 6002, terminal)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
