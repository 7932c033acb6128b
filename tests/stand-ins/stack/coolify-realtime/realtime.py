"""STAND-IN for tests: imitates the web-terminal half (port 6002) of Coolify's realtime server,
coollabsio/coolify-realtime:1.0.17. The 6001 half of the test image is the REAL soketi (see
soketi-entrypoint.sh and build-images.sh); only this terminal server is imitated.

Upstream's terminal server is docker/coolify-realtime/terminal-server.js in coollabsio/coolify
at v4.3.10: a Node http server on 6002 (l. 88-96, 508) that answers GET /ready with 200 "OK"
and anything else with 404 "Not Found", plus a `ws` WebSocket server on the same port whose
clients are checked against Coolify (POST http://coolify:8080/terminal/auth with the Laravel
session cookie named after APP_NAME, l. 15-21, 98-130) and then get an `ssh` session in a
node-pty terminal, with the keys in /var/www/html/storage/app/ssh.
What this copies: GET /ready -> 200 "OK", anything else -> 404 "Not Found", on 6002.
What it does not: no WebSocket, no authentication against Coolify, no ssh or pty sessions.
"""

import sys

from standin_http import exit_on_signals, log, serve

SERVICE = "coolify-terminal"


def ready(_handler):
    return 200, "OK"


class NotFound(dict):
    """Every path but /ready answers 404 "Not Found", as terminal-server.js l. 92-95."""

    def get(self, key, default=None):
        return dict.get(self, key, default) or (lambda _handler: (404, "Not Found"))


def main():
    exit_on_signals(SERVICE)
    log(SERVICE, "STAND-IN terminal server of coolify-realtime 1.0.17 on 6002 (GET /ready only)")
    serve(SERVICE, [("0.0.0.0", 6002, NotFound({("GET", "/ready"): ready}))])
    return 0


if __name__ == "__main__":
    sys.exit(main())
