"""_cloudflared.token_problem: what is wrong with a tunnel token, never the token itself."""

from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.homelab.core.plugins.module_utils._cloudflared import token_problem as cloudflared_token_problem

TUNNEL_ID = "6ff42ae2-765d-4adf-8112-31c55c1551ef"
SECRET = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def token(payload):
    return base64.b64encode(json.dumps(payload).encode()).decode()


def test_well_formed_token_has_no_problem():
    assert cloudflared_token_problem(token({"a": "5ab4e9dfbd435d24068829fda0077963", "t": TUNNEL_ID, "s": SECRET})) == ""


def test_unpadded_token_is_accepted():
    assert cloudflared_token_problem(token({"a": "acct", "t": TUNNEL_ID, "s": SECRET}).rstrip("=")) == ""


@pytest.mark.parametrize(
    "value, phrase",
    [
        ("", "is empty"),
        ("not*base64!", "is not base64"),
        (base64.b64encode(b"plain text").decode(), "does not decode to JSON"),
        (base64.b64encode(b"[1, 2]").decode(), "does not decode to a JSON object"),
        (token({"a": "acct", "t": TUNNEL_ID}), "lacks the field(s) s"),
        (token({"t": TUNNEL_ID}), "lacks the field(s) a, s"),
        (token({"a": "acct", "t": "tunnel-1", "s": SECRET}), "tunnel id (t) that is not a UUID"),
        (token({"a": "acct", "t": TUNNEL_ID, "s": "***"}), "secret (s) that is not base64"),
    ],
)
def test_malformed_tokens_are_named_without_echoing_them(value, phrase):
    problem = cloudflared_token_problem(value)
    assert phrase in problem
    if value:
        assert value not in problem
