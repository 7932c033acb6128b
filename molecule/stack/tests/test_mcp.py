"""The MCP stack as its clients see it: key-gated servers behind the gateway, the dashboard, the n8n link.

The servers are the real packages (x-mcp-server, tiktok-studio-mcp and youtube-connector-mcp
from PyPI, n8n-mcp from npm), built on the target by the role. Their platforms' APIs are never
called: the tests list tools and call only n8n-mcp's health check, which asks the main stack's n8n. The client is the
official Python SDK (`mcp` 2.x), and the dashboard is checked in Debian's Chromium.
"""

from __future__ import annotations

import glob
import json
import os
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "integration"))
from compose_project import containers  # noqa: E402
from junit_changes import expected_changes  # noqa: E402
from playbook_runs import assert_refused, run_site  # noqa: E402

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
ARTIFACTS = os.environ.get("HOMELAB_TEST_ARTIFACTS", "/tmp/homelab-test-artifacts")
ROOT = "/opt/homelab"
PROJECT = "homelab-mcp"
MAIN_PROJECT = "homelab"
CLIENT = "/opt/mcp-test/bin/python /root/mcp_client.py"
# Deployed by the scenario's inventory (molecule/resources/stack-inventory): X with its bearer token, TikTok with its three keys,
# YouTube with its API key, and n8n-mcp, with the API key the main stack made in n8n (none in the inventory).
DEPLOYED = {"x-mcp": 3302, "tiktok-mcp": 3300, "youtube-mcp": 3301, "n8n-mcp": 3303}
LEFT_OUT = {}
AFTER_DRIFT = bool(expected_changes(EPHEMERAL))
first_verify_only = pytest.mark.skipif(AFTER_DRIFT, reason="runs once, in the verify before the drift")


def access_key(host):
    return json.loads(host.file(ROOT + "/secrets/mcp-stack.json").content_string)["mcp_access_key"]


def client(host, port, with_key=True, tool=""):
    if with_key:
        host.check_output("umask 077 && printf %%s '%s' > /root/mcp-key" % access_key(host))
    args = "http://127.0.0.1:%d/mcp %s %s" % (port, "/root/mcp-key" if with_key else "''", tool)
    return json.loads(host.check_output("%s %s" % (CLIENT, args)))


def raw_post(host, port, authorization=None):
    """Status, WWW-Authenticate and body of an MCP initialize POST, from inside the target."""
    script = ("import json, sys, urllib.request, urllib.error\n"
              "headers = {'Content-Type': 'application/json', 'Accept': 'application/json, text/event-stream'}\n"
              "if len(sys.argv) > 2: headers['Authorization'] = sys.argv[2]\n"
              "body = json.dumps({'jsonrpc': '2.0', 'id': 1, 'method': 'initialize', 'params': {\n"
              "    'protocolVersion': '2025-06-18', 'capabilities': {}, 'clientInfo': {'name': 't', 'version': '1'}}})\n"
              "request = urllib.request.Request(sys.argv[1], data=body.encode(), headers=headers)\n"
              "try:\n    response = urllib.request.urlopen(request)\nexcept urllib.error.HTTPError as error:\n    response = error\n"
              "answer = [response.status, response.headers.get('WWW-Authenticate'), response.read(300).decode()]\n"
              "if response.headers.get('Mcp-Session-Id'):  # end the session it opened, as every client should\n"
              "    headers['Mcp-Session-Id'] = response.headers['Mcp-Session-Id']\n"
              "    try:\n        urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers=headers, method='DELETE'))\n"
              "    except urllib.error.HTTPError:\n        pass\n"
              "print(json.dumps(answer))\n")
    host.check_output("cat > /root/raw_post.py <<'EOF'\n%sEOF" % script)
    args = "http://127.0.0.1:%d/mcp" % port + (" '%s'" % authorization if authorization else "")
    return json.loads(host.check_output("python3 /root/raw_post.py " + args))


def test_only_the_servers_with_every_credential_run(host):
    services = containers(host, PROJECT)
    assert set(services) == set(DEPLOYED) | {"mcp-gateway", "dashboard"}
    assert all(entry["Health"] == "healthy" for entry in services.values()), services
    listeners = host.check_output("ss -Hltn | awk '{print $4}'").split()
    for port in DEPLOYED.values():
        assert "127.0.0.1:%d" % port in listeners
    for port in LEFT_OUT.values():
        assert not [address for address in listeners if address.endswith(":%d" % port)]
    assert "127.0.0.1:3304" in listeners
    # The servers publish nothing themselves; only the gateway and the dashboard do.
    assert [name for name, entry in services.items() if entry["Publishers"] and any(p["PublishedPort"] for p in entry["Publishers"])] \
        in (["mcp-gateway", "dashboard"], ["dashboard", "mcp-gateway"])


@pytest.mark.parametrize("server", sorted(DEPLOYED))
def test_without_the_key_every_server_answers_401_with_www_authenticate(host, server):
    for authorization in (None, "Bearer wrong-key-0123456789abcdef0123456789", "Bearer " + access_key(host).lower() + "x"):
        status, challenge, body = raw_post(host, DEPLOYED[server], authorization)
        assert (status, challenge) == (401, 'Bearer realm="homelab-mcp"'), (authorization and authorization[:12], body)
        assert json.loads(body)["error"]["code"] == -32001
    result = client(host, DEPLOYED[server], with_key=False)
    assert result["ok"] is False and "-32001" in result["error"]


@pytest.mark.parametrize("server", ["x-mcp", "n8n-mcp"])
@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "bEaReR"])
def test_the_scheme_is_accepted_in_any_case_and_the_key_only_exactly(host, scheme, server):
    """RFC 7235: the auth-scheme is case-insensitive; the key is compared exactly. n8n-mcp, which checks the
    key again itself and only after "Bearer ", gets the scheme spelled so from the gateway."""
    port = DEPLOYED[server]
    status, _challenge, body = raw_post(host, port, "%s %s" % (scheme, access_key(host)))
    assert status == 200, body
    for wrong in (access_key(host).upper(), access_key(host) + "x", " " + access_key(host)):
        status, challenge, _body = raw_post(host, port, "%s %s" % (scheme, wrong))
        assert (status, challenge) == (401, 'Bearer realm="homelab-mcp"')


@pytest.mark.parametrize("server, tool", [("x-mcp", "x_search_tweets"), ("tiktok-mcp", "post_video"),
                                          ("youtube-mcp", "youtube_search"), ("n8n-mcp", "n8n_health_check")])
def test_with_the_key_the_sdk_client_initializes_and_lists_tools(host, server, tool):
    result = client(host, DEPLOYED[server])
    assert result["ok"] is True, result
    assert result["protocol"] in ("2025-06-18", "2025-11-25", "2025-03-26")
    assert tool in result["tools"]


def test_no_key_or_credential_in_docker_inspect_argv_logs_or_ansible_output(host):
    secrets = [access_key(host), "molecule-x-bearer-token-0123456789", "molecule-tiktok-client-key-0123",
               "molecule-tiktok-client-secret-0123", "molecule-tiktok-refresh-token-0123",
               "molecule-youtube-api-key-0123456789"]
    ids = host.check_output("docker ps -aq --filter label=com.docker.compose.project=%s" % PROJECT).split()
    inspect = host.check_output("docker inspect %s" % " ".join(ids))
    argv = host.check_output("ps -eo args")
    logs = "".join(host.run("docker logs %s" % container).stdout + host.run("docker logs %s" % container).stderr
                   for container in ids)
    reports = "".join(open(path, encoding="utf-8").read() for path in glob.glob(os.path.join(EPHEMERAL, "junit", "*.xml")))
    for secret in secrets:
        for where, text in (("docker inspect", inspect), ("argv", argv), ("logs", logs), ("ansible output", reports)):
            assert secret not in text, "%s... in %s" % (secret[:6], where)
    # The servers get their credentials as files, exported by their entrypoint.
    assert "/run/secrets/env/BEARER_TOKEN" in inspect
    assert "/run/secrets/env/YOUTUBE_API_KEY" in inspect


# Ports the servers listen on inside their containers (roles/mcp_stack/vars/main.yml __mcp_stack_routes).
CONTAINER_PORT = {"x-mcp": 8000, "tiktok-mcp": 8000, "n8n-mcp": 3000, "youtube-mcp": 8088}
PUBLISHED = dict(DEPLOYED, **LEFT_OUT)
INITIALIZE = ('{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", '
              '"capabilities": {}, "clientInfo": {"name": "lateral", "version": "1"}}}')
# An MCP initialize without a key from inside a server's own container: the HTTP status, or "unreachable".
PROBE_PYTHON = ("import sys, urllib.error, urllib.request\n"
                "request = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), headers={\n"
                "    'Content-Type': 'application/json', 'Accept': 'application/json, text/event-stream'})\n"
                "try:\n    print(urllib.request.urlopen(request, timeout=3).status)\n"
                "except urllib.error.HTTPError as error:\n    print(error.code)\n"
                "except Exception as error:\n    print('unreachable', type(error).__name__)\n")
PROBE_NODE = ("fetch(process.argv[1], {method: 'POST', body: process.argv[2], signal: AbortSignal.timeout(3000), headers: {"
              "'Content-Type': 'application/json', Accept: 'application/json, text/event-stream'}})"
              ".then(r => console.log(r.status), e => console.log('unreachable', e.name))")


def addresses(host, container_id):
    """{network: IP address} of a container."""
    networks = json.loads(host.check_output("docker inspect -f '{{json .NetworkSettings.Networks}}' %s" % container_id))
    return {name: entry["IPAddress"] for name, entry in networks.items() if entry.get("IPAddress")}


def probe(host, container_id, url):
    if host.run("docker exec %s sh -c 'command -v python3'" % container_id).rc == 0:
        return host.check_output("docker exec %s python3 -c %s %s %s", container_id, PROBE_PYTHON, url, INITIALIZE)
    return host.check_output("docker exec %s node -e %s %s %s", container_id, PROBE_NODE, url, INITIALIZE)


def assert_fenced(host, servers):
    """From inside each server, every other server is unreachable; the gateway on its own network still asks for the key."""
    running = containers(host, PROJECT)
    gateway = addresses(host, running["mcp-gateway"]["ID"])
    for name in servers:
        own = addresses(host, running[name]["ID"])
        for other in servers:
            if other == name:
                continue
            for network, address in addresses(host, running[other]["ID"]).items():
                answer = probe(host, running[name]["ID"], "http://%s:%d/mcp" % (address, CONTAINER_PORT[other]))
                assert answer.startswith("unreachable"), "%s reached %s on %s: %s" % (name, other, network, answer)
            # Not a probe that cannot succeed: the same request to the gateway is answered, with 401.
            shared = [gateway[network] for network in own if network in gateway]
            assert shared, "%s shares no network with the gateway" % name
            answer = probe(host, running[name]["ID"], "http://%s:%d/mcp" % (shared[0], PUBLISHED[other]))
            assert answer == "401", "%s asked the gateway for %s: %s" % (name, other, answer)


def test_servers_cannot_reach_each_other_and_run_without_capabilities(host):
    assert_fenced(host, sorted(DEPLOYED))
    running = containers(host, PROJECT)
    for name, entry in running.items():
        config = json.loads(host.check_output("docker inspect -f '{{json .HostConfig}}' %s" % entry["ID"]))
        assert config["CapDrop"] == ["ALL"], name
        assert "no-new-privileges:true" in (config["SecurityOpt"] or []), name
        added = sorted(item.replace("CAP_", "") for item in config["CapAdd"] or [])
        assert added == ([] if name != "mcp-gateway" else ["CHOWN", "SETGID", "SETUID"]), name
    # Still every server through the gateway, with the key.
    for server, port in DEPLOYED.items():
        assert client(host, port)["ok"] is True, server


def dashboard(host, name, timeout, **expected):
    os.makedirs(ARTIFACTS, exist_ok=True)
    shot = "/root/dashboard-%s.png" % name
    wanted = " ".join("%s=%s" % item for item in expected.items())
    result = json.loads(host.check_output("/opt/mcp-test/bin/python /root/dashboard_check.py http://127.0.0.1:3304/ %s %s %s"
                                          % (shot, timeout, wanted)))
    container = host.backend.host
    os.system("docker cp %s:%s %s/dashboard-%s.png" % (container, shot, ARTIFACTS, name))
    return result


def wait_healthy(host, project, service, tries=90):
    host.check_output("for i in $(seq %d); do [ \"$(docker inspect -f '{{.State.Health.Status}}' "
                      "$(docker compose -p %s ps -q %s))\" = healthy ] && exit 0; sleep 2; done; exit 1" % (tries, project, service))


def page_rows(host, **changed):
    """Every service of both stacks as the status page should show it: the main stack's deployed here (cloudflared
    grey: its metrics are on its own loopback), the MCP gateway, the dashboard and the deployed servers."""
    main = set(containers(host, MAIN_PROJECT))
    rows = {name: ("unprobed" if name == "cloudflared" else "up") for name in main}
    rows.update({name: "up" for name in set(DEPLOYED) | {"mcp-gateway", "dashboard"}})
    rows.update(changed)
    return rows


def test_the_status_pages_probes_leave_no_session_open(host):
    """Each probe's initialize opens a session; left open, they pile up every 5 s until n8n-mcp refuses new ones
    (N8N_MCP_MAX_SESSIONS, 100) and its limiter then shuts out every client behind the gateway (a CI run saw
    Open-WebUI's connection to n8n-mcp refused so). The gateway's log shows each one ended (DELETE, 2xx)."""
    gateway = containers(host, PROJECT)["mcp-gateway"]["ID"]
    logged = host.run("sleep 16 && docker logs --since 15s %s 2>&1" % gateway).stdout
    requests = [line.split('"')[1].split()[0] + " " + line.split('"')[2].split()[0] for line in logged.splitlines()
                if line.endswith('"homelab-status"') and '/mcp HTTP/1.1"' in line]
    opened = requests.count("POST 200")
    ended = sum(requests.count("DELETE %d" % status) for status in (200, 202, 204))
    # At least two rounds of every server; only the round in flight may still be open.
    assert opened >= 2 * len(DEPLOYED), requests
    assert opened - len(DEPLOYED) <= ended <= opened, requests
    assert set(requests) <= {"POST 200", "DELETE 200", "DELETE 202", "DELETE 204"}, requests


def test_the_status_page_shows_both_stacks_the_gpu_the_models_the_backup_and_a_stopped_service_turns_red(host):
    shown = dashboard(host, "healthy", 30, **page_rows(host))
    assert shown["matched"], shown
    assert shown["console_errors"] == []
    # Each main-stack service with a published port links to it on the host.
    assert shown["links"]["n8n"] == "http://127.0.0.1:5678" and shown["links"]["open-webui"] == "http://127.0.0.1:3000"
    # The GPU decision as the main stack applied it (this machine has no GPU unless the GPU stand-ins say so).
    assert shown["gpu"]["state"] == "ok" and shown["gpu"]["text"].split(" (")[0] in ("CPU-only", "CDI", "NVIDIA runtime"), shown["gpu"]
    # Ollama's models, as its own API lists them.
    tags = json.loads(host.check_output("python3 -c \"import urllib.request; "
                                        "print(urllib.request.urlopen('http://127.0.0.1:11434/api/tags').read().decode())\""))
    installed = sorted(model["name"] for model in tags["models"])
    assert [item.split(" (")[0] for item in shown["models"]["installed"]] == (installed or ["none installed"]), shown["models"]
    assert shown["models"]["loaded"] and "Loading..." not in shown["models"]["loaded"]
    # The age of the newest verified backup, from the backup tool's record (none before the first backup).
    record = host.file(ROOT + "/data/status/backup.json")
    if record.exists:
        name = json.loads(record.content_string)["name"]
        assert shown["backup"]["state"] in ("ok", "stale") and name in shown["backup"]["text"], shown["backup"]
    else:
        assert shown["backup"]["state"] == "none", shown["backup"]
    # No key and no main-stack secret in what the browser gets.
    status = host.check_output("python3 -c \"import urllib.request; "
                               "print(urllib.request.urlopen('http://127.0.0.1:3304/api/status').read().decode())\"")
    main_secrets = json.loads(host.file(ROOT + "/secrets/main-stack.json").content_string)
    for secret in [access_key(host)] + [value for value in main_secrets.values() if isinstance(value, str) and len(value) >= 8]:
        assert secret not in status
    # The dashboard is on the main stack's status networks, and never on intranet nor given the Docker socket.
    inspect = json.loads(host.check_output("docker inspect $(docker compose -p %s ps -q dashboard)" % PROJECT))[0]
    assert set(inspect["NetworkSettings"]["Networks"]) == {"homelab-mcp-dashboard", "homelab-status", "homelab-status-coolify"}
    assert not [mount for mount in inspect["Mounts"] if "docker.sock" in mount["Source"]]

    # A stopped main-stack service turns red within one refresh (5 s), and an MCP server too.
    host.check_output("docker compose -p %s stop n8n" % MAIN_PROJECT)
    try:
        stopped = dashboard(host, "n8n-stopped", 10, **page_rows(host, n8n="down"))
        assert stopped["matched"], stopped
        assert stopped["console_errors"] == []
    finally:
        host.check_output("docker compose -p %s start n8n" % MAIN_PROJECT)
        wait_healthy(host, MAIN_PROJECT, "n8n")
    assert os.path.getsize(os.path.join(ARTIFACTS, "dashboard-n8n-stopped.png")) > 1000
    host.check_output("docker compose -p %s stop x-mcp" % PROJECT)
    try:
        # One refresh is 5 s, plus a probe of at most 3 s.
        stopped = dashboard(host, "x-stopped", 10, **page_rows(host, **{"x-mcp": "down"}))
        assert stopped["matched"], stopped
        assert stopped["console_errors"] == []
    finally:
        host.check_output("docker compose -p %s start x-mcp" % PROJECT)
        wait_healthy(host, PROJECT, "x-mcp", tries=60)
    assert os.path.getsize(os.path.join(ARTIFACTS, "dashboard-x-stopped.png")) > 1000
    assert dashboard(host, "recovered", 30, **page_rows(host))["matched"]


def scenario_secrets():
    """mcp_stack_secrets as the scenario's inventory has them (its group_vars, linked from molecule/resources)."""
    inventory = os.path.dirname(os.environ["MOLECULE_INVENTORY_FILE"])
    with open(os.path.join(inventory, "group_vars", "homelab.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["mcp_stack_secrets"]


def test_n8n_mcp_runs_with_the_key_the_role_made_in_n8n_and_reaches_n8n(host):
    """No n8n API key in the inventory: the main stack made one as n8n's owner, kept root-only on the host."""
    assert "n8n_api_key" not in scenario_secrets()
    wiring = host.file(ROOT + "/secrets/n8n-wiring.json")
    assert (wiring.user, wiring.group, wiring.mode) == ("root", "root", 0o600)
    key = json.loads(wiring.content_string)["api_key"]["key"]
    # n8n-mcp got that key as a file, never in its environment.
    container = containers(host, PROJECT)["n8n-mcp"]["ID"]
    assert host.check_output("docker exec %s cat /run/secrets/env/N8N_API_KEY" % container) == key
    assert key not in host.check_output("docker inspect %s" % container)
    result = client(host, DEPLOYED["n8n-mcp"], tool="n8n_health_check")
    assert result["ok"] is True, result
    assert result["call"]["is_error"] is False, result["call"]
    # The link reaches n8n's API, and nothing else of the main stack: the MCP containers are not on intranet.
    networks = host.check_output("docker inspect -f '{{json .NetworkSettings.Networks}}' $(docker compose -p %s ps -q)" % PROJECT)
    assert "homelab_intranet" not in networks and "homelab-n8n-link" in networks


def open_webui_connections(host):
    """Open-WebUI's tool-server connections, as its admin reads them (id -> url); keys left out."""
    script = ("import json, urllib.request\n"
              "def call(path, body=None, token=None):\n"
              "    headers = {'Content-Type': 'application/json'}\n"
              "    if token: headers['Authorization'] = 'Bearer ' + token\n"
              "    data = json.dumps(body).encode() if body is not None else None\n"
              "    return json.loads(urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:3000' + path, data=data,\n"
              "                      headers=headers)).read())\n"
              "token = call('/api/v1/auths/signin', {'email': 'admin@homelab.test', 'password': 'Molecule-Admin-Pass-1'})['token']\n"
              "listed = call('/api/v1/configs/tool_servers', token=token)['TOOL_SERVER_CONNECTIONS']\n"
              "print(json.dumps({item['info']['id']: item['url'] for item in listed}))\n")
    host.check_output("cat > /root/open_webui_connections.py <<'EOF'\n%sEOF" % script)
    return json.loads(host.check_output("python3 /root/open_webui_connections.py"))


def main_containers(host):
    return {service: entry["ID"] for service, entry in containers(host, MAIN_PROJECT).items()}


@first_verify_only
def test_a_server_removed_and_added_back_touches_only_it_its_route_and_its_open_webui_connection(host):
    before = ({name: entry["ID"] for name, entry in containers(host, PROJECT).items()}, main_containers(host),
              open_webui_connections(host))
    assert before[2] == {"homelab-%s" % name: "http://mcp-gateway:%d/mcp" % port for name, port in DEPLOYED.items()}
    secrets = {name: value for name, value in scenario_secrets().items() if not name.startswith("tiktok_")}
    try:
        rc, output = run_site("-e", json.dumps({"mcp_stack_secrets": secrets}))
        assert rc == 0, output
        after = {name: entry["ID"] for name, entry in containers(host, PROJECT).items()}
        assert set(after) == {"x-mcp", "youtube-mcp", "n8n-mcp", "mcp-gateway", "dashboard"}
        # The other servers and the whole main stack were not touched; the gateway and the dashboard changed their routes.
        for name in ("x-mcp", "youtube-mcp", "n8n-mcp"):
            assert after[name] == before[0][name], name
        assert main_containers(host) == before[1]
        # Open-WebUI lost exactly that connection.
        connections = open_webui_connections(host)
        assert connections == {key: url for key, url in before[2].items() if key != "homelab-tiktok-mcp"}
        # TikTok's data stays.
        assert host.file(ROOT + "/data/mcp-servers/tiktok-mcp/credentials.json").exists
        assert not [line for line in host.check_output("ss -Hltn | awk '{print $4}'").split() if line.endswith(":3300")]
    finally:
        rc, output = run_site()
        assert rc == 0, output
    assert set(containers(host, PROJECT)) == set(DEPLOYED) | {"mcp-gateway", "dashboard"}
    assert open_webui_connections(host) == before[2]
    assert main_containers(host) == before[1]


@first_verify_only
def test_a_partial_key_set_is_refused_on_the_converged_host_and_nothing_changes(host):
    """The fresh-host scenario proves the same refusal on a host that has nothing yet."""
    files = "%s/docker-compose-mcp.yml %s/secrets/mcp-stack.json" % (ROOT, ROOT)
    before = (host.check_output("sha256sum " + files), {name: entry["ID"] for name, entry in containers(host, PROJECT).items()})
    secrets = dict(scenario_secrets())
    del secrets["tiktok_client_secret"]
    rc, output = run_site("-e", json.dumps({"mcp_stack_secrets": secrets}))
    assert_refused(rc, output, host.backend.host,
                   "mcp_stack_secrets gives tiktok_client_key, tiktok_refresh_token but not tiktok_client_secret, "
                   "which tiktok-mcp also needs; add mcp_stack_secrets.tiktok_client_secret to deploy tiktok-mcp")
    for secret in secrets.values():
        assert secret not in output
    assert (host.check_output("sha256sum " + files), {name: entry["ID"] for name, entry in containers(host, PROJECT).items()}) == before
