"""A host that was never converged: check mode predicts the install, bad input changes nothing."""

from __future__ import annotations

import base64
import json
import os
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "integration"))
from playbook_runs import assert_refused, flat, recap_changed, run_site  # noqa: E402

NOT_A_TOKEN = "bm90LWEtdG9rZW4tYXQtYWxs"


def catalogue_with_a_typo():
    """The main stack's own catalogue, with one key misspelt (probe_path for probe) in Ollama's entry."""
    with open(os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "roles", "main_stack", "defaults", "main.yml"),
              encoding="utf-8") as stream:
        catalogue = yaml.safe_load(stream)["main_stack_catalogue"]
    catalogue["ollama"]["probe_path"] = catalogue["ollama"].pop("probe")["path"]
    return catalogue


# Vault values that would inject a line into redis.conf, or split a dotenv value.
HOSTILE_NEWLINE = "Molecule-Redis-0123\nrename-command CONFIG \"\""
HOSTILE_SPACE = "Molecule db password with spaces"


def assert_still_fresh(host):
    """What any run on this host must not have done: install packages or create the stack."""
    installed = host.run("dpkg-query -W -f '${Package} ${db:Status-Abbrev}\\n' docker.io docker-compose python3-apt openssh-client age")
    assert " ii" not in installed.stdout, installed.stdout
    for path in ("/opt/homelab", "/etc/docker", "/data/coolify", "/etc/ansible/facts.d/homelab_gpu.fact",
                 "/var/backups/homelab", "/etc/homelab", "/usr/local/sbin/homelab-backup"):
        assert not host.file(path).exists, path


def test_the_host_starts_fresh(host):
    assert_still_fresh(host)
    assert host.run("systemctl cat docker.service").rc != 0


def test_check_mode_runs_to_the_end_and_predicts_the_install(host):
    rc, output = run_site("--check", "--diff")
    assert rc == 0, output
    folded = flat(output)
    assert recap_changed(output, host.backend.host) > 0
    # Predicted: the packages, the data tree and secrets, the first deploy.
    assert "docker.io" in folded and "docker-compose" in folded
    assert "/opt/homelab/data/n8n" in folded and "/opt/homelab/docker-compose.yml" in folded
    assert "Would deploy compose project homelab with ollama, open-webui, n8n, coolify-db, coolify-redis, coolify-realtime, coolify, cloudflared." in folded
    assert "failed=0" in output and "ignored=0" in output
    assert_still_fresh(host)


@pytest.mark.parametrize(
    "extra_vars, sentence",
    [
        ({"homelab_cloudflared_tunnel_token": NOT_A_TOKEN},
         "homelab_cloudflared_tunnel_token does not decode to JSON; copy the whole token from the Cloudflare dashboard."),
        ({"main_stack_ports": {"ollama": 99999}},
         "main_stack_ports.ollama is 99999, which is not a port; give a whole number from 1 to 65535."),
        ({"main_stack_images": {"n8n": "1.81.0"}},
         "main_stack_images.n8n must be a mapping such as {tag: \"1.2.3\"} that names only the fields to change, not '1.81.0'."),
        # The pin that broke the tunnel: no --token-file before 2025.4.0.
        ({"main_stack_images": {"cloudflared": {"tag": "2025.2.1"}}},
         "main_stack_images.cloudflared.tag '2025.2.1' is older than 2025.4.0, the first with --token-file / TUNNEL_TOKEN_FILE, "
         "which the role relies on; pin 2025.4.0 or newer."),
        ({"homelab_root": "opt/homelab"},
         "homelab_root (opt/homelab) must be an absolute path; set it to something like /opt/homelab."),
        ({"main_stack_n8n_owner_password": ""},
         "main_stack_n8n_owner_password is required when main_stack_n8n_owner_email is set; put it in the inventory's vault."),
        ({"main_stack_n8n_owner_password": "weakpassword"},
         "main_stack_n8n_owner_password must be 8 to 64 characters with a digit and an uppercase letter (n8n's rule); choose a stronger one."),
        ({"main_stack_secrets": {"n8n_encryption_kee": "0123456789abcdef0123"}},
         "main_stack_secrets has unknown key(s) n8n_encryption_kee; the known ones are"),
        ({"mcp_stack_secrets": {"tiktok_client_key": "a-client-key", "tiktok_refresh_token": "a-refresh-token"}},
         "mcp_stack_secrets gives tiktok_client_key, tiktok_refresh_token but not tiktok_client_secret, which tiktok-mcp "
         "also needs; add mcp_stack_secrets.tiktok_client_secret to deploy tiktok-mcp, or remove "
         "mcp_stack_secrets.tiktok_client_key and mcp_stack_secrets.tiktok_refresh_token to leave it out."),
        ({"mcp_stack_ports": {"x-mcp": 5678}, "mcp_stack_secrets": {"x_bearer_token": "a-bearer-token"}},
         "main_stack_ports.n8n and mcp_stack_ports.x-mcp publish the same host port 5678; give each service its own port."),
        ({"main_stack_ports": {"open_webui": 5678}},
         "main_stack_ports.open_webui and main_stack_ports.n8n publish the same host port 5678; give each service its own port."),
        # Owned before reachable (issue 22): hostile vault secrets, exposure, the whole inventory, the accounts.
        ({"main_stack_secrets": {"coolify_redis_password": HOSTILE_NEWLINE}},
         "main_stack_secrets.coolify_redis_password has a character that a file it is written to would misread; use only "
         "letters, digits and ! % & ( ) * + , - . / : ; < = > ? @ [ ] ^ _ { | } ~."),
        ({"main_stack_secrets": {"coolify_db_password": HOSTILE_SPACE}},
         "main_stack_secrets.coolify_db_password has a character that a file it is written to would misread;"),
        ({"homelab_bind_address": "0.0.0.0"},
         "homelab_bind_address (0.0.0.0) would publish every port beyond this host, where Docker's published ports bypass "
         "the firewall; keep 127.0.0.1 and reach the services through the tunnel, or set homelab_expose_on_lan: true to "
         "accept that."),
        ({"homelab_public_domain": "lab.example.org/evil"},
         "homelab_public_domain (lab.example.org/evil) is not a DNS name; give a bare domain such as lab.example.org"),
        ({"ollama_models": ["llama3.2:3b", "Not A Model!"]}, "ollama_models entry 2 ('Not A Model!')"),
        ({"docker_install_source": "snap"},
         "docker_install_source is 'snap', which role docker does not know; choose one of upstream, distro."),
        ({"main_stack_open_webui_admin_email": "", "main_stack_coolify_root_email": ""},
         "homelab_cloudflared_tunnel_token is set, so the tunnel can reach Open-WebUI before anyone owns it; set "
         "main_stack_open_webui_admin_email and main_stack_open_webui_admin_password (vault) so its admin account exists "
         "before its port opens. homelab_cloudflared_tunnel_token is set, so the tunnel can reach Coolify"),
        ({"main_stack_coolify_root_email": "root@homelab.test"},
         "main_stack_coolify_root_email ends in .test, which Coolify's root-user check refuses"),
        # The catalogue is a schema: a typo is refused, naming the stack, the service and the key.
        ({"main_stack_catalogue": catalogue_with_a_typo()},
         "main stack: main_stack_catalogue.ollama has the key probe_path, which no part of homelab.core reads; did you "
         "mean probe? Rename it."),
    ],
    ids=["bad-token", "port-out-of-range", "image-override-shape", "image-below-feature-minimum", "relative-root",
         "missing-owner-password", "weak-owner-password", "unknown-secret", "mcp-partial-credentials",
         "port-collision-across-stacks", "port-collision", "secret-with-newline", "secret-with-space", "bind-any",
         "domain-with-path", "bad-model-name", "bad-install-source", "tunnel-without-accounts", "coolify-reserved-tld",
         "catalogue-unknown-key"],
)
def test_bad_input_fails_in_the_first_play_before_anything_changes(host, extra_vars, sentence):
    rc, output = run_site("-e", json.dumps(extra_vars))
    folded = assert_refused(rc, output, host.backend.host, sentence)
    # Refused by the validation play, before the play that installs Docker started.
    assert "PLAY [Install and configure Docker Engine" not in output
    # Refused with nothing gathered: the first play has no fact-gathering task.
    assert "TASK [Gathering Facts]" not in output
    for secret in (NOT_A_TOKEN, "rename-command", "with spaces"):
        assert secret not in folded
    assert_still_fresh(host)


# --- WSL distributions that cannot run the homelab, refused before anything changes -----------
# A container cannot have WSL's /proc files, so each case gives wsl_info a stand-in root to read
# instead of / (homelab_wsl_probe_root, for tests only), written by tests/stand-ins/wsl/make-probe-root.sh.

WSL_ROOTS = "/root/homelab-standin-wsl"


@pytest.fixture(scope="module")
def stand_in_wsl_root(host):
    """Write a stand-in WSL root of a kind on the target (once each); every one is removed at the end."""
    with open(os.path.join(os.environ["MOLECULE_PROJECT_DIRECTORY"], "tests", "stand-ins", "wsl", "make-probe-root.sh"),
              "rb") as stream:
        script = base64.b64encode(stream.read()).decode("ascii")
    host.check_output("mkdir -p %s && echo %s | base64 -d > %s/make-probe-root.sh" % (WSL_ROOTS, script, WSL_ROOTS))
    made = {}

    def _make(kind):
        if kind not in made:
            made[kind] = "%s/%s" % (WSL_ROOTS, kind)
            host.check_output("sh %s/make-probe-root.sh %s %s" % (WSL_ROOTS, kind, made[kind]))
        return made[kind]

    yield _make
    host.check_output("rm -rf %s" % WSL_ROOTS)


@pytest.mark.parametrize(
    "kind, extra_vars, sentence",
    [
        ("wsl2-systemd-off", {},
         "/etc/wsl.conf line 3 sets systemd=false in its [boot] section, so WSL starts this distribution without "
         "systemd, which Docker and the GPU layer need: change that line to systemd=true, then run 'wsl --shutdown' "
         "from Windows and open the distribution again."),
        ("wsl1", {},
         "This is a WSL1 distribution (kernel release 4.4.0-19041-Microsoft), which has no Linux kernel for Docker or "
         "the GPU: convert it from Windows with 'wsl --set-version <distro> 2'"),
        # Docker Engine installed here and Docker Desktop's integration would both serve /var/run/docker.sock.
        ("wsl2-docker-desktop", {},
         "Docker Desktop's WSL integration is on in this distribution (/usr/bin/docker links to "
         "/mnt/wsl/docker-desktop/cli-tools/usr/bin/docker) while docker_wsl_engine is native,"),
        ("wsl2", {"docker_wsl_engine": "desktop"},
         "docker_wsl_engine is desktop but Docker Desktop's docker CLI is not in this distribution"),
        ("wsl2", {"docker_wsl_engine": "podman"},
         "docker_wsl_engine is 'podman', which role docker does not know; choose one of native, desktop."),
    ],
    ids=["wsl-systemd-off", "wsl1", "wsl-native-beside-docker-desktop", "wsl-desktop-without-docker-desktop",
         "wsl-unknown-engine"],
)
def test_a_wsl_distribution_that_cannot_run_the_homelab_is_refused_in_the_first_play(host, stand_in_wsl_root, kind,
                                                                                     extra_vars, sentence):
    extra = dict(extra_vars, homelab_wsl_probe_root=stand_in_wsl_root(kind))
    rc, output = run_site("-e", json.dumps(extra))
    assert_refused(rc, output, host.backend.host, sentence)
    assert "PLAY [Install and configure Docker Engine" not in output
    assert "TASK [Gathering Facts]" not in output
    assert_still_fresh(host)


def test_exposure_on_purpose_passes_the_first_play_and_names_ollamas_port(host):
    rc, output = run_site("--check", "-e", json.dumps({"homelab_bind_address": "0.0.0.0", "homelab_expose_on_lan": True}))
    assert rc == 0, output
    assert "homelab_bind_address is 0.0.0.0 and homelab_expose_on_lan is true, so these answer anyone who reaches this " \
           "host, with no login of their own: ollama on port 11434 (Ollama's API has no login)." in flat(output)
    assert_still_fresh(host)


def test_a_standalone_stack_run_without_a_gpu_decision_fails_before_anything_changes(host):
    rc, output = run_site(playbook="playbooks/main_stack.yml")
    assert_refused(rc, output, host.backend.host, "/etc/ansible/facts.d/homelab_gpu.fact is missing, so the stack cannot tell whether to reserve the GPU;")
    assert_still_fresh(host)


# --- Backups and restores refused before anything changes -----------------------------------

RECIPIENT = "age1cratkq57les6908fut5ha0c9pf8ga77e5vnj449hmfa5k64q3gesw4e59l"
BACKUPS = "/tmp/homelab-test-backups"


def fake_backup(host, name, damage=False):
    """A backup directory with a manifest (no real dumps): enough for the checks that run before anything changes."""
    script = (
        "import hashlib, json, os, sys; d = sys.argv[1]; os.makedirs(d, exist_ok=True); "
        "open(d + '/data.tar.gz', 'wb').write(b'not really an archive'); "
        "files = {n: {'size': os.path.getsize(d + '/' + n), 'sha256': hashlib.sha256(open(d + '/' + n, 'rb').read()).hexdigest()} "
        "for n in ['data.tar.gz']}; "
        "json.dump({'format': 1, 'files': files, 'created': 'x', 'collection_version': 'x'}, open(d + '/manifest.json', 'w'))"
    )
    host.check_output("python3 -c \"%s\" %s/%s" % (script, BACKUPS, name))
    if damage:
        host.check_output("echo tampered >> %s/%s/data.tar.gz" % (BACKUPS, name))


@pytest.mark.parametrize(
    "extra_vars, sentence",
    [
        ({"backup_age_recipients": []},
         "backup_age_recipients is empty: secrets go into a backup only encrypted, so give at least one age public key"),
        ({"backup_age_recipients": ["ssh-ed25519 AAAA"]},
         "backup_age_recipients has ssh-ed25519 AAAA, which is not an age public key;"),
        # Inside, not equal: a backup there would hold itself, and a container could read it.
        ({"backup_age_recipients": [RECIPIENT], "backup_destination": "/opt/homelab/data/backups"},
         "backup_destination must be an absolute path outside homelab_root (/opt/homelab), not /opt/homelab/data/backups: "
         "a backup inside the tree it backs up would hold itself, and a container could reach it."),
    ],
    ids=["no-recipient", "not-an-age-key", "destination-inside-root"],
)
def test_a_backup_with_bad_settings_is_refused_before_anything_changes(host, extra_vars, sentence):
    rc, output = run_site("-e", json.dumps(extra_vars), playbook="playbooks/backup.yml")
    assert_refused(rc, output, host.backend.host, sentence)
    assert_still_fresh(host)


@pytest.mark.parametrize(
    "name, damage, extra_vars, sentence",
    [
        (None, False, {},
         "no completed backup in %s; copy one there (or set backup_destination) before restoring." % BACKUPS),
        ("20261203T051500Z", True, {},
         "backup %s/20261203T051500Z is damaged and is not restored, nothing was changed: data.tar.gz has" % BACKUPS),
        ("20261203T051500Z", False, {"backup_restore_name": "20251203T051500Z"},
         "backup_restore_name 20251203T051500Z is not in %s (there: 20261203T051500Z)." % BACKUPS),
        ("20261203T051500Z", False, {"backup_restore_identity_file": "/root/no-such-identity.txt"},
         "backup_restore_identity_file /root/no-such-identity.txt does not exist on"),
    ],
    ids=["no-backup", "damaged-backup", "unknown-backup-name", "no-identity"],
)
def test_a_restore_that_cannot_succeed_is_refused_before_anything_changes(host, name, damage, extra_vars, sentence):
    host.check_output("rm -rf %s && mkdir -p %s" % (BACKUPS, BACKUPS))
    if name:
        fake_backup(host, name, damage=damage)
    extra = dict({"backup_destination": BACKUPS, "backup_age_recipients": [RECIPIENT]}, **extra_vars)
    rc, output = run_site("-e", json.dumps(extra), playbook="playbooks/restore.yml")
    assert_refused(rc, output, host.backend.host, sentence)
    assert "PLAY [Install and configure Docker Engine" not in output
    assert_still_fresh(host)
    host.check_output("rm -rf %s" % BACKUPS)


@pytest.mark.parametrize(
    "extra_vars, sentence",
    [
        ({"backup_age_recipients": []},
         "backup_age_recipients is empty: secrets go into a backup only encrypted, so give at least one age public key"),
        ({"backup_age_recipients": [RECIPIENT]},
         "The main stack (compose project homelab) is not deployed on homelab-molecule-fresh-host, so there is nothing to "
         "update; run site.yml first."),
    ],
    ids=["update-without-recipient", "update-before-any-deploy"],
)
def test_an_update_that_cannot_succeed_is_refused_before_anything_changes(host, extra_vars, sentence):
    rc, output = run_site("-e", json.dumps(extra_vars), playbook="playbooks/update.yml")
    assert_refused(rc, output, host.backend.host, sentence)
    assert_still_fresh(host)


def test_a_bad_model_list_is_refused_before_anything_changes(host):
    rc, output = run_site("-e", json.dumps({"ollama_models": [{"name": "llama3.2:3b", "state": "gone"}]}),
                          playbook="playbooks/models.yml")
    folded = assert_refused(rc, output, host.backend.host, "has state 'gone'; use present or absent.")
    assert "ollama_models entry 1 (" in folded
    assert_still_fresh(host)
