"""n8n as the role wires it: the API key for n8n-mcp, and the Ollama and MCP gateway credentials, seen through n8n's API.

The workflow run is real: a Webhook -> Ollama node workflow, created and published through n8n's public API with the
role's API key, is called on its production webhook; n8n's Ollama node (@n8n/n8n-nodes-langchain.ollama, text/message)
sends POST <credential's baseUrl>/api/chat, which the Ollama stand-in answers with a canned reply and logs. A second
run with a throwaway credential pointing elsewhere proves that the run follows the credential.
"""

from __future__ import annotations

import json
import re

ROOT = "/opt/homelab"
PROJECT = "homelab"
STATE = ROOT + "/secrets/n8n-wiring.json"
N8N = "http://127.0.0.1:5678"
OWNER = {"emailOrLdapLoginId": "owner@homelab.test", "password": "Molecule-Owner-Pass-1"}
OLLAMA_NAME, MCP_NAME = "Ollama (homelab)", "MCP gateway (homelab)"
OLLAMA_URL = "http://ollama:11434"
# n8n 2.41.1 n8n-workflow constants.js CREDENTIAL_BLANKING_VALUE: how n8n's API shows a secret field that is set.
BLANK = "__n8n_BLANK_VALUE_e5362baf-c777-4d57-a609-6eaf1f9e87f6"
STAND_IN_REPLY = "STAND-IN reply from ollama"

# Runs on the target: signs in as the owner (REST, waiting out n8n's 5 sign-ins a minute), and with the role's API key
# (public API) creates, publishes, calls, unpublishes and deletes a Webhook -> Ollama workflow.
SCRIPT = r'''
import json, sys, time, urllib.error, urllib.request, uuid
N8N, OWNER, STATE = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
def call(method, path, body=None, headers=None):
    request = urllib.request.Request(N8N + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as error:
        response = error
    text = response.read().decode()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text
def login():
    for _ in range(15):
        request = urllib.request.Request(N8N + "/rest/login", data=json.dumps(OWNER).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            response = urllib.request.urlopen(request, timeout=30)
        except urllib.error.HTTPError as error:
            if error.code != 429:
                raise
            time.sleep(6)
            continue
        return {"Cookie": "; ".join(v.split(";")[0] for v in response.headers.get_all("Set-Cookie"))}
    raise SystemExit("n8n kept answering 429 to the owner's sign-in")
def run(credential):
    key = {"X-N8N-API-KEY": json.load(open(STATE))["api_key"]["key"]}
    path = "homelab-wiring-" + uuid.uuid4().hex
    workflow = {"name": "homelab wiring check " + path[-8:], "settings": {"executionOrder": "v1"},
        "nodes": [
            {"id": str(uuid.uuid4()), "name": "Webhook", "type": "n8n-nodes-base.webhook", "typeVersion": 2,
             "position": [0, 0], "webhookId": str(uuid.uuid4()),
             "parameters": {"httpMethod": "POST", "path": path, "responseMode": "lastNode"}},
            {"id": str(uuid.uuid4()), "name": "Ollama", "type": "@n8n/n8n-nodes-langchain.ollama", "typeVersion": 1,
             "position": [200, 0], "credentials": {"ollamaApi": credential},
             "parameters": {"resource": "text", "operation": "message",
                            "modelId": {"__rl": True, "mode": "id", "value": "llama3.2:1b"},
                            "messages": {"values": [{"content": "Say hello", "role": "user"}]}}}],
        "connections": {"Webhook": {"main": [[{"node": "Ollama", "type": "main", "index": 0}]]}}}
    status, created = call("POST", "/api/v1/workflows", workflow, key)
    assert status == 200, (status, created)
    result = {"created": True}
    try:
        result["publish"] = call("POST", "/api/v1/workflows/%s/activate" % created["id"], None, key)[0]
        # Publishing registers the production webhook a moment later.
        for _ in range(30):
            status, body = call("POST", "/webhook/" + path, {})
            if status != 404:
                break
            time.sleep(1)
        result["status"], result["body"] = status, body
    finally:
        call("POST", "/api/v1/workflows/%s/deactivate" % created["id"], None, key)
        for _ in range(20):
            status = call("DELETE", "/api/v1/workflows/" + created["id"], None, key)[0]
            if status in (200, 404):
                break
            time.sleep(1)
        result["deleted"] = call("GET", "/api/v1/workflows/" + created["id"], None, key)[0] == 404
    return result
action = sys.argv[4]
if action == "credentials":
    status, body = call("GET", "/rest/credentials?includeData=true", None, login())
    print(json.dumps(body["data"]))
elif action == "run":
    print(json.dumps(run(json.loads(sys.argv[5]))))
elif action == "run-elsewhere":
    session = login()
    status, made = call("POST", "/rest/credentials", {"name": "homelab wiring elsewhere", "type": "ollamaApi",
                                                      "data": {"baseUrl": "http://ollama:1"}}, session)
    assert status == 200, (status, made)
    try:
        print(json.dumps(run({"id": made["data"]["id"], "name": "homelab wiring elsewhere"})))
    finally:
        call("DELETE", "/rest/credentials/" + made["data"]["id"], None, session)
'''


def n8n(host, *args):
    host.check_output("cat > /root/n8n_wiring_check.py <<'EOF'\n%sEOF" % SCRIPT)
    return json.loads(host.check_output("python3 /root/n8n_wiring_check.py %s %s %s %s" % (
        N8N, "'%s'" % json.dumps(OWNER), STATE, " ".join("'%s'" % arg for arg in args))))


def credentials(host):
    return {(entry["name"], entry["type"]): entry for entry in n8n(host, "credentials")}


def chat_lines(host):
    """The stand-in's log lines for POST /api/chat, with the client address."""
    container = host.check_output("docker compose -p %s ps -q ollama" % PROJECT)
    logs = host.run("docker logs %s" % container)
    return re.findall(r'(\S+) "POST /api/chat" (\d+)', logs.stdout + logs.stderr)


def n8n_addresses(host):
    container = host.check_output("docker compose -p %s ps -q n8n" % PROJECT)
    networks = json.loads(host.check_output("docker inspect -f '{{json .NetworkSettings.Networks}}' %s" % container))
    return {entry["IPAddress"] for entry in networks.values() if entry.get("IPAddress")}


def test_the_api_key_is_root_only_and_works_on_the_public_api(host):
    state = host.file(STATE)
    assert (state.user, state.group, state.mode) == ("root", "root", 0o600)
    key = json.loads(state.content_string)["api_key"]["key"]
    status = host.check_output("python3 -c \"import sys, urllib.request, urllib.error\n"
                               "r = urllib.request.Request('%s/api/v1/workflows?limit=1', headers={'X-N8N-API-KEY': sys.argv[1]})\n"
                               "try: print(urllib.request.urlopen(r).status)\n"
                               "except urllib.error.HTTPError as e: print(e.code)\" '%s'" % (N8N, key))
    assert status == "200"


def test_the_ollama_and_mcp_credentials_exist_with_their_non_secret_fields(host):
    found = credentials(host)
    ollama = found.get((OLLAMA_NAME, "ollamaApi"))
    assert ollama is not None, sorted(found)
    # baseUrl is not secret: n8n decrypted it, so it proves the credential's encrypted data is readable too.
    assert ollama["data"]["baseUrl"] == OLLAMA_URL
    mcp = found.get((MCP_NAME, "httpHeaderAuth"))
    assert mcp is not None, sorted(found)
    assert mcp["data"]["name"] == "Authorization"
    assert mcp["data"]["value"] == BLANK  # set, and never shown


def test_a_workflow_run_reaches_the_ollama_stand_in_through_the_credential(host):
    ollama = credentials(host)[(OLLAMA_NAME, "ollamaApi")]
    before = len(chat_lines(host))
    result = n8n(host, "run", json.dumps({"id": ollama["id"], "name": OLLAMA_NAME}))
    assert result["publish"] == 200 and result["deleted"] is True, result
    assert (result["status"], result["body"]) == (200, {"content": STAND_IN_REPLY}), result
    new = chat_lines(host)[before:]
    assert [code for _address, code in new] == ["200"], new
    assert new[0][0] in n8n_addresses(host)


def test_the_same_run_with_a_credential_pointing_elsewhere_never_reaches_ollama(host):
    """The assertions above can fail: the run follows the credential's baseUrl, not a fixed address."""
    before = len(chat_lines(host))
    result = n8n(host, "run-elsewhere")
    assert result["deleted"] is True, result
    assert result["status"] == 500 and result["body"] != {"content": STAND_IN_REPLY}, result
    assert chat_lines(host)[before:] == []
    assert ("homelab wiring elsewhere", "ollamaApi") not in credentials(host)
