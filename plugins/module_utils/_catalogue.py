# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Service catalogues and compose stacks as data, resolved and validated: pure functions, no I/O.

A *stack definition* is a dict that a stack role (main_stack, mcp_stack) builds
from its catalogue and the inventory. Here it is resolved (overrides, enabled
services, image references, builds, secrets) and checked (stack_problems,
stack_warnings, validation_reads). The compose_stack engine role turns it into
files and a compose project through the stack_plan filter
(``plugins/filter/stack_plan.py``), which calls these functions and those of
``_stack_files`` (the file tree) and ``_compose_document`` (the compose file).

Stack definition keys:

``name``            stack id, used in messages (``main``)
``project``         compose project name
``root``            absolute directory of the compose file, env/, config/, secrets/
``data_root``       absolute root of the data bind mounts
``compose_file``    compose file name inside ``root``
``secrets_file``    persisted secrets, relative to ``root``
``bind_address``    address every published port binds to
``placements``      the inventory groups whose services run on this host (see _fleet); absent: all of them
``private_address`` the host's address on the fleet's private network: services with ``fleet_port`` also
                    publish their port there ('' or absent: loopback only)
``image_registry``  registry host that replaces every image's registry ('' keeps them)
``networks``        compose networks (name -> compose network definition)
``secrets``         secret name -> {pinned, generate (alnum|laravel_key), length, value, persist, credential,
                    bcrypt_of} (a ``credential`` comes only from the inventory: never generated nor persisted;
                    ``bcrypt_of`` is a password whose bcrypt hash is the secret, salted from the per-host key,
                    never persisted)
``services``        the catalogue: service name -> entry (its keys: _catalogue_schema.SCHEMA)
``overrides``       {images: {...}, ports: {...}} from the inventory, per service
``variables``       the inventory variable names behind overrides/secrets, for messages
``inventory_secrets`` secrets given in the inventory; ``rotate_secrets`` pinned ones that may change
``problems``        sentences from checks particular to the stack (empty strings are ignored)
``adopt_secrets``   secret name -> {path (absolute), json_key}: a value the service itself keeps
                    there (n8n's encryption key in data/n8n/config) wins over the persisted one
``expose_on_lan``   true lets ``bind_address`` be an address other hosts reach (refused otherwise)
``public_domain``   the domain served through the tunnel ('' for none): must be a DNS name
``subnets``         inventory variable -> a network's fixed subnet (CIDR), which must be private
``tunnel``          true when a tunnel routes to the stack's services: every ``accounts`` entry is required
``accounts``        [{service, label, email, password, password_rule (n8n|coolify|basic), variables: {email,
                    password}}]: the admin account each service gets before its port opens
``per_gpu``         {devices, active}: the GPU indices of the host's GPU decision, and whether each catalogue entry
                    with ``per_gpu: true`` runs as one service per index (``split_per_gpu``); absent or no devices:
                    every entry runs as it is

Values in ``env`` and in config file contents may hold placeholders that are
filled in last: ``<<secret:NAME>>`` (a secret's value) and ``<<port:SERVICE>>``
(a service's published host port).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import ipaddress
import json
import re
import secrets as _random

from ansible_collections.homelab.core.plugins.module_utils._catalogue_schema import catalogue_problems
from ansible_collections.homelab.core.plugins.module_utils._endpoints import canonical_name, local_address, service_port, url_host

DEFAULT_PLACEMENT = "control"
IMAGE_KEYS = ("registry", "repository", "tag", "digest")
PLACEHOLDER = re.compile(r"<<(secret|port):([A-Za-z0-9_.-]+)>>")
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
HASH_KEY_SECRET = "config_hash_key"
# What a secret from the inventory may hold: every sink it reaches (compose env files, Laravel's dotenv, redis.conf,
# nginx maps, JSON) reads these literally. A space, quote, backslash, `$` or `#` is reinterpreted by one of them,
# and a newline injects a line.
SAFE_SECRET = re.compile(r"^[A-Za-z0-9!%&()*+,./:;<=>?@\[\]^_{|}~-]+$")
SAFE_SECRET_CHARACTERS = "letters, digits and ! % & ( ) * + , - . / : ; < = > ? @ [ ] ^ _ { | } ~"
# RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens, 253 characters at most.
DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+\.)+[A-Za-z0-9-]+$")
# Top-level domains that Coolify's root-user seeder refuses (Laravel's email:dns rule, egulias/EmailValidator 4):
# with one of these it creates no user and leaves registration open.
RESERVED_TLDS = frozenset(["test", "example", "invalid", "localhost", "local", "internal", "lan", "corp", "home",
                           "private", "intranet"])


def resolve_services(stack):
    """The catalogue with the inventory's per-service image and port overrides applied.

    An override changes only the keys it names, for only the service it names.
    Unknown services are ignored here (stack_problems reports them).
    """
    services = copy.deepcopy(stack.get("services") or {})
    overrides = stack.get("overrides") or {}
    for key, override in (overrides.get("images") or {}).items():
        name = canonical_name(key, services)
        if name is not None and isinstance(override, dict):
            image = dict(services[name].get("image") or {})
            image.update(override)
            services[name]["image"] = image
    # The one rule for a service's host port (_endpoints), which the fleet and the ollama role use too.
    for name in services:
        port = service_port(name, services, overrides.get("ports"))
        if port is not None or "port" in services[name]:
            services[name]["port"] = port
    inventory = stack.get("inventory_secrets") if isinstance(stack.get("inventory_secrets"), dict) else {}
    placements = stack.get("placements")
    for entry in services.values():
        entry["enabled"] = _truthy(entry.get("enabled", True))
        if placements is not None and entry.get("placement", DEFAULT_PLACEMENT) not in placements:
            entry["enabled"] = False
        entry["gpu"] = _truthy(entry.get("gpu", False))
        _given, missing = credentials_given(entry, inventory)
        if missing:
            entry["enabled"] = False
    return split_per_gpu(services, stack.get("per_gpu"), overrides)


# --- One service per GPU ------------------------------------------------------------------

PER_GPU_KEY = re.compile(r"^(.+)[-_]gpu(0|[1-9][0-9]*)$")


def instance_name(name, device):
    """The service that runs ``name`` on the GPU with index ``device`` alone: ollama-gpu0, ollama-gpu1, ..."""
    return "%s-gpu%s" % (name, device)


def instance_port(name, base, device, ports=None):
    """The host port of ``name``'s instance on GPU ``device``: the inventory's override for the instance
    (``ollama-gpu1`` or ``ollama_gpu1``), else the service's own port plus the GPU index; None without a port."""
    wanted = instance_name(name, device)
    for key, port in (ports.items() if isinstance(ports, dict) else []):
        if str(key).replace("_", "-") == wanted:
            return port
    if base is None or isinstance(base, bool) or not isinstance(base, int):
        return base
    return base + int(device)


def per_gpu_parent(key, services):
    """The catalogue entry with ``per_gpu`` that an override key names an instance of (``ollama_gpu1``), or None."""
    match = PER_GPU_KEY.match(str(key))
    if not match:
        return None
    name = canonical_name(match.group(1), services)
    return name if name is not None and _truthy((services.get(name) or {}).get("per_gpu", False)) else None


def _instance_path(path, parents, device):
    """A data path of the service moved into its instance's directory: ollama/models -> ollama/gpu0/models."""
    for parent in parents:
        if path == parent or path.startswith(parent + "/"):
            return "%s/gpu%s%s" % (parent, device, path[len(parent):])
    return path


def _instance(name, entry, device, overrides):
    """The copy of ``entry`` that runs on GPU ``device`` alone, with its own port, data directory and backup paths."""
    instance = copy.deepcopy(entry)
    instance.update(instance_of=name, gpu_device=str(device))
    instance["port"] = instance_port(name, entry.get("port"), device, (overrides or {}).get("ports"))
    parents = [item["path"] for item in entry.get("data") or []]
    data = []
    for item in entry.get("data") or []:
        # The service's own directory stays, unmounted, as the parent of its instances' (it is the shared Ollama's):
        # created as before, never emptied; the update's data rollback leaves it to the instances' paths.
        data.append({key: value for key, value in item.items() if key != "target"})
        data[-1]["instances_parent"] = True
        data.append(dict(item, path=_instance_path(item["path"], parents, device)))
    if data:
        instance["data"] = data
    backup = dict(instance.get("backup") or {})
    for kind in ("models", "sqlite"):
        if isinstance(backup.get(kind), list):
            backup[kind] = [_instance_path(path, parents, device) for path in backup[kind]]
    if backup:
        instance["backup"] = backup
    wanted = instance_name(name, device)
    for key, override in ((overrides or {}).get("images") or {}).items():
        if str(key).replace("_", "-") == wanted and isinstance(override, dict):
            instance["image"] = dict(instance.get("image") or {}, **override)
    return instance


def split_per_gpu(services, per_gpu, overrides=None):
    """``services`` with each entry that has ``per_gpu: true`` followed by one instance per GPU index of ``per_gpu``
    (``{devices, active}``, the stack definition's): ``<name>-gpu<index>``, reserving that GPU alone (``gpu_device``),
    on the entry's port plus the index (or the inventory's port for the instance), with its data under
    ``<path>/gpu<index>``. Active, the entry itself is switched off and the services that depend on it depend on
    every instance; inactive (the shared layout), the instances are switched off: their files go, their data stays.
    """
    per_gpu = per_gpu if isinstance(per_gpu, dict) else {}
    devices = [str(device) for device in per_gpu.get("devices") or []]
    if len(devices) < 2 or not any(_truthy(entry.get("per_gpu", False)) for entry in services.values()):
        return services
    active = _truthy(per_gpu.get("active", False))
    result, split = {}, {}
    for name, entry in services.items():
        if not _truthy(entry.get("per_gpu", False)) or not entry.get("gpu"):
            result[name] = entry
            continue
        result[name] = dict(entry, enabled=entry.get("enabled") and not active, split_into=[])
        for device in devices:
            instance = _instance(name, entry, device, overrides)
            instance["enabled"] = bool(entry.get("enabled")) and active
            result[instance_name(name, device)] = instance
            result[name]["split_into"].append(instance_name(name, device))
        if active:
            split[name] = result[name]["split_into"]
    for entry in result.values():
        depends_on = entry.get("depends_on")
        if isinstance(depends_on, dict) and any(other in split for other in depends_on):
            rewritten = {}
            for other, condition in depends_on.items():
                for target in split.get(other, [other]):
                    rewritten[target] = condition
            entry["depends_on"] = rewritten
    return result


def credentials_given(entry, inventory):
    """(given, missing): the entry's credentials that the inventory gives (non-empty) and those it does not."""
    names = list(entry.get("credentials") or [])
    given = [name for name in names if isinstance(inventory.get(name), str) and inventory[name].strip()]
    return given, [name for name in names if name not in given]


def _truthy(value):
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def enabled_services(services):
    return [name for name, entry in services.items() if entry.get("enabled")]


def image_ref(image, registry_override="", tag_suffix=""):
    """registry/repository:tag[@digest], with registry_override replacing the image's registry."""
    registry = registry_override or image.get("registry") or "docker.io"
    ref = "%s/%s:%s%s" % (registry, image["repository"], image["tag"], tag_suffix or "")
    if image.get("digest"):
        ref += "@" + image["digest"]
    return ref


def service_image_ref(stack, entry, gpu_reservation, name=None):
    """The image a service runs; a built one is named after its service, so give ``name`` then."""
    if entry.get("build"):
        return built_image_ref(stack, entry, name)
    suffix = entry.get("gpu_image_tag_suffix", "") if entry.get("gpu") and uses_gpu(gpu_reservation) else ""
    return image_ref(entry["image"], stack.get("image_registry") or "", suffix)


def file_mode(mode, default):
    """A file or directory mode as file_tree takes it: the catalogue's, or ``default`` where it gives none."""
    return str(mode if mode is not None else default)


# --- Images built on the host ----------------------------------------------------------

BUILT_IMAGE_REPOSITORY = "homelab.local/%s/%s"


def build_base_ref(stack, entry):
    """The build's base image, through the registry override like every pulled image."""
    return image_ref(entry["build"]["base"], stack.get("image_registry") or "")


def build_inputs_hash(stack, name, entry):
    """Hash of everything the image is built from: a changed input gives a new tag, hence a build."""
    build = entry["build"]
    inputs = {
        "base": build_base_ref(stack, entry),
        "dockerfile": build["dockerfile"],
        "files": sorted((item["path"], item["content"], file_mode(item.get("mode"), "0644")) for item in build.get("files") or []),
        "args": sorted((str(key), str(value)) for key, value in (build.get("args") or {}).items()),
        "service": name,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def built_image_ref(stack, entry, name):
    return "%s:%s" % (BUILT_IMAGE_REPOSITORY % (stack["project"], name), build_inputs_hash(stack, name, entry))


def build_context(stack, name):
    return "%s/build/%s" % (stack["root"], name)


def builds(stack, services):
    """What the engine builds before compose up: one entry per enabled service with a `build`."""
    result = []
    for name in enabled_services(services):
        entry = services[name]
        if entry.get("build"):
            args = dict((str(key), str(value)) for key, value in (entry["build"].get("args") or {}).items())
            args["BASE_IMAGE"] = build_base_ref(stack, entry)
            tag, context = built_image_ref(stack, entry, name), build_context(stack, name)
            argv = ["docker", "build", "--tag", tag]
            for key in sorted(args):
                argv += ["--build-arg", "%s=%s" % (key, args[key])]
            result.append({"service": name, "tag": tag, "context": context, "args": dict(sorted(args.items())),
                           "argv": argv + [context]})
    return result


def uses_gpu(gpu_reservation):
    return gpu_reservation in ("nvidia", "cdi")


# --- Validation -------------------------------------------------------------------------


def _is_port(value):
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def adopt_files(stack):
    """The files where services keep secrets of their own, to be read (read-only) before planning."""
    return [
        {"stack": stack["name"], "secret": name, "path": spec["path"], "json_key": spec["json_key"]}
        for name, spec in sorted((stack.get("adopt_secrets") or {}).items())
    ]


def persisted_values(stack, contents):
    """The secrets persisted on the host for ``stack``, from read_files' ``contents`` (absolute path -> base64);
    {} where the stack has no secrets file yet."""
    encoded = (contents or {}).get("%s/%s" % (stack["root"], stack["secrets_file"]))
    return json.loads(base64.b64decode(encoded)) if encoded else {}


def adopted_values(stack, contents):
    """Secret name -> the value a service keeps itself, from read_files' ``contents``."""
    values = {}
    for item in adopt_files(stack):
        encoded = (contents or {}).get(item["path"])
        if not encoded:
            continue
        try:
            value = json.loads(base64.b64decode(encoded).decode("utf-8")).get(item["json_key"])
        except (ValueError, UnicodeDecodeError, AttributeError):
            continue
        if isinstance(value, str) and value:
            values[item["secret"]] = value
    return values


def stack_problems(stacks, persisted=None, adopted=None, nonempty_dirs=None):
    """Every problem with the stacks' inventory, one sentence each naming the variable and the fix.

    ``persisted`` maps a stack name to the secrets already persisted on the host (read-only);
    ``adopted`` is read_files' ``contents`` for the stacks' adopt_secrets files;
    ``nonempty_dirs`` lists the directories of ``validation_reads(stacks)['dirs']`` that hold anything
    (None: not looked at, so no check of secrets lost over live data).
    Port collisions are checked across all stacks.
    """
    persisted = persisted or {}
    problems = []
    published = []  # (port, how the inventory or catalogue names it)
    for stack in stacks:
        # Checks particular to one stack (a token's shape), already phrased.
        problems.extend(problem for problem in stack.get("problems") or [] if problem)
        problems.extend(catalogue_problems(stack))
        problems.extend(_paths_problems(stack))
        problems.extend(_domain_problems(stack))
        problems.extend(_subnet_problems(stack))
        problems.extend(_override_problems(stack))
        adopted_here = adopted_values(stack, adopted)
        problems.extend(_secret_problems(stack, persisted.get(stack["name"]) or {}, adopted_here))
        problems.extend(_credential_problems(stack))
        services = resolve_services(stack)
        problems.extend(_account_problems(stack, services))
        if nonempty_dirs is not None:
            problems.extend(_reset_problems(stack, services, persisted.get(stack["name"]) or {}, adopted_here, nonempty_dirs))
        images_variable = (stack.get("variables") or {}).get("images", "images")
        for name in enabled_services(services):
            problem = version_problem(images_variable, name, services[name])
            if problem:
                problems.append(problem)
        ports_variable = (stack.get("variables") or {}).get("ports", "ports")
        # Name an overridden port the way the inventory spelled it (open_webui for open-webui).
        ports = (stack.get("overrides") or {}).get("ports") or {}
        written = dict((canonical_name(key, services), key) for key in ports) if isinstance(ports, dict) else {}
        for name in enabled_services(services):
            port = services[name].get("port")
            if port is None:
                continue
            if not _is_port(port):
                problems.append(
                    "%s.%s is %r, which is not a port; give a whole number from 1 to 65535."
                    % (ports_variable, written.get(name, name), port)
                )
            else:
                published.append((port, "%s.%s" % (ports_variable, written.get(name, name))))
        for name in enabled_services(services):
            for item in services[name].get("extra_ports") or []:
                published.append((item["host"], "%s's extra port (catalogue)" % name))
    by_port = {}
    for port, label in published:
        by_port.setdefault(port, []).append(label)
    for port in sorted(by_port):
        if len(by_port[port]) > 1:
            problems.append(
                "%s publish the same host port %d; give each service its own port." % (" and ".join(by_port[port]), port)
            )
    # Both stacks share the project-wide settings (the bind address): one sentence per problem.
    return list(dict.fromkeys(problems))


def version_tuple(tag):
    """(4, 3, 10) for "4.3.10", "v4.3.10" or "0.12.4-cuda"; None for a tag that is not a version."""
    match = re.match(r"^v?([0-9]+(?:\.[0-9]+)*)(?:$|[-+])", str(tag))
    if match is None:
        return None
    return tuple(int(part) for part in match.group(1).split("."))


def version_problem(variable, name, entry):
    """A sentence when the service's image tag is older than the oldest version with a feature the role uses."""
    minimum = entry.get("min_version")
    if not minimum:
        return None
    tag = (entry.get("image") or {}).get("tag", "")
    found, wanted = version_tuple(tag), version_tuple(minimum["version"])
    if found is None:
        return "%s.%s.tag %r is not a version, so it cannot be checked against %s, the first with %s; pin a release such as %r." % (
            variable, name, tag, minimum["version"], minimum["feature"], minimum["version"])
    width = max(len(found), len(wanted))
    if found + (0,) * (width - len(found)) < wanted + (0,) * (width - len(wanted)):
        return "%s.%s.tag %r is older than %s, the first with %s, which the role relies on; pin %s or newer." % (
            variable, name, tag, minimum["version"], minimum["feature"], minimum["version"])
    return None


def _paths_problems(stack):
    problems = []
    variables = stack.get("variables") or {}
    for key, variable in (("root", "homelab_root"), ("data_root", "homelab_data_root")):
        value = stack.get(key)
        if not isinstance(value, str) or not value.startswith("/"):
            problems.append(
                "%s (%s) must be an absolute path; set it to something like %s."
                % (variables.get(key, variable), value, "/opt/homelab" if key == "root" else "/opt/homelab/data")
            )
    address = stack.get("bind_address")
    try:
        parsed = ipaddress.ip_address(str(address))
    except ValueError:
        problems.append(
            "%s (%s) is not an IP address; use 127.0.0.1 so remote access goes through the tunnel."
            % (variables.get("bind_address", "homelab_bind_address"), address)
        )
        return problems
    if not parsed.is_loopback and not _truthy(stack.get("expose_on_lan", False)):
        problems.append(
            "%s (%s) would publish every port beyond this host, where Docker's published ports bypass the firewall; "
            "keep 127.0.0.1 and reach the services through the tunnel, or set homelab_expose_on_lan: true to accept that."
            % (variables.get("bind_address", "homelab_bind_address"), address)
        )
    return problems


def _domain_problems(stack):
    domain = stack.get("public_domain") or ""
    if not isinstance(domain, str):
        domain = str(domain)
    if domain and not is_dns_name(domain):
        return [
            "homelab_public_domain (%s) is not a DNS name; give a bare domain such as lab.example.org: dot-separated "
            "labels of letters, digits and inner hyphens, with no scheme, path or port." % domain[:80]
        ]
    return []


def _subnet_problems(stack):
    problems = []
    for variable, value in sorted((stack.get("subnets") or {}).items()):
        try:
            network = ipaddress.ip_network(str(value), strict=True)
        except ValueError:
            network = None
        if network is None or not network.is_private or network.num_addresses < 8:
            problems.append(
                "%s (%s) is not a private network of 8 addresses or more in CIDR form; give one such as 172.31.250.0/24 "
                "that no other network of this host overlaps." % (variable, value)
            )
    return problems


def is_dns_name(name):
    """An RFC 1123 host name with at least two labels (a trailing dot allowed)."""
    name = name[:-1] if name.endswith(".") else name
    labels = name.split(".")
    return len(name) <= 253 and len(labels) >= 2 and all(DNS_LABEL.match(label) for label in labels)


def _account_problems(stack, services):
    """The admin accounts the stack's services get before their ports open: required behind a tunnel, and sound."""
    problems = []
    for account in stack.get("accounts") or []:
        if not (services.get(account["service"]) or {}).get("enabled"):
            continue
        variables = account["variables"]
        email, password = account.get("email") or "", account.get("password") or ""
        if not isinstance(email, str) or not isinstance(password, str):
            problems.append("%s and %s must be strings (quote them in the vault)." % (variables["email"], variables["password"]))
            continue
        if not email:
            if _truthy(stack.get("tunnel", False)):
                problems.append(
                    "homelab_cloudflared_tunnel_token is set, so the tunnel can reach %s before anyone owns it; set %s and "
                    "%s (vault) so its admin account exists before its port opens."
                    % (account.get("label", account["service"]), variables["email"], variables["password"])
                )
            continue
        if not EMAIL.match(email):
            problems.append("%s (%s) is not an email address; give one such as admin@example.org." % (variables["email"], email[:80]))
        elif account.get("password_rule") == "coolify" and email.rsplit(".", 1)[-1].lower() in RESERVED_TLDS:
            problems.append(
                "%s ends in .%s, which Coolify's root-user check refuses (it would create no root user and leave "
                "registration open); use an address on a real domain." % (variables["email"], email.rsplit(".", 1)[-1].lower())
            )
        for variable, value in sorted((account.get("names") or {}).items()):
            if not isinstance(value, str) or not value or not SAFE_NAME.match(value):
                problems.append(
                    "%s must be a non-empty name without quotes, backslashes, $, # or line breaks (it is written to an env file)."
                    % variable
                )
        problem = _password_problem(account.get("password_rule", "basic"), variables, password)
        if problem:
            problems.append(problem)
    return problems


SAFE_NAME = re.compile(r"^[^\x00-\x1f\x7f\"'`\\$#]+$")


def _password_problem(rule, variables, password):
    variable = variables["password"]
    if not password:
        return "%s is required when %s is set; put it in the inventory's vault." % (variable, variables["email"])
    if not SAFE_SECRET.match(password):
        return "%s has a character that a file it is written to would misread; use only %s." % (variable, SAFE_SECRET_CHARACTERS)
    digit, upper, lower = (re.search(pattern, password) for pattern in ("[0-9]", "[A-Z]", "[a-z]"))
    if rule == "n8n" and not (8 <= len(password) <= 64 and digit and upper):
        return "%s must be 8 to 64 characters with a digit and an uppercase letter (n8n's rule); choose a stronger one." % variable
    if rule == "coolify" and not (len(password) >= 8 and digit and upper and lower and re.search("[^A-Za-z0-9]", password)):
        return ("%s must be 8 characters or more with upper- and lowercase letters, a digit and a symbol (Coolify's rule: "
                "without it Coolify creates no root user and leaves registration open); choose a stronger one." % variable)
    if not 8 <= len(password) <= 64:
        return "%s must be 8 to 64 characters; choose another." % variable
    return None


def service_secrets(entry):
    """The secrets a catalogue entry reads: its secret files and the placeholders of its env and config files."""
    names = set(item["secret"] for item in entry.get("secret_files") or [])
    texts = [str(value) for value in (entry.get("env") or {}).values() if value is not None]
    texts += [str(item.get("content", "")) for item in entry.get("config_files") or []]
    for text in texts:
        names.update(name for kind, name in PLACEHOLDER.findall(text) if kind == "secret")
    return names


def _pinned_users(stack, services):
    """Pinned secret -> the absolute data directories of the enabled services that read it."""
    found = {}
    for name, spec in sorted((stack.get("secrets") or {}).items()):
        if not spec.get("pinned") or "value" in spec or spec.get("credential"):
            continue
        dirs = []
        for service in enabled_services(services):
            if name in service_secrets(services[service]):
                dirs += ["%s/%s" % (stack["data_root"], item["path"]) for item in services[service].get("data") or []]
        if dirs:
            found[name] = dirs
    return found


def validation_reads(stacks):
    """What the validation step reads on the host (read-only): every stack's persisted secrets file and the files
    services keep secrets in (``files``), and the data directories of the services that read a pinned secret
    (``dirs``), to tell a new host from one whose persisted secrets went missing."""
    files, dirs = [], []
    for stack in stacks:
        files.append("%s/%s" % (stack["root"], stack["secrets_file"]))
        files += [item["path"] for item in adopt_files(stack)]
        for paths in _pinned_users(stack, resolve_services(stack)).values():
            dirs += [path for path in paths if path not in dirs]
    return {"files": files, "dirs": dirs}


def _reset_problems(stack, services, persisted, adopted, nonempty_dirs):
    """Pinned secrets the host lost although the data initialised with them is still there."""
    variables = stack.get("variables") or {}
    inventory = stack.get("inventory_secrets") if isinstance(stack.get("inventory_secrets"), dict) else {}
    rotate = set(stack.get("rotate_secrets") or [])
    lost, holders = [], []
    for name, dirs in sorted(_pinned_users(stack, services).items()):
        if name in persisted or name in (adopted or {}) or name in inventory or name in rotate:
            continue
        full = [path for path in dirs if path in nonempty_dirs]
        if full:
            lost.append(name)
            holders += [path for path in full if path not in holders]
    if not lost:
        return []
    return [
        "%s/%s does not hold %s, but %s already hold data set up with it, and a new value would lock the services out "
        "of it; put the file back (playbooks/restore.yml restores it from a backup), give the old value in %s, or list "
        "the name in %s to accept a reset."
        % (stack.get("root"), stack.get("secrets_file"), ", ".join(lost), ", ".join(holders),
           variables.get("secrets", "secrets"), variables.get("rotate_secrets", "rotate_secrets"))
    ]


def adopted_changes(stack, persisted, kept):
    """The secrets a service keeps itself (``kept``, see adopted_values) that differ from the persisted ones and that
    the inventory does not give: the run takes the service's value into the secrets file."""
    given = stack.get("inventory_secrets") or {}
    return sorted(name for name, value in kept.items() if persisted.get(name) and persisted[name] != value and name not in given)


def stack_warnings(stacks, persisted=None, contents=None):
    """What the run should warn about, one sentence each: services left unclaimed without a tunnel, the ports that
    answer anyone when the stacks are exposed beyond this host, and the secrets taken from the services' own data
    (``persisted``: stack name -> persisted secrets; ``contents``: read_files' contents of the adopt_secrets files)."""
    warnings = []
    for stack in stacks:
        taken = adopted_changes(stack, (persisted or {}).get(stack["name"]) or {}, adopted_values(stack, contents or {}))
        if taken:
            warnings.append(
                "%s differed from %s/%s and is kept as the service itself uses it; the secrets file now holds that value."
                % (", ".join(taken), stack["root"], stack["secrets_file"])
            )
        services = resolve_services(stack)
        for account in stack.get("accounts") or []:
            entry = services.get(account["service"]) or {}
            if entry.get("enabled") and not account.get("email") and not _truthy(stack.get("tunnel", False)):
                variables = account["variables"]
                warnings.append(
                    "%s has no admin account from the inventory (%s), so whoever first opens %s owns it; set %s and %s, "
                    "or claim it yourself now."
                    % (account.get("label", account["service"]), variables["email"], _local_url(stack, entry),
                       variables["email"], variables["password"])
                )
        try:
            exposed = not ipaddress.ip_address(str(stack.get("bind_address"))).is_loopback
        except ValueError:
            exposed = False
        if exposed:
            open_ports = ["%s on port %d (%s)" % (name, services[name]["port"], services[name]["unauthenticated"])
                          for name in enabled_services(services)
                          if services[name].get("unauthenticated") and _is_port(services[name].get("port"))]
            if open_ports:
                warnings.append(
                    "homelab_bind_address is %s and homelab_expose_on_lan is true, so these answer anyone who reaches this "
                    "host, with no login of their own: %s." % (stack["bind_address"], "; ".join(open_ports))
                )
    return list(dict.fromkeys(warnings))


def local_host(stack):
    """The host part of a URL that reaches the stack's published ports from this host (loopback for any-address)."""
    return url_host(local_address(stack.get("bind_address")))


def _local_url(stack, entry):
    return "http://%s:%s/" % (local_host(stack), entry.get("port"))


def _override_problems(stack):
    problems = []
    services = stack.get("services") or {}
    variables = stack.get("variables") or {}
    known = ", ".join(sorted(services))
    images_variable = variables.get("images", "images")
    images = (stack.get("overrides") or {}).get("images") or {}
    if not isinstance(images, dict):
        return ["%s must be a mapping of service name to image fields (tag, repository, registry, digest)." % images_variable]
    for key, override in images.items():
        name = canonical_name(key, services) or per_gpu_parent(key, services)
        if name is None:
            problems.append("%s has an unknown service %r; the services are %s." % (images_variable, key, known))
            continue
        if not isinstance(override, dict):
            problems.append(
                "%s.%s must be a mapping such as {tag: \"1.2.3\"} that names only the fields to change, not %r."
                % (images_variable, key, override)
            )
            continue
        unknown = sorted(set(override) - set(IMAGE_KEYS))
        if unknown:
            problems.append(
                "%s.%s has unknown field(s) %s; an image override may set only %s."
                % (images_variable, key, ", ".join(unknown), ", ".join(IMAGE_KEYS))
            )
        for field in IMAGE_KEYS:
            if field in override and not isinstance(override[field], str):
                problems.append("%s.%s.%s must be a string (quote versions such as \"1.10\")." % (images_variable, key, field))
        tag = override.get("tag")
        if isinstance(tag, str) and (not TAG.match(tag) or tag == "latest"):
            problems.append("%s.%s.tag %r is not a pinned tag; give a release such as \"1.2.3\", never latest." % (images_variable, key, tag))
        digest = override.get("digest")
        if isinstance(digest, str) and digest and not DIGEST.match(digest):
            problems.append("%s.%s.digest must look like sha256:<64 hex digits>, or be empty." % (images_variable, key))
    ports_variable = variables.get("ports", "ports")
    ports = (stack.get("overrides") or {}).get("ports") or {}
    if not isinstance(ports, dict):
        return problems + ["%s must be a mapping of service name to host port." % ports_variable]
    for key in ports:
        name = canonical_name(key, services)
        parent = per_gpu_parent(key, services) if name is None else None
        if name is None and parent is None:
            problems.append("%s has an unknown service %r; the services are %s." % (ports_variable, key, known))
        elif "port" not in services[name or parent]:
            problems.append("%s.%s: that service publishes no port; remove the key." % (ports_variable, key))
        elif parent is not None and ports[key] is not None and not _is_port(ports[key]):
            # An instance that does not run on this host is not among the published ports below: its port is checked here.
            problems.append("%s.%s is %r, which is not a port; give a whole number from 1 to 65535." % (ports_variable, key, ports[key]))
    return problems


def _secret_problems(stack, persisted, adopted=None):
    problems = []
    variables = stack.get("variables") or {}
    specs = stack.get("secrets") or {}
    settable = sorted(name for name, spec in specs.items() if "value" not in spec and "bcrypt_of" not in spec)
    inventory = stack.get("inventory_secrets") or {}
    secrets_variable = variables.get("secrets", "secrets")
    if not isinstance(inventory, dict):
        return ["%s must be a mapping of secret name to value." % secrets_variable]
    unknown = sorted(set(inventory) - set(settable))
    if unknown:
        problems.append(
            "%s has unknown key(s) %s; the known ones are %s." % (secrets_variable, ", ".join(unknown), ", ".join(settable))
        )
    for name, value in sorted(inventory.items()):
        if name in settable and isinstance(value, str) and value.strip():
            if not SAFE_SECRET.match(value):
                problems.append(
                    "%s.%s has a character that a file it is written to would misread; use only %s."
                    % (secrets_variable, name, SAFE_SECRET_CHARACTERS)
                )
                continue
        if name in settable and specs[name].get("credential"):
            if not isinstance(value, str):
                problems.append("%s.%s must be a string (quote it in the vault)." % (secrets_variable, name))
        elif name in settable and (not isinstance(value, str) or len(value) < 16):
            problems.append("%s.%s must be a string of 16 characters or more; leave it out to have one generated." % (secrets_variable, name))
    rotate_variable = variables.get("rotate_secrets", "rotate_secrets")
    rotate = stack.get("rotate_secrets") or []
    unknown = sorted(set(rotate) - set(settable))
    if unknown:
        problems.append("%s names unknown secret(s) %s; the known ones are %s." % (rotate_variable, ", ".join(unknown), ", ".join(settable)))
    refused = set()
    for name, value in sorted((adopted or {}).items()):
        if name in inventory and inventory[name] != value:
            refused.add(name)
            path = [item["path"] for item in adopt_files(stack) if item["secret"] == name][0]
            problems.append(
                "%s.%s differs from the key the service already uses (%s), so it would refuse to start; "
                "set it to that value, or leave it out to keep using it." % (secrets_variable, name, path)
            )
    conflicts = [name for name in pinned_conflicts(stack, dict(persisted, **(adopted or {}))) if name not in refused]
    if conflicts:
        problems.append(
            "%s changes %s, which this host already uses (%s/%s), and data encrypted or initialised with it would become "
            "unreadable; restore the old value, or list the name in %s to rotate it on purpose."
            % (secrets_variable, ", ".join(conflicts), stack.get("root"), stack.get("secrets_file"), rotate_variable)
        )
    return problems


def _credential_problems(stack):
    """A service whose credentials the inventory gives only in part: neither deployed nor silently left out."""
    inventory = stack.get("inventory_secrets") if isinstance(stack.get("inventory_secrets"), dict) else {}
    secrets_variable = (stack.get("variables") or {}).get("secrets", "secrets")
    problems = []
    for name, entry in sorted((stack.get("services") or {}).items()):
        given, missing = credentials_given(entry, inventory)
        if given and missing:
            problems.append(
                "%s gives %s but not %s, which %s also needs; add %s to deploy %s, or remove %s to leave it out."
                % (secrets_variable, ", ".join(given), ", ".join(missing), name,
                   " and ".join("%s.%s" % (secrets_variable, item) for item in missing), name,
                   " and ".join("%s.%s" % (secrets_variable, item) for item in given))
            )
    return problems


def pinned_conflicts(stack, persisted):
    """Pinned secrets whose inventory value differs from the persisted one and that may not rotate."""
    specs = stack.get("secrets") or {}
    inventory = stack.get("inventory_secrets") or {}
    rotate = set(stack.get("rotate_secrets") or [])
    return sorted(
        name
        for name, spec in specs.items()
        if spec.get("pinned") and name not in rotate and name in inventory and name in persisted and inventory[name] != persisted[name]
    )


# --- Secrets ----------------------------------------------------------------------------


def generate_secret(spec):
    kind = spec.get("generate", "alnum")
    if kind == "laravel_key":
        return "base64:" + base64.b64encode(_random.token_bytes(32)).decode("ascii")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(_random.choice(alphabet) for _position in range(int(spec.get("length", 40))))


def resolve_secrets(stack, persisted, adopted=None):
    """Every secret's value: explicit value > inventory > adopted (kept by the service) > persisted > generated.

    The per-host key of the config hashes is one more generated, persisted secret.
    """
    persisted = dict(persisted or {})
    inventory = stack.get("inventory_secrets") or {}
    values = {}
    specs = dict(stack.get("secrets") or {})
    specs.setdefault(HASH_KEY_SECRET, {"generate": "alnum", "length": 48})
    for name, spec in specs.items():
        if "value" in spec:
            values[name] = spec["value"] or ""
        elif "bcrypt_of" in spec:
            continue
        elif name in inventory:
            values[name] = inventory[name]
        elif spec.get("credential"):
            values[name] = ""
        elif (adopted or {}).get(name):
            values[name] = adopted[name]
        elif persisted.get(name):
            values[name] = persisted[name]
        else:
            values[name] = generate_secret(spec)
    # Derived from the per-host key, which is resolved above: the same password gives the same hash.
    for name, spec in specs.items():
        if "bcrypt_of" in spec:
            values[name] = bcrypt_hash(spec["bcrypt_of"] or "", values[HASH_KEY_SECRET], name)
    return values


BCRYPT_ALPHABET = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def bcrypt_hash(password, key, name=""):
    """A bcrypt hash (cost 10) of ``password``, '' for none, with a salt derived from the per-host ``key``.

    The same password gives the same hash on every run, so the files that hold it stay unchanged and
    no hash needs persisting (it would then sit in secrets/*.json beside the service's own copy in
    its database); a new password gives a new hash. Needs the controller's Python ``bcrypt`` package.
    """
    if not password:
        return ""
    try:
        import bcrypt
    except ImportError:
        raise ValueError("the Python package bcrypt is missing on the controller; run make setup (or pip install bcrypt).")
    digest = hmac.new(str(key).encode(), ("%s:%s" % (name, password)).encode("utf-8"), hashlib.sha256).digest()
    # 22 characters of bcrypt's base64; the last one carries only 2 bits, so it is one of . O e u.
    salt = "".join(BCRYPT_ALPHABET[byte % 64] for byte in digest[:21]) + BCRYPT_ALPHABET[(digest[21] % 4) * 16]
    return bcrypt.hashpw(str(password).encode("utf-8"), ("$2b$10$" + salt).encode("ascii")).decode("ascii")
