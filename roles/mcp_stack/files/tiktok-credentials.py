"""Managed by homelab.core.mcp_stack: seed tiktok-studio-mcp's credentials file once, then run the server.

tiktok-studio-mcp keeps client_key, client_secret and refresh_token in
~/.config/tiktok-studio-mcp/credentials.json (mode 0600) and writes every rotated refresh token
back there. The role mounts the vault's values read-only under /run/secrets/tiktok; they seed
the file only when it does not exist yet, so a rotated token is never replaced by the stale one.
"""
import json
import os
import sys
from pathlib import Path

target = Path.home() / ".config" / "tiktok-studio-mcp" / "credentials.json"
if not target.exists():
    values = {name: Path("/run/secrets/tiktok", name).read_text().strip()
              for name in ("client_key", "client_secret", "refresh_token")}
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(str(target), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(values, handle)
os.execvp(sys.argv[1], sys.argv[1:])
