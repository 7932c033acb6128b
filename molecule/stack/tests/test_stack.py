"""The main stack as a user observes it after site.yml, drift and bad input."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import sys

import pytest

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "integration"))
from compose_project import MAIN_STACK_SERVICES as SERVICES, containers  # noqa: E402
from junit_changes import changed_tasks, expected_changes, latest_report  # noqa: E402
from playbook_runs import assert_refused, flat, recap_changed, run_site  # noqa: E402

EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
ROOT = "/opt/homelab"
PROJECT = "homelab"
AFTER_DRIFT = bool(expected_changes(EPHEMERAL))
first_verify_only = pytest.mark.skipif(AFTER_DRIFT, reason="runs once, in the verify before the drift")


def persisted_secrets(host):
    return json.loads(host.file(ROOT + "/secrets/main-stack.json").content_string)


def secret_values(host):
    values = persisted_secrets(host).values()
    token = host.file(ROOT + "/secrets/cloudflared-token").content_string
    return [value for value in values if len(value) >= 8] + [token]


def test_every_service_is_healthy_per_stack_health(host):
    rc, output = run_site(playbook="playbooks/health.yml")
    assert rc == 0, output
    for service in SERVICES:
        assert service in output
    # The same probes as the end of site.yml: a URL and a latency for each HTTP service.
    for url in ("http://127.0.0.1:11434/api/version", "http://127.0.0.1:3000/health", "http://127.0.0.1:5678/healthz",
                "http://127.0.0.1:8000/api/health", "http://127.0.0.1:6001/ready"):
        assert re.search(re.escape(url) + r" +[0-9]+ ms", output), url
    # Both stacks: the MCP stack's servers, gateway and dashboard too.
    for service in ("x-mcp", "tiktok-mcp", "mcp-gateway", "dashboard"):
        assert service in output
    assert re.search(re.escape("http://127.0.0.1:3304/api/status") + r" +[0-9]+ ms", output)


def test_every_container_runs_and_reports_healthy(host):
    state = containers(host)
    assert sorted(state) == sorted(SERVICES)
    for service, entry in state.items():
        assert (entry["State"], entry["Health"]) == ("running", "healthy"), service


def test_images_came_from_the_configured_registry(host):
    for service, entry in containers(host).items():
        assert entry["Image"].startswith("127.0.0.1:5000/"), service


def test_no_port_listens_on_every_address(host):
    listeners = host.check_output("ss -Hltn | awk '{print $4}'").split()
    published = [address for address in listeners if address.endswith((":11434", ":3000", ":5678", ":8000", ":6001", ":6002"))]
    assert sorted(published) == sorted("127.0.0.1:%d" % port for port in (11434, 3000, 5678, 8000, 6001, 6002))
    # 5000: the test registry itself; 22: the target's sshd, which Coolify logs in to (prepare.yml).
    assert not [address for address in listeners if address.startswith(("0.0.0.0:", "*:", "[::]:"))
                and not address.endswith((":5000", ":22"))]


@pytest.mark.parametrize(
    "path, owner, mode",
    [
        (ROOT + "/secrets", "root", 0o700),
        (ROOT + "/secrets/main-stack.json", "root", 0o600),
        (ROOT + "/secrets/cloudflared-token", "65532", 0o400),
        (ROOT + "/env/n8n.env", "root", 0o600),
        (ROOT + "/data/coolify/source/.env", "9999", 0o600),
        (ROOT + "/env/coolify-db.env", "root", 0o600),
        (ROOT + "/secrets/open-webui/open_webui_secret_key", "root", 0o400),
        (ROOT + "/secrets/n8n/n8n_encryption_key", "1000", 0o400),
        (ROOT + "/secrets/coolify-db/coolify_db_password", "70", 0o400),
        (ROOT + "/data/ollama", "root", 0o755),
        (ROOT + "/data/open-webui", "root", 0o755),
        (ROOT + "/data/n8n", "1000", 0o700),
        (ROOT + "/data/coolify", "9999", 0o755),
        (ROOT + "/data/coolify/ssh/keys", "9999", 0o700),
        (ROOT + "/data/coolify/applications", "9999", 0o700),
        (ROOT + "/data/coolify/images", "9999", 0o700),
        (ROOT + "/data/coolify-db", "70", 0o700),
        (ROOT + "/data/coolify-redis", "999", 0o750),
    ],
)
def test_files_and_data_tree_have_the_owner_and_mode_each_image_needs(host, path, owner, mode):
    entry = host.file(path)
    assert entry.exists
    assert str(entry.uid) == owner or entry.user == owner
    assert entry.mode == mode


def test_services_wrote_into_their_data_directories(host):
    assert host.file(ROOT + "/data/coolify-db/PG_VERSION").exists
    assert host.file(ROOT + "/data/open-webui/webui.db").exists


def test_token_is_not_in_docker_inspect_argv_or_environment(host):
    token = host.file(ROOT + "/secrets/cloudflared-token").content_string
    inspect = host.check_output("docker inspect $(docker ps -aq)")
    assert token not in inspect
    assert "TUNNEL_TOKEN_FILE=/etc/cloudflared/token" in inspect


def test_file_secrets_are_not_in_docker_inspect(host):
    secrets = persisted_secrets(host)
    inspect_all = host.check_output("docker inspect $(docker ps -aq)")
    # Coolify reads its .env as a mounted file, so its keys and passwords are in no container's inspect.
    for name in ("n8n_encryption_key", "open_webui_secret_key", "coolify_db_password", "coolify_redis_password",
                 "coolify_app_key", "coolify_app_id"):
        assert secrets[name] not in inspect_all, name
    assert "N8N_ENCRYPTION_KEY_FILE=/run/secrets/n8n_encryption_key" in inspect_all
    assert "WEBUI_SECRET_KEY_FILE=/run/secrets/open_webui_secret_key" in inspect_all
    assert "POSTGRES_PASSWORD_FILE=/run/secrets/coolify_db_password" in inspect_all
    assert "N8N_INSTANCE_OWNER_PASSWORD_HASH_FILE=/run/secrets/n8n_owner_password_hash" in inspect_all


def test_no_secret_or_account_password_in_docker_inspect_or_argv(host):
    """0 secret values: every persisted secret (the realtime server's too), the token and the accounts' passwords."""
    values = secret_values(host) + ACCOUNT_PASSWORDS
    inspect_all = host.check_output("docker inspect $(docker ps -aq)")
    argv = host.check_output("ps -eo args")
    assert [value[:4] + "..." for value in values if value in inspect_all] == []
    assert [value[:4] + "..." for value in values if value in argv] == []
    # The realtime server (real soketi) got its app credentials all the same: a websocket to its app key is
    # established, and an unknown key is refused (soketi answers pusher:error 4001).
    assert containers(host)["coolify-realtime"]["Health"] == "healthy"
    app_key = json.loads(host.file(ROOT + "/secrets/main-stack.json").content_string)["coolify_pusher_app_key"]
    assert '"pusher:connection_established"' in realtime_greeting(host, app_key)
    refused = realtime_greeting(host, "not-" + app_key)
    assert "pusher:error" in refused and "4001" in refused, refused


def realtime_greeting(host, app_key):
    """soketi's first websocket message to a client of ``app_key``, through the published port 6001 (Pusher protocol 7)."""
    script = ("import base64, os, socket, sys\n"
              "sock = socket.create_connection(('127.0.0.1', 6001), timeout=10)\n"
              "key = base64.b64encode(os.urandom(16)).decode()\n"
              "sock.sendall(('GET /app/%s?protocol=7&client=test&version=1 HTTP/1.1\\r\\nHost: 127.0.0.1:6001\\r\\n'\n"
              "              'Upgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: %s\\r\\n'\n"
              "              'Sec-WebSocket-Version: 13\\r\\n\\r\\n' % (sys.argv[1], key)).encode())\n"
              "data = b''\n"
              "while b'pusher:' not in data or not data.rstrip().endswith(b'}'):\n"
              "    chunk = sock.recv(4096)\n"
              "    if not chunk: break\n"
              "    data += chunk\n"
              "print(data.split(b'\\r\\n\\r\\n', 1)[-1].decode('utf-8', 'replace'))\n")
    host.check_output("cat > /root/realtime_greeting.py <<'EOF'\n%sEOF" % script)
    return host.check_output("python3 /root/realtime_greeting.py %s" % app_key)


@first_verify_only
def test_no_secret_in_a_very_verbose_converge_that_rewrites_a_secret_file(host):
    """-vvv prints every module's arguments and results: the secrets must be censored there too."""
    host.check_output("rm %s/config/coolify-redis/redis.conf %s/secrets/n8n/n8n_owner_password_hash" % (ROOT, ROOT))
    rc, output = run_site("-vvv")
    assert rc == 0, output[-3000:]
    assert host.file(ROOT + "/config/coolify-redis/redis.conf").exists
    assert host.file(ROOT + "/secrets/n8n/n8n_owner_password_hash").exists
    values = secret_values(host) + ACCOUNT_PASSWORDS
    assert [value[:4] + "..." for value in values if value in output] == []


# --- Claimed before reachable: an anonymous client finds no setup page -------------------------

ACCOUNT_PASSWORDS = ["Molecule-Owner-Pass-1", "Molecule-Admin-Pass-1", "Molecule-Root-Pass-1"]


def http_raw(host, method, url, body=None, content_type="application/json"):
    """(status, Location, body) of one request from inside the target, redirects not followed."""
    script = ("import json, sys, urllib.request, urllib.error\n"
              "class Stay(urllib.request.HTTPRedirectHandler):\n"
              "    def redirect_request(self, *args, **kwargs):\n        return None\n"
              "opener = urllib.request.build_opener(Stay)\n"
              "data = sys.argv[3].encode() if len(sys.argv) > 3 else None\n"
              "request = urllib.request.Request(sys.argv[2], data=data, method=sys.argv[1],\n"
              "                                 headers={'Content-Type': sys.argv[4]} if data else {})\n"
              "try:\n    response = opener.open(request)\nexcept urllib.error.HTTPError as error:\n    response = error\n"
              "print(json.dumps([response.status, response.headers.get('Location'), response.read(400).decode()]))\n")
    host.check_output("cat > /root/http_raw.py <<'EOF'\n%sEOF" % script)
    args = [method, url] + ([body, content_type] if body is not None else [])
    return tuple(json.loads(host.check_output("python3 /root/http_raw.py " + " ".join("'%s'" % arg for arg in args))))


def test_n8n_refuses_a_stranger_its_owner_setup(host):
    assert http_json(host, "http://127.0.0.1:5678/rest/settings")["data"]["userManagement"]["showSetupOnFirstLoad"] is False
    stranger = {"email": "stranger@evil.test", "firstName": "S", "lastName": "T", "password": "Stranger-Pass-1"}
    status, _location, body = http_raw(host, "POST", "http://127.0.0.1:5678/rest/owner/setup", json.dumps(stranger))
    assert status == 400 and "Instance owner already setup" in body
    status, _body = http_post_json(host, "http://127.0.0.1:5678/rest/login",
                                   {"emailOrLdapLoginId": "stranger@evil.test", "password": "Stranger-Pass-1"})
    assert status == 401


def test_open_webui_has_its_admin_and_refuses_signup(host):
    config = http_json(host, "http://127.0.0.1:3000/api/config")
    assert "onboarding" not in config and config["features"]["enable_signup"] is False
    stranger = {"name": "S", "email": "stranger@evil.test", "password": "Stranger-Pass-1"}
    status, body = http_post_json(host, "http://127.0.0.1:3000/api/v1/auths/signup", stranger)
    assert status == 403 and body["detail"].startswith("You do not have permission")
    status, body = http_post_json(host, "http://127.0.0.1:3000/api/v1/auths/signin",
                                  {"email": "admin@homelab.test", "password": "Molecule-Admin-Pass-1"})
    assert status == 200 and body["role"] == "admin" and body["token"]
    assert "WEBUI_ADMIN_EMAIL=admin@homelab.test" in host.check_output("docker inspect homelab-open-webui-1")


def test_coolify_has_its_root_user_and_refuses_registration(host):
    status, location, _body = http_raw(host, "GET", "http://127.0.0.1:8000/register")
    assert status == 302 and location.endswith("/login")
    form = "name=S&email=stranger%40evil.org&password=Stranger-Pass-1&password_confirmation=Stranger-Pass-1"
    assert http_raw(host, "POST", "http://127.0.0.1:8000/register", form, "application/x-www-form-urlencoded")[0] == 403
    signed_in = http_raw(host, "POST", "http://127.0.0.1:8000/login",
                         "email=root%40homelab-molecule.org&password=Molecule-Root-Pass-1", "application/x-www-form-urlencoded")
    assert signed_in[:2] == (302, "/")
    refused = http_raw(host, "POST", "http://127.0.0.1:8000/login",
                       "email=stranger%40evil.org&password=Stranger-Pass-1", "application/x-www-form-urlencoded")
    assert refused[:2] == (302, "/login")


@first_verify_only
def test_a_lost_secrets_file_over_live_data_is_refused_until_it_is_back(host):
    """A cleanup deleted secrets/main-stack.json: the run must not generate new passwords over the data."""
    kept = {path: host.file(path).content_string
            for path in (ROOT + "/docker-compose.yml", ROOT + "/data/coolify/source/.env",
                         ROOT + "/config/coolify-redis/redis.conf")}
    before = {name: entry["ID"] for name, entry in containers(host).items()}
    secrets_file = ROOT + "/secrets/main-stack.json"
    host.check_output("mv %s /root/main-stack.json.saved" % secrets_file)
    try:
        rc, output = run_site()
        folded = assert_refused(rc, output, host.backend.host,
                                "%s does not hold coolify_app_key, coolify_db_password, coolify_redis_password, but" % secrets_file,
                                "put the file back (playbooks/restore.yml restores it from a backup)")
        assert "PLAY [Install and configure Docker Engine" not in output
        for path, content in kept.items():
            assert host.file(path).content_string == content, path
        assert not host.file(secrets_file).exists
        running = containers(host)
        assert {name: entry["ID"] for name, entry in running.items()} == before
        assert all(entry["State"] == "running" for entry in running.values())
        assert "Molecule-Root-Pass-1" not in folded
    finally:
        host.check_output("mv /root/main-stack.json.saved %s" % secrets_file)
    rc, output = run_site()
    assert rc == 0, output
    assert recap_changed(output, host.backend.host) == 0


def test_services_use_the_secrets_from_their_files(host):
    secrets = persisted_secrets(host)
    # n8n stores the key it started with in its settings file (data/n8n/config).
    settings = json.loads(host.file(ROOT + "/data/n8n/config").content_string)
    assert settings["encryptionKey"] == secrets["n8n_encryption_key"]
    webui_key = host.check_output("docker compose -p %s exec -T open-webui cat /run/secrets/open_webui_secret_key" % PROJECT)
    assert webui_key == secrets["open_webui_secret_key"]
    # Coolify logs in to PostgreSQL with coolify_db_password, which initdb took from the file.
    assert containers(host)["coolify"]["Health"] == "healthy"


def test_no_secret_appears_in_any_ansible_output(host):
    reports = glob.glob(os.path.join(EPHEMERAL, "junit", "*.xml"))
    assert reports
    text = "".join(open(path, encoding="utf-8").read() for path in reports)
    leaked = [value[:4] + "..." for value in secret_values(host) if value in text]
    assert leaked == []


def http_json(host, url):
    """GET a URL from inside the target (it has python3, not curl or wget)."""
    return json.loads(host.check_output(
        "python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' %s" % url))


def http_post_json(host, url, body):
    """POST JSON from inside the target; return (status, parsed body)."""
    script = ("import json, sys, urllib.request, urllib.error\n"
              "request = urllib.request.Request(sys.argv[1], data=sys.argv[2].encode(), headers={'Content-Type': 'application/json'})\n"
              # n8n allows 5 sign-ins a minute per email (the role's runs and the other tests sign in too).
              "import time\n"
              "for attempt in range(10):\n"
              "    try:\n        response = urllib.request.urlopen(request)\n"
              "    except urllib.error.HTTPError as error:\n        response = error\n"
              "    if response.status != 429:\n        break\n"
              "    time.sleep(10)\n"
              "print(json.dumps([response.status, json.loads(response.read().decode() or 'null')]))\n")
    host.check_output("cat > /root/post_json.py <<'EOF'\n%sEOF" % script)
    return tuple(json.loads(host.check_output("python3 /root/post_json.py %s '%s'" % (url, json.dumps(body)))))


def test_n8n_owner_was_provisioned_and_can_log_in(host):
    settings = http_json(host, "http://127.0.0.1:5678/rest/settings")
    assert settings["data"]["userManagement"]["showSetupOnFirstLoad"] is False
    status, _body = http_post_json(host, "http://127.0.0.1:5678/rest/login",
                                   {"emailOrLdapLoginId": "owner@homelab.test", "password": "Molecule-Owner-Pass-1"})
    assert status == 200
    status, _body = http_post_json(host, "http://127.0.0.1:5678/rest/login",
                                   {"emailOrLdapLoginId": "owner@homelab.test", "password": "Wrong-Password-1"})
    assert status == 401


def n8n_settings_signed_in(host, email, password):
    """/rest/settings as the signed-in owner sees it: n8n 2.x gives strangers only a public subset."""
    # Behind the tunnel the cookie is Secure, which urllib's cookie jar keeps from plain HTTP: pass it by hand.
    script = ("import json, sys, time, urllib.error, urllib.request\n"
              "login = json.dumps({'emailOrLdapLoginId': sys.argv[1], 'password': sys.argv[2]}).encode()\n"
              "for attempt in range(10):\n"
              "    try:\n"
              "        response = urllib.request.urlopen(urllib.request.Request(\n"
              "            'http://127.0.0.1:5678/rest/login', data=login, headers={'Content-Type': 'application/json'}))\n"
              "        break\n"
              "    except urllib.error.HTTPError as error:\n"
              "        if error.code != 429 or attempt == 9:\n            raise\n"
              "        time.sleep(10)\n"
              "cookie = '; '.join(value.split(';')[0] for value in response.headers.get_all('Set-Cookie'))\n"
              "request = urllib.request.Request('http://127.0.0.1:5678/rest/settings', headers={'Cookie': cookie})\n"
              "print(urllib.request.urlopen(request).read().decode())\n")
    host.check_output("cat > /root/n8n_settings.py <<'EOF'\n%sEOF" % script)
    return json.loads(host.check_output("python3 /root/n8n_settings.py '%s' '%s'" % (email, password)))


def test_n8n_urls_name_the_public_hostname_not_localhost(host):
    # What the real n8n itself says its webhook base is (from N8N_WEBHOOK_URL).
    assert "urlBaseWebhook" not in http_json(host, "http://127.0.0.1:5678/rest/settings")["data"]
    settings = n8n_settings_signed_in(host, "owner@homelab.test", "Molecule-Owner-Pass-1")
    assert settings["data"]["urlBaseWebhook"] == "https://n8n.homelab.test/"
    env = host.check_output("docker exec homelab-n8n-1 printenv N8N_HOST N8N_PROTOCOL N8N_PROXY_HOPS").split()
    assert env == ["n8n.homelab.test", "https", "1"]


def test_coolify_is_wired_as_upstream_wires_it(host):
    """Container names, network, mounts and .env as coollabsio/coolify's docker-compose.prod.yml at v4.3.10."""
    names = host.check_output("docker ps --format '{{.Names}}'").split()
    assert {"coolify", "coolify-db", "coolify-redis", "coolify-realtime"} <= set(names)
    inspect = json.loads(host.check_output("docker inspect coolify coolify-realtime coolify-db coolify-redis"))
    by_name = {entry["Name"].lstrip("/"): entry for entry in inspect}
    for name, entry in by_name.items():
        assert "coolify" in entry["NetworkSettings"]["Networks"], name
    mounts = {mount["Destination"]: mount for mount in by_name["coolify"]["Mounts"]}
    assert mounts["/var/www/html/.env"]["Source"] == ROOT + "/data/coolify/source/.env"
    assert mounts["/var/www/html/.env"]["RW"] is False
    for directory in ("ssh", "applications", "databases", "services", "backups", "images"):
        assert mounts["/var/www/html/storage/app/" + directory]["Source"] == ROOT + "/data/coolify/" + directory
    realtime = {mount["Destination"]: mount["Source"] for mount in by_name["coolify-realtime"]["Mounts"]}
    assert realtime["/var/www/html/storage/app/ssh"] == ROOT + "/data/coolify/ssh"
    dotenv = host.file(ROOT + "/data/coolify/source/.env").content_string.splitlines()
    assert "AUTOUPDATE=false" in dotenv
    assert "PUSHER_BACKEND_HOST=coolify-realtime" in dotenv
    assert not [line for line in dotenv if line.startswith(("PUSHER_HOST=", "PUSHER_PORT="))]
    # The web terminal's port answers, as the realtime image's health check expects.
    assert host.run("python3 -c 'import urllib.request; urllib.request.urlopen(\"http://127.0.0.1:6002/ready\")'").rc == 0


def test_coolify_key_is_authorized_once_and_visible_to_coolify(host):
    public_key = host.file(ROOT + "/data/coolify/ssh/keys/id.root@host.docker.internal.pub").content_string.split()[1]
    assert host.file("/root/.ssh/authorized_keys").content_string.count(public_key) == 1
    assert host.file("/data/coolify").linked_to == ROOT + "/data/coolify"
    # Where Coolify's seeder looks for the key of localhost.
    keys = host.check_output("docker exec coolify ls /var/www/html/storage/app/ssh/keys").split()
    assert "id.root@host.docker.internal" in keys


COOLIFY_KEY = ROOT + "/data/coolify/ssh/keys/id.root@host.docker.internal"


def ssh_as_root_from(host, container):
    """Log in to the target's sshd as root with Coolify's key, from the network namespace of a container."""
    pid = host.check_output("docker inspect -f '{{.State.Pid}}' %s" % container)
    # host.docker.internal:host-gateway is the default bridge's gateway, where sshd listens too.
    gateway = host.check_output("docker network inspect bridge -f '{{(index .IPAM.Config 0).Gateway}}'")
    return host.run("nsenter --target %s --net ssh -i %s -o BatchMode=yes -o StrictHostKeyChecking=no"
                    " -o UserKnownHostsFile=/dev/null -o ConnectTimeout=10 root@%s true" % (pid, COOLIFY_KEY, gateway))


def test_coolifys_root_key_logs_in_only_from_coolifys_network(host):
    """Coolify is root on this host by design; its key must be worth nothing anywhere else."""
    # Every entry of the role's carries the fence. (After the restore round trip the fresh converge's
    # key is still there beside the restored one: issue 23, item 7.)
    lines = [entry for entry in host.file("/root/.ssh/authorized_keys").content_string.splitlines() if entry.endswith(" coolify")]
    assert lines and all(entry.startswith('from="172.31.250.0/24",restrict,pty ssh-ed25519 ') for entry in lines), lines
    subnet = host.check_output("docker network inspect coolify -f '{{(index .IPAM.Config 0).Subnet}}'")
    assert subnet == "172.31.250.0/24"
    allowed = ssh_as_root_from(host, "coolify")
    assert allowed.rc == 0, allowed.stderr
    # The same key from Ollama's network (intranet), which the fence must refuse.
    refused = ssh_as_root_from(host, "homelab-ollama-1")
    assert refused.rc == 255 and "Permission denied" in refused.stderr, (refused.rc, refused.stderr)


@first_verify_only
def test_exposed_on_purpose_without_coolify_then_back_to_loopback_with_it(host):
    """Two choices in one pair of runs (each recreates the stack): LAN exposure, which deploys on every
    address and names Ollama's port; Coolify switched off, which takes its containers and its root
    login and keeps its data. Then back: loopback only, Coolify healthy, its key logging in again."""
    chosen = json.dumps({"homelab_bind_address": "0.0.0.0", "homelab_expose_on_lan": True, "main_stack_coolify_enabled": False})
    rc, output = run_site("-e", chosen)
    assert rc == 0, output[-3000:]
    assert "homelab_bind_address is 0.0.0.0 and homelab_expose_on_lan is true, so these answer anyone who reaches this " \
           "host, with no login of their own: ollama on port 11434 (Ollama's API has no login)." in flat(output)
    assert "0.0.0.0:11434" in host.check_output("ss -Hltn | awk '{print $4}'").split()
    assert not {"coolify", "coolify-db", "coolify-redis", "coolify-realtime"} & set(containers(host))
    assert " coolify" not in host.file("/root/.ssh/authorized_keys").content_string
    assert host.file(ROOT + "/data/coolify-db").is_directory and host.file(COOLIFY_KEY).exists
    rc, output = run_site("-e", chosen)
    assert rc == 0 and recap_changed(output, host.backend.host) == 0, output[-3000:]
    rc, output = run_site()
    assert rc == 0, output[-3000:]
    assert not [address for address in host.check_output("ss -Hltn | awk '{print $4}'").split()
                if address.startswith("0.0.0.0:") and not address.endswith((":5000", ":22"))]
    assert containers(host)["coolify"]["Health"] == "healthy"
    assert ssh_as_root_from(host, "coolify").rc == 0


def test_last_converge_changed_only_the_drift(host):
    """Before the drift: the check-mode run predicted nothing. After it: exactly the repairs."""
    changed = changed_tasks(latest_report(os.path.join(EPHEMERAL, "junit")))
    assert changed == expected_changes(EPHEMERAL)


def test_drift_was_repaired(host):
    assert "0.0.0.0" not in host.file(ROOT + "/docker-compose.yml").content_string
    assert containers(host)["n8n"]["State"] == "running"
    assert host.file(ROOT + "/data/open-webui").exists
    # Written by Open-WebUI at start: the recreated directory is the one its container mounts.
    assert host.file(ROOT + "/data/open-webui/webui.db").exists


@first_verify_only
def test_changed_inventory_secret_recreates_only_the_affected_service(host):
    before = {service: entry["ID"] for service, entry in containers(host).items()}
    rc, output = run_site("-e", json.dumps({"main_stack_secrets": {"open_webui_secret_key": "rotated-by-the-test-0123456789"}}))
    assert rc == 0, output
    after = {service: entry["ID"] for service, entry in containers(host).items()}
    assert [service for service in SERVICES if before[service] != after[service]] == ["open-webui"]
    assert "rotated-by-the-test-0123456789" not in output


def _refused(host, extra_vars, *sentences):
    before = host.check_output("sha256sum %s/docker-compose.yml %s/secrets/main-stack.json" % (ROOT, ROOT))
    rc, output = run_site("-e", json.dumps(extra_vars))
    folded = assert_refused(rc, output, host.backend.host, *sentences)
    assert host.check_output("sha256sum %s/docker-compose.yml %s/secrets/main-stack.json" % (ROOT, ROOT)) == before
    return folded


# The other refusals run on a fresh host (molecule/fresh-host); this one needs a persisted secret.
@first_verify_only
def test_silent_rotation_of_a_pinned_secret_fails(host):
    # n8n's key is covered by test_a_key_that_n8n_generated_itself_is_adopted_not_replaced.
    _refused(host, {"main_stack_secrets": {"coolify_db_password": "a-different-password-0123456789"}},
             "main_stack_secrets changes coolify_db_password, which this host already uses (/opt/homelab/secrets/main-stack.json)",
             "list the name in main_stack_rotate_secrets to rotate it on purpose.")


def compose_config(host, root):
    return json.loads(host.check_output("docker compose --project-directory %s config --format json" % root))


@first_verify_only
@pytest.mark.parametrize("reservation", ["nvidia", "cdi", "none"])
def test_the_compose_file_renders_and_validates_for_each_gpu_reservation(host, reservation):
    root = "/root/homelab-render-%s" % reservation
    rc, output = run_site("-e", json.dumps({"homelab_test_gpu_reservation": reservation, "homelab_root": root}),
                          playbook="tests/integration/render_stack.yml")
    assert rc == 0, output
    services = compose_config(host, root)["services"]
    devices = {name: service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices")
               for name, service in services.items()}
    for name in ("ollama", "open-webui"):
        if reservation == "none":
            assert devices[name] is None, name
            continue
        (device,) = devices[name]
        if reservation == "nvidia":
            # compose normalises `count: all` to -1.
            assert (device["driver"], device["count"]) == ("nvidia", -1), device
            assert device["capabilities"] in (["gpu"], [["gpu"]]), device
        else:
            assert (device["driver"], device["device_ids"]) == ("cdi", ["nvidia.com/gpu=all"]), device
    assert [name for name, found in devices.items() if found and name not in ("ollama", "open-webui")] == []
    cuda = services["open-webui"]["image"].endswith("-cuda")
    assert cuda == (reservation != "none")
    assert not services["ollama"]["image"].endswith("-cuda")


def test_config_hash_labels_are_keyed(host):
    plain = set()
    for value in persisted_secrets(host).values():
        digest = hashlib.sha256(value.encode()).hexdigest()
        plain.update(digest[:length] for length in (16, 32, 64))
    for service, entry in containers(host).items():
        labels = json.loads(host.check_output("docker inspect --format '{{json .Config.Labels}}' %s" % entry["ID"]))
        value = labels["org.homelab.config-hash"]
        assert re.fullmatch("[0-9a-f]{32}", value), service
        assert value not in plain, service


@first_verify_only
def test_a_standalone_stack_run_reads_the_gpu_decision_from_the_host(host):
    fact = "/etc/ansible/facts.d/homelab_gpu.fact"
    assert json.loads(host.file(fact).content_string) == {"mode": "auto", "reservation": "none", "gpu_count": 0}
    rc, output = run_site(playbook="playbooks/main_stack.yml")
    assert rc == 0, output
    assert recap_changed(output, host.backend.host) == 0
    host.check_output("mv %s %s.saved" % (fact, fact))
    try:
        before = host.check_output("sha256sum %s/docker-compose.yml" % ROOT)
        rc, output = run_site(playbook="playbooks/main_stack.yml")
        assert_refused(rc, output, host.backend.host,
                       "/etc/ansible/facts.d/homelab_gpu.fact is missing, so the stack cannot tell whether to reserve the GPU;",
                       'run site.yml (or the GPU layer\'s play) first, or set homelab_gpu_mode to "off" for a CPU-only stack.')
        assert host.check_output("sha256sum %s/docker-compose.yml" % ROOT) == before
        rc, output = run_site("-e", "homelab_gpu_mode=off", playbook="playbooks/main_stack.yml")
        assert rc == 0, output
        assert recap_changed(output, host.backend.host) == 0
    finally:
        host.check_output("mv %s.saved %s" % (fact, fact))


@first_verify_only
def test_a_key_that_n8n_generated_itself_is_adopted_not_replaced(host):
    """A host whose n8n (before 1.116) ignored N8N_ENCRYPTION_KEY_FILE and generated its own key.

    The real n8n encrypts what it keeps in its database (2.x: the deployment signing key) with that
    key and refuses to start with any other, so the test lets the real n8n generate one.
    """
    data = ROOT + "/data/n8n"
    image = host.check_output("docker inspect -f '{{.Config.Image}}' homelab-n8n-1")
    host.check_output("docker stop homelab-n8n-1 && mv %s %s.before-test && install -d -o 1000 -g 1000 -m 0700 %s"
                      % (data, data, data))
    # No N8N_ENCRYPTION_KEY(_FILE): n8n writes a key of its own into .n8n/config, as 1.80 did.
    host.check_output("docker run -d --name n8n-with-its-own-key -e N8N_DIAGNOSTICS_ENABLED=false"
                      " -v %s:/home/node/.n8n %s" % (data, image))
    try:
        ready = ("node -e \"fetch('http://127.0.0.1:5678/healthz/readiness')"
                 ".then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))\"")
        host.check_output("for i in $(seq 60); do docker exec n8n-with-its-own-key %s && exit 0; sleep 2; done; exit 1" % ready)
    finally:
        host.check_output("docker rm -f n8n-with-its-own-key")
    own_key = json.loads(host.file(data + "/config").content_string)["encryptionKey"]
    assert own_key != persisted_secrets(host)["n8n_encryption_key"]
    rc, output = run_site()
    assert rc == 0, output
    assert "n8n_encryption_key differed from %s/secrets/main-stack.json and is kept as the service itself uses it" % ROOT in flat(output)
    assert persisted_secrets(host)["n8n_encryption_key"] == own_key
    assert host.file(ROOT + "/secrets/n8n/n8n_encryption_key").content_string == own_key
    assert containers(host)["n8n"]["Health"] == "healthy"
    assert own_key not in output
    # The new database got its owner again, from the inventory.
    status, _body = http_post_json(host, "http://127.0.0.1:5678/rest/login",
                                   {"emailOrLdapLoginId": "owner@homelab.test", "password": "Molecule-Owner-Pass-1"})
    assert status == 200
    host.check_output("rm -rf %s.before-test" % data)
    # And now the inventory may not contradict the key in use.
    rc, output = run_site("-e", json.dumps({"main_stack_secrets": {"n8n_encryption_key": "yet-another-key-0123456789"}}))
    assert_refused(rc, output, host.backend.host, "main_stack_secrets.n8n_encryption_key differs from the key the service already uses")


@first_verify_only
def test_without_a_token_cloudflared_goes_and_the_run_warns(host):
    rc, output = run_site("-e", "homelab_cloudflared_tunnel_token=''")
    assert rc == 0, output
    assert "homelab_cloudflared_tunnel_token is empty, so cloudflared is not deployed and remote access is off." in flat(output)
    assert "cloudflared" not in containers(host)
    assert not host.file(ROOT + "/secrets/cloudflared-token").exists
    rc, output = run_site()
    assert rc == 0, output
    assert containers(host)["cloudflared"]["Health"] == "healthy"


@first_verify_only
def test_another_installs_coolify_container_is_refused_before_anything_changes(host):
    image = host.check_output("docker inspect -f '{{.Config.Image}}' coolify-realtime")
    host.check_output("docker rm -f coolify-realtime")
    # What Coolify's own install script leaves: a container by that name, outside this compose project.
    host.check_output("docker create --name coolify-realtime %s" % image)
    try:
        _refused(host, {}, "Container coolify-realtime already exists outside compose project homelab",
                 "stop and remove it (the stack's data under /opt/homelab/data stays), then re-run.")
    finally:
        host.check_output("docker rm -f coolify-realtime")
