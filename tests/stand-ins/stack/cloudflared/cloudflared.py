"""STAND-IN for tests: imitates the `cloudflared` binary of cloudflare/cloudflared:2026.8.2.

Upstream behaviour it copies, read at tag 2026.8.2 (cmd/cloudflared/tunnel/subcommands.go):
  - `--token-file` (TunnelTokenFileFlag, line 44) with env TUNNEL_TOKEN_FILE (lines 133-137),
    first released in 2025.4.0 (commit "Adds a new command line for tunnel run for token
    file", 2025-04-01). This stand-in knows the flag only when VERSION is 2025.4.0 or newer,
    as upstream: an older one fails with "flag provided but not defined".
  - --token / TUNNEL_TOKEN wins over the token file (line 130, 767-777); the file's content is
    trimmed (strings.TrimSpace, line 776).
  - `tunnel ready` (buildReadyCommand, lines 469-504, since 2024.11.1) needs the tunnel-level
    --metrics (or TUNNEL_METRICS) and exits non-zero unless /ready answers 200.
  - The image runs as 65532 with ENTRYPOINT ["cloudflared", "--no-autoupdate"] (Dockerfile).

Not cloudflared: the Cloudflare edge is unreachable here, so `tunnel run`
validates the token and then PRETENDS that one edge connection is up. Runs as
uid 65532 (nonroot), so a token file must be readable by that uid.
Supported, with flags before or after the words and `--flag value` or
`--flag=value`:
  cloudflared --version | version
  cloudflared tunnel [--no-autoupdate] [--metrics ADDR] run [--token T | --token-file PATH]
      token order as upstream: --token / TUNNEL_TOKEN, then --token-file /
      TUNNEL_TOKEN_FILE. The token must be base64 of a JSON object with "a"
      (account tag), "t" (tunnel UUID) and "s" (base64 secret); a bad one
      fails with "Provided Tunnel token is not valid." The token is never
      printed. Serves ADDR (default 0.0.0.0:20241, the container default):
      GET /ready -> {"status": 200, "readyConnections": 1, "connectorId": ...},
      GET /healthcheck -> "OK", GET /metrics -> a few Prometheus lines.
  cloudflared tunnel --metrics ADDR ready
      exit 0 when ADDR/ready answers 200, 1 otherwise (the health check).
Unknown flags fail with "Incorrect Usage", as upstream's CLI does.
"""

import base64
import binascii
import json
import os
import sys
import uuid

from standin_http import exit_on_signals, fail, http_call, log, serve, split_hostport

VERSION = "2026.8.2"
# The first release with --token-file / TUNNEL_TOKEN_FILE (subcommands.go, 2025.4.0).
TOKEN_FILE_SINCE = (2025, 4, 0)
SERVICE = "cloudflared"
BOOL_FLAGS = {"no-autoupdate", "no-tls-verify", "post-quantum", "no-chunked-encoding", "hello-world",
              "management-diagnostics", "help", "version"}
VALUE_FLAGS = {"metrics", "loglevel", "transport-loglevel", "logfile", "log-directory", "config", "origincert",
               "token", "token-file", "protocol", "edge-ip-version", "edge-bind-address", "retries",
               "grace-period", "url", "label", "tag", "region", "pidfile", "metrics-update-freq",
               "autoupdate-freq", "credentials-file", "cred-file", "name", "icmpv4-src", "icmpv6-src"}
FLAG_ENV = {"token": "TUNNEL_TOKEN", "token-file": "TUNNEL_TOKEN_FILE", "metrics": "TUNNEL_METRICS",
            "loglevel": "TUNNEL_LOGLEVEL", "protocol": "TUNNEL_TRANSPORT_PROTOCOL"}
INVALID_TOKEN = "Provided Tunnel token is not valid."


def has_token_file():
    return tuple(int(part) for part in VERSION.split(".")) >= TOKEN_FILE_SINCE


def parse(argv):
    """Split argv into (words, flags); flags may stand anywhere, as with upstream's CLI."""
    words, flags, args = [], {}, list(argv)
    value_flags = VALUE_FLAGS if has_token_file() else VALUE_FLAGS - {"token-file"}
    flag_env = FLAG_ENV if has_token_file() else {k: v for k, v in FLAG_ENV.items() if k != "token-file"}
    while args:
        arg = args.pop(0)
        if not arg.startswith("-") or arg == "-":
            words.append(arg)
            continue
        name, sep, value = arg.lstrip("-").partition("=")
        if name in ("v", "V"):
            name = "version"
        if name in BOOL_FLAGS:
            flags[name] = value or "true"
        elif name in value_flags and (sep or args):
            flags[name] = value if sep else args.pop(0)
        else:
            fail(SERVICE, f"Incorrect Usage: flag provided but not defined: -{name}")
    for name, env_name in flag_env.items():
        if name not in flags and os.environ.get(env_name):
            flags[name] = os.environ[env_name]
    return words, flags


def tunnel_id(token):
    """The tunnel UUID of a valid token; exit 1 without printing the token otherwise."""
    try:
        fields = json.loads(base64.b64decode(token.strip(), validate=True))
        if not (isinstance(fields, dict) and isinstance(fields.get("a"), str) and fields["a"]
                and isinstance(fields.get("s"), str) and base64.b64decode(fields["s"], validate=True)):
            raise ValueError("missing field")
        return str(uuid.UUID(fields["t"]))
    except (ValueError, TypeError, KeyError, AttributeError, binascii.Error):
        fail(SERVICE, INVALID_TOKEN)


def read_token(flags):
    if flags.get("token"):
        return flags["token"]
    if flags.get("token-file"):
        try:
            with open(flags["token-file"], encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError as error:
            fail(SERVICE, f"Failed to read token file {flags['token-file']}: {error.strerror}")
    fail(SERVICE, '"cloudflared tunnel run" requires the ID or name of the tunnel to run as the last '
                  "command line argument or in the configuration file. (STAND-IN: only token tunnels)")


def run(flags):
    tunnel = tunnel_id(read_token(flags))
    connector = str(uuid.uuid4())
    host, port = split_hostport(flags.get("metrics"), "0.0.0.0", 20241)
    log(SERVICE, f"INF Starting tunnel tunnelID={tunnel} (STAND-IN cloudflared {VERSION})")
    log(SERVICE, "INF STAND-IN: no Cloudflare edge is reachable; pretending connIndex=0 is registered")
    ready = {"status": 200, "readyConnections": 1, "connectorId": connector}
    metrics = (f'# STAND-IN for tests\nbuild_info{{version="{VERSION}"}} 1\n'
               f"cloudflared_tunnel_ha_connections 1\n")
    routes = {
        ("GET", "/ready"): lambda handler: (200, ready),
        ("GET", "/healthcheck"): lambda handler: (200, "OK\n"),
        ("GET", "/metrics"): lambda handler: (200, metrics),
    }
    serve(SERVICE, [(host, port, routes)])
    return 0


def ready_check(flags):
    if not flags.get("metrics"):
        fail(SERVICE, "--metrics has to be provided")
    host, port = split_hostport(flags["metrics"], "127.0.0.1", 20241)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/ready"
    try:
        status, text = http_call("GET", url, timeout=5)
    except OSError as error:
        fail(SERVICE, f"failed to call {url}: {error}")
    if status != 200:
        fail(SERVICE, f"{url} endpoint returned status code {status}\n{text}")
    return 0


def main(argv):
    words, flags = parse(argv)
    if "version" in flags or words[:1] == ["version"]:
        print(f"cloudflared version {VERSION} (STAND-IN for tests)")
        return 0
    if words[:2] == ["tunnel", "run"]:
        exit_on_signals(SERVICE)
        return run(flags)
    if words[:2] == ["tunnel", "ready"]:
        return ready_check(flags)
    # Only the first two words are echoed: a third may be a token (`service install TOKEN`).
    fail(SERVICE, f"STAND-IN cloudflared supports 'version', 'tunnel run' and 'tunnel ready', not "
                  f"{' '.join(words[:2])!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
