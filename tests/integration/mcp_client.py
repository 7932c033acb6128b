"""An independent MCP client for the tests: the official Python SDK (`mcp` 2.x on PyPI).

Runs inside the Molecule target, in the virtual environment that molecule/stack/prepare.yml makes.
Usage: mcp_client.py URL [KEY_FILE] [TOOL]
Connects over Streamable HTTP, with `Authorization: Bearer <key>` when KEY_FILE is given, then
`initialize` and `tools/list`, and calls TOOL (no arguments) when given. Prints one JSON object:
{"ok": true, "protocol": ..., "server": ..., "tools": [...], "call": {...}} or {"ok": false, "error": ...}.
"""

import json
import sys

import anyio
import httpx2
from mcp import ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client


async def main(url, key_file=None, tool=None):
    headers = {}
    if key_file:
        with open(key_file, encoding="utf-8") as handle:
            headers["Authorization"] = "Bearer " + handle.read().strip()
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=120.0)) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                try:
                    init = await session.initialize()
                    tools = await session.list_tools()
                    result = {"ok": True, "protocol": init.protocol_version, "server": init.server_info.name,
                              "tools": sorted(item.name for item in tools.tools)}
                    if tool:
                        called = await session.call_tool(tool, {})
                        result["call"] = {"is_error": bool(called.is_error),
                                          "text": " ".join(getattr(part, "text", "") for part in called.content)}
                    return result
                except MCPError as error:
                    return {"ok": False, "error": "%s %s" % (error.error.code, error.error.message)}


if __name__ == "__main__":
    try:
        print(json.dumps(anyio.run(main, *sys.argv[1:4])))
    except Exception as error:  # pylint: disable=broad-except
        print(json.dumps({"ok": False, "error": repr(error)[:500]}))
