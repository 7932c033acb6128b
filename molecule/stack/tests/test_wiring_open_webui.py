"""Open-WebUI wired to every deployed MCP server, as Open-WebUI itself reports it.

Everything is asked of the real Open-WebUI 0.12.4 on 127.0.0.1:3000, as its admin, from inside the
target: its tool-server list (GET /api/v1/configs/tool_servers, routers/configs.py
get_tool_servers_config) and its own MCP connection to each server through the gateway
(POST /api/v1/configs/tool_servers/verify, routers/configs.py verify_tool_servers_config, which
connects with MCPClient and lists the tools). The bearer key is never printed: the script on the
target compares it there and prints only whether it matched.
"""

from __future__ import annotations

import json

BASE = "http://127.0.0.1:3000"
ADMIN = {"email": "admin@homelab.test", "password": "Molecule-Admin-Pass-1"}
ROOT = "/opt/homelab"
MAIN_PROJECT = "homelab"
MCP_PROJECT = "homelab-mcp"
CLIENT = "/opt/mcp-test/bin/python /root/mcp_client.py"
# The MCP servers the scenario deploys (molecule/resources/stack-inventory) and their gateway ports (roles/mcp_stack/defaults/main.yml).
DEPLOYED = {"x-mcp": 3302, "tiktok-mcp": 3300, "youtube-mcp": 3301, "n8n-mcp": 3303}
PREFIX = "homelab-"

# Runs on the target (python3, no curl). Modes: "list" prints the connections without keys, with whether
# each key is the MCP access key; "verify" asks Open-WebUI to connect to each MCP connection and prints the
# tools it found; "inspect" prints, per container of a compose project, whether the key is in docker inspect.
SCRIPT = """import json, subprocess, sys, urllib.request, urllib.error
BASE = %(base)r
key = json.load(open(%(secrets)r))['mcp_access_key']
assert len(key) >= 16, 'mcp_access_key is too short to search for'

def call(method, path, body=None, token=None):
    headers = {'Content-Type': 'application/json'}
    if token:
        headers['Authorization'] = 'Bearer ' + token
    data = None if body is None else json.dumps(body).encode()
    try:
        response = urllib.request.urlopen(urllib.request.Request(BASE + path, data=data, headers=headers,
                                                                 method=method), timeout=120)
    except urllib.error.HTTPError as error:
        response = error
    return response.status, json.loads(response.read() or b'null')

def connections():
    status, body = call('POST', '/api/v1/auths/signin', json.load(sys.stdin))
    assert status == 200, (status, body)
    token = body['token']
    status, body = call('GET', '/api/v1/configs/tool_servers', token=token)
    assert status == 200, (status, body)
    return token, body['TOOL_SERVER_CONNECTIONS']

mode = sys.argv[1]
if mode == 'list':
    print(json.dumps([{'id': (c.get('info') or {}).get('id'), 'type': c.get('type'), 'url': c.get('url'),
                       'auth_type': c.get('auth_type'), 'enabled': bool((c.get('config') or {}).get('enable')),
                       'key_is_access_key': c.get('key') == key} for c in connections()[1]]))
elif mode == 'verify':
    token, found = connections()
    result = {}
    for c in found:
        if c.get('type') == 'mcp':
            status, body = call('POST', '/api/v1/configs/tool_servers/verify', c, token)
            result[(c.get('info') or {}).get('id')] = [status, sorted(s['name'] for s in (body or {}).get('specs') or [])
                                                       if isinstance(body, dict) else body]
    print(json.dumps(result))
elif mode == 'inspect':
    ids = subprocess.run(['docker', 'compose', '-p', sys.argv[2], 'ps', '--all', '-q'], check=True,
                         capture_output=True, text=True).stdout.split()
    assert ids, 'no container in project ' + sys.argv[2]
    result = {}
    for cid in ids:
        out = subprocess.run(['docker', 'inspect', cid], check=True, capture_output=True, text=True).stdout
        result[json.loads(out)[0]['Name'].lstrip('/')] = {'key_found': key in out,
                                                          'tool_server_env': 'TOOL_SERVER_CONNECTIONS' in out}
    print(json.dumps(result))
""" % {"base": BASE, "secrets": ROOT + "/secrets/mcp-stack.json"}


def on_target(host, *args):
    host.check_output("cat > /root/open_webui_wiring.py <<'EOF'\n%sEOF" % SCRIPT)
    command = "printf %%s '%s' | python3 /root/open_webui_wiring.py %s" % (json.dumps(ADMIN), " ".join(args))
    return json.loads(host.check_output(command))


def deployed_servers(host):
    """The MCP servers that run now (compose), which must be the scenario's."""
    lines = host.check_output("docker compose -p %s ps --all --format json" % MCP_PROJECT).splitlines()
    services = {json.loads(line)["Service"] for line in lines} - {"mcp-gateway", "dashboard"}
    assert services == set(DEPLOYED)
    return DEPLOYED


def test_one_mcp_connection_per_deployed_server_with_the_access_key(host):
    wanted = {PREFIX + name: "http://mcp-gateway:%d/mcp" % port for name, port in deployed_servers(host).items()}
    found = on_target(host, "list")
    managed = [entry for entry in found if (entry["id"] or "").startswith(PREFIX)]
    # Exactly one connection per server: no duplicates, none for a server that is not deployed.
    assert sorted(entry["id"] for entry in managed) == sorted(wanted), found
    for entry in managed:
        assert entry["type"] == "mcp" and entry["auth_type"] == "bearer" and entry["enabled"], entry
        assert entry["url"] == wanted[entry["id"]], entry
        assert entry["key_is_access_key"], "%s does not hold the MCP access key" % entry["id"]


def test_open_webui_lists_each_servers_tools_through_the_gateway(host):
    servers = deployed_servers(host)
    found = on_target(host, "verify")
    for name, port in servers.items():
        assert PREFIX + name in found, found
        status, tools = found[PREFIX + name]
        assert status == 200 and tools, (name, status, tools)
        # The same tools an independent client (the official SDK) lists through the published gateway port.
        host.check_output("umask 077 && python3 -c \"import json; print(json.load(open('%s/secrets/mcp-stack.json'))"
                          "['mcp_access_key'], end='')\" > /root/mcp-key" % ROOT)
        direct = json.loads(host.check_output("%s http://127.0.0.1:%d/mcp /root/mcp-key" % (CLIENT, port)))
        assert direct["ok"], direct
        assert tools == sorted(direct["tools"]), name


def test_the_key_is_not_in_docker_inspect_of_the_main_stack(host):
    inspected = on_target(host, "inspect", MAIN_PROJECT)
    assert "homelab-open-webui-1" in inspected, sorted(inspected)
    for name, found in inspected.items():
        assert not found["key_found"], "the MCP access key is in docker inspect of %s" % name
        assert not found["tool_server_env"], "%s sets TOOL_SERVER_CONNECTIONS" % name
