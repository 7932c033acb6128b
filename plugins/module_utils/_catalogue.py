# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Service catalogues and compose stacks as data: pure functions, no I/O.

A *stack definition* is a dict that a stack role (main_stack, later mcp_stack)
builds from its catalogue and the inventory; the compose_stack engine role
turns it into files and a compose project through the filters in
``plugins/filter/catalogue.py``, which call these functions.

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
``services``        the catalogue: service name -> entry (SERVICE_KEYS; any other key is a problem)
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
import difflib
import json
import re
import secrets as _random

SERVICE_KEYS = frozenset(
    [
        "enabled",  # bool: false leaves the service out (its data stays); depends_on on it is dropped
        "image",  # {registry, repository, tag, digest}
        "gpu_image_tag_suffix",  # appended to the tag when the service gets the GPU (Open-WebUI: -cuda)
        "port",  # published host port, or absent
        "container_port",  # the port inside the container
        "gpu",  # bool: reserve the GPU when the host has one
        "user",  # compose `user:`
        "data",  # [{path, target?, owner, group, mode}] under data_root
        "env",  # {NAME: value} written to env/<service>.env; a null value leaves NAME out
        "secret_files",  # [{secret, target, owner, path?}] mounted read-only
        "config_files",  # [{path, target, owner, group, mode, content, dir_group?, base?, with_service?}], read-only
        "probe",  # {path} HTTP GET on the published port; {} for container health only
        "depends_on",  # {service: condition}
        "compose",  # compose keys passed through verbatim (healthcheck, command, environment, ...)
        "description",  # one line for docs and messages
        "min_version",  # {version, feature}: the oldest tag that has a feature the role relies on
        "networks",  # compose networks of the service (default: every network of the stack)
        "extra_ports",  # [{host, container}] published besides `port`
        "credentials",  # [secret names]: the service is deployed only when the inventory gives every one
        "build",  # {base: image, dockerfile, files: [{path, content, mode}], args}: built on the host (see builds)
        "publish_via",  # service name: `port` is published on that service (a gateway), host and container alike
        "backup",  # {postgres: {user, password_secret}} | {redis: {config}} | {models: [paths]} | {sqlite: [paths]} (see _backup)
        "placement",  # gpu_nodes | control (default): the inventory group whose hosts run the service (see _fleet)
        "fleet_port",  # bool: `port` is also published on the stack's private_address, for the fleet's control hosts
        "unauthenticated",  # str: why whoever reaches the published port may use the service (named when exposed)
    ]
)
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
LABEL_CONFIG_HASH = "org.homelab.config-hash"
ENV_HEADER = "# Managed by homelab.core (stack %s). Edits are overwritten.\n"


def canonical_name(name, services):
    """The catalogue's service name for an override key: `open_webui` is accepted for `open-webui`."""
    if name in services:
        return name
    dashed = str(name).replace("_", "-")
    return dashed if dashed in services else None


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
    for key, port in (overrides.get("ports") or {}).items():
        name = canonical_name(key, services)
        if name is not None:
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
    return services


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
        "files": sorted((item["path"], item["content"], _mode(item.get("mode"), "0644")) for item in build.get("files") or []),
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


def file_contents(read):
    """Absolute path -> base64 content, from ansible.builtin.slurp results (files that were missing
    have no content) or from such a mapping already."""
    if isinstance(read, dict):
        return dict(read)
    return dict((result["source"], result["content"]) for result in read or [] if result.get("content"))


def adopted_values(stack, contents):
    """Secret name -> the value a service keeps itself, from ``contents`` (see file_contents)."""
    contents = file_contents(contents)
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


def _catalogue_key_problems(stack):
    """A key of a catalogue entry that no code reads (a typo such as probe_path) would vanish: name it instead."""
    variable = (stack.get("variables") or {}).get("catalogue", "catalogue")
    found = []
    for name, entry in sorted((stack.get("services") or {}).items()):
        for key in sorted(set(entry) - SERVICE_KEYS):
            close = difflib.get_close_matches(key, sorted(SERVICE_KEYS), n=1)
            found.append(
                "%s.%s has the key %s, which no part of homelab.core reads; %s"
                % (variable, name, key, ("did you mean %s? Rename it." % close[0]) if close
                   else "remove it (the keys are listed in the compose_stack role's README).")
            )
    return found


def stack_problems(stacks, persisted=None, adopted=None, nonempty_dirs=None):
    """Every problem with the stacks' inventory, one sentence each naming the variable and the fix.

    ``persisted`` maps a stack name to the secrets already persisted on the host (read-only);
    ``adopted`` is what reading the stacks' adopt_secrets files gave (see file_contents);
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
        problems.extend(_catalogue_key_problems(stack))
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


def stack_warnings(stacks):
    """What the run should warn about, one sentence each: services left unclaimed without a tunnel, and the ports
    that answer anyone when the stacks are exposed beyond this host."""
    warnings = []
    for stack in stacks:
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
    address = stack.get("bind_address") or "127.0.0.1"
    host = "127.0.0.1" if address in ("0.0.0.0", "::") else address
    return "[%s]" % host if ":" in host else host


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
        name = canonical_name(key, services)
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
        if name is None:
            problems.append("%s has an unknown service %r; the services are %s." % (ports_variable, key, known))
        elif "port" not in services[name]:
            problems.append("%s.%s: that service publishes no port; remove the key." % (ports_variable, key))
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


def persisted_secrets(stack, values):
    """What the host keeps in the secrets file: the generated or inventory-given ones, not explicit values,
    credentials or derived hashes."""
    specs = dict(stack.get("secrets") or {})
    specs.setdefault(HASH_KEY_SECRET, {})
    derived = ("value", "bcrypt_of")
    return {
        name: values[name]
        for name in sorted(specs)
        if not any(key in specs[name] for key in derived) and specs[name].get("persist", True) and not specs[name].get("credential")
    }


def expand(text, values, services):
    """Fill in <<secret:NAME>> and <<port:SERVICE>> placeholders."""

    def _fill(match):
        kind, name = match.groups()
        if kind == "secret":
            return str(values[name])
        return str(services[name]["port"])

    return PLACEHOLDER.sub(_fill, str(text))


def references_secret(text):
    return any(kind == "secret" for kind, _name in PLACEHOLDER.findall(str(text)))


# --- Files ------------------------------------------------------------------------------


def _env_text(stack, name, entry, values, services):
    lines = [ENV_HEADER % stack["name"]]
    for key, value in (entry.get("env") or {}).items():
        if value is None:
            # A null value leaves the variable out (OLLAMA_BASE_URLS on a single box).
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        lines.append("%s=%s\n" % (key, expand(value, values, services)))
    return "".join(lines)


def secret_file_path(name, secret_file):
    return secret_file.get("path") or "secrets/%s/%s" % (name, secret_file["secret"])


def config_hash(stack, name, entry, values, services):
    """HMAC-SHA256 (per-host key) over everything a service reads besides its image.

    Keyed, so the label in `docker inspect` reveals nothing about secret values.
    """
    material = {
        "env": _env_text(stack, name, entry, values, services) if entry.get("env") else "",
        "secret_files": [values[item["secret"]] for item in entry.get("secret_files") or []],
        "config_files": [
            expand(item["content"], values, services) for item in entry.get("config_files") or [] if config_file_wanted(item, services)
        ],
    }
    digest = hmac.new(values[HASH_KEY_SECRET].encode(), json.dumps(material, sort_keys=True).encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


def config_file_wanted(item, services):
    """A config file with `with_service` exists only while that service is deployed (a gateway's route to it)."""
    other = item.get("with_service")
    return not other or bool((services.get(other) or {}).get("enabled"))


def config_file_path(stack, item):
    """Config files live under the stack root, or under the data root with `base: data`."""
    base = stack["data_root"] if item.get("base") == "data" else stack["root"]
    return "%s/%s" % (base, item["path"])


def _mode(mode, default):
    return str(mode if mode is not None else default)


def stack_files(stack, services, values):
    """The file_tree entries of a stack: directories, data tree, env, secret and config files.

    Paths of services that are switched off are removed (files only: data directories stay).
    Every entry carries `tag`: the service it belongs to ('' for the stack's own).
    """
    root, data_root = stack["root"], stack["data_root"]
    entries = [
        {"path": root, "state": "directory", "owner": "0", "group": "0", "mode": "0755", "tag": ""},
        {"path": root + "/env", "state": "directory", "owner": "0", "group": "0", "mode": "0700", "tag": ""},
        {"path": root + "/config", "state": "directory", "owner": "0", "group": "0", "mode": "0755", "tag": ""},
        {"path": root + "/secrets", "state": "directory", "owner": "0", "group": "0", "mode": "0700", "tag": ""},
        {
            "path": "%s/%s" % (root, stack["secrets_file"]),
            "state": "file",
            "owner": "0",
            "group": "0",
            "mode": "0600",
            "secret_content": json.dumps(persisted_secrets(stack, values), indent=2, sort_keys=True) + "\n",
            "tag": "",
        },
    ]
    entries.append({"path": data_root, "state": "directory", "owner": "0", "group": "0", "mode": "0755", "tag": ""})
    seen_dirs = set(entry["path"] for entry in entries)
    # The data tree: every enabled service's directories, once each (two services may mount one),
    # parents before children.
    data = {}
    for name in enabled_services(services):
        for item in services[name].get("data") or []:
            data.setdefault(item["path"], (name, item))
    for path in sorted(data, key=lambda path: path.split("/")):
        name, item = data[path]
        entries.append(
            {
                "path": "%s/%s" % (data_root, path),
                "state": "directory",
                "owner": str(item.get("owner", 0)),
                "group": str(item.get("group", 0)),
                "mode": _mode(item.get("mode"), "0755"),
                "tag": name,
            }
        )
    # Config files inside a data directory (Coolify's source/.env) need no directory of their own.
    data_paths = set("%s/%s" % (data_root, path) for path in data)
    for name, entry in services.items():
        enabled = entry.get("enabled")
        env_path = "%s/env/%s.env" % (root, name)
        if enabled and entry.get("env"):
            text = _env_text(stack, name, entry, values, services)
            key = "secret_content" if any(references_secret(v) for v in entry["env"].values()) else "content"
            entries.append({"path": env_path, "state": "file", "owner": "0", "group": "0", "mode": "0600", key: text, "tag": name})
        else:
            entries.append({"path": env_path, "state": "absent", "tag": name})
        for item in entry.get("secret_files") or []:
            path = "%s/%s" % (root, secret_file_path(name, item))
            parent = path.rsplit("/", 1)[0]
            if not enabled or not values.get(item["secret"]):
                entries.append({"path": path, "state": "absent", "tag": name})
                continue
            if parent not in seen_dirs:
                seen_dirs.add(parent)
                entries.append({"path": parent, "state": "directory", "owner": "0", "group": "0", "mode": "0700", "tag": name})
            entries.append(
                {
                    "path": path,
                    "state": "file",
                    "owner": str(item.get("owner", 0)),
                    "group": "0",
                    "mode": "0400",
                    # No trailing newline: not every image strips one.
                    "secret_content": str(values[item["secret"]]),
                    "tag": name,
                }
            )
        if entry.get("build"):
            context = build_context(stack, name)
            build_files = [{"path": "Dockerfile", "content": entry["build"]["dockerfile"], "mode": "0644"}]
            build_files += list(entry["build"].get("files") or [])
            if enabled:
                if root + "/build" not in seen_dirs:
                    seen_dirs.add(root + "/build")
                    entries.append({"path": root + "/build", "state": "directory", "owner": "0", "group": "0", "mode": "0755", "tag": ""})
                entries.append({"path": context, "state": "directory", "owner": "0", "group": "0", "mode": "0755", "tag": name})
            for item in build_files:
                path = "%s/%s" % (context, item["path"])
                if enabled:
                    entries.append({"path": path, "state": "file", "owner": "0", "group": "0",
                                    "mode": _mode(item.get("mode"), "0644"), "content": item["content"], "tag": name})
                else:
                    entries.append({"path": path, "state": "absent", "tag": name})
        for item in entry.get("config_files") or []:
            path = config_file_path(stack, item)
            parent = path.rsplit("/", 1)[0]
            if not enabled or not config_file_wanted(item, services):
                entries.append({"path": path, "state": "absent", "tag": name})
                continue
            if parent not in seen_dirs and parent not in data_paths:
                seen_dirs.add(parent)
                entries.append(
                    {
                        "path": parent,
                        "state": "directory",
                        "owner": "0",
                        "group": str(item.get("dir_group", 0)),
                        "mode": "0750",
                        "tag": name,
                    }
                )
            content = expand(item["content"], values, services)
            key = "secret_content" if references_secret(item["content"]) else "content"
            entries.append(
                {
                    "path": path,
                    "state": "file",
                    "owner": str(item.get("owner", 0)),
                    "group": str(item.get("group", 0)),
                    "mode": _mode(item.get("mode"), "0444"),
                    key: content,
                    "tag": name,
                }
            )
    return entries


def data_dirs(stack, services):
    """Absolute data directory -> the enabled services that declare it."""
    found = {}
    for name in enabled_services(services):
        for item in services[name].get("data") or []:
            users = found.setdefault("%s/%s" % (stack["data_root"], item["path"]), [])
            if name not in users:
                users.append(name)
    return found


def data_dir_services(stack, services, created_paths):
    """Services whose data directory was (re)created: their containers still mount the deleted one."""
    owners = data_dirs(stack, services)
    found = []
    for path in created_paths or []:
        for name in owners.get(path, []):
            if name not in found:
                found.append(name)
    return found


# --- Compose ----------------------------------------------------------------------------

LOGGING = {"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}}


def gpu_deploy(gpu_reservation):
    if gpu_reservation == "cdi":
        # compose requires capabilities for every device request, CDI ones too.
        device = {"driver": "cdi", "device_ids": ["nvidia.com/gpu=all"], "capabilities": ["gpu"]}
    else:
        device = {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}
    return {"resources": {"reservations": {"devices": [device]}}}


def compose_document(stack, services, values, gpu_reservation="none"):
    """The compose project as a dict, in a stable order."""
    enabled = enabled_services(services)
    document = {"name": stack["project"], "networks": copy.deepcopy(stack.get("networks") or {}), "services": {}}
    for name in enabled:
        entry = services[name]
        service = {"image": service_image_ref(stack, entry, gpu_reservation, name), "restart": "unless-stopped"}
        if entry.get("build"):
            # Built on the host by the engine before compose runs; no registry has it.
            service["pull_policy"] = "never"
        if entry.get("user") is not None:
            service["user"] = str(entry["user"])
        service["networks"] = list(entry.get("networks") or document["networks"])
        ports = []
        if entry.get("port") is not None and not entry.get("publish_via"):
            ports.append("%s:%d:%d" % (stack["bind_address"], entry["port"], entry.get("container_port", entry["port"])))
        # A gateway publishes the ports of the services behind it, on the same port inside.
        ports += [
            "%s:%d:%d" % (stack["bind_address"], services[other]["port"], services[other]["port"])
            for other in enabled
            if services[other].get("publish_via") == name and services[other].get("port") is not None
        ]
        ports += ["%s:%d:%d" % (stack["bind_address"], item["host"], item["container"]) for item in entry.get("extra_ports") or []]
        if entry.get("fleet_port") and entry.get("port") is not None and stack.get("private_address"):
            private = stack["private_address"]
            ports.append("%s:%d:%d" % ("[%s]" % private if ":" in private else private, entry["port"],
                                       entry.get("container_port", entry["port"])))
        if ports:
            service["ports"] = ports
        if entry.get("env"):
            service["env_file"] = ["env/%s.env" % name]
        volumes = [
            "%s/%s:%s" % (stack["data_root"], item["path"], item["target"]) for item in entry.get("data") or [] if item.get("target")
        ]
        volumes += [
            "%s/%s:%s:ro" % (stack["root"], secret_file_path(name, item), item["target"])
            for item in entry.get("secret_files") or []
            if values.get(item["secret"])
        ]
        volumes += [
            "%s:%s:ro" % (config_file_path(stack, item), item["target"])
            for item in entry.get("config_files") or []
            if config_file_wanted(item, services)
        ]
        if volumes:
            service["volumes"] = volumes
        depends_on = {
            other: {"condition": condition} for other, condition in (entry.get("depends_on") or {}).items() if other in enabled
        }
        if depends_on:
            service["depends_on"] = depends_on
        for key, value in (entry.get("compose") or {}).items():
            service[key] = copy.deepcopy(value)
        service["labels"] = dict(service.get("labels") or {}, **{LABEL_CONFIG_HASH: config_hash(stack, name, entry, values, services)})
        if entry.get("gpu") and uses_gpu(gpu_reservation):
            service["deploy"] = gpu_deploy(gpu_reservation)
        service["logging"] = copy.deepcopy(LOGGING)
        document["services"][name] = service
    return document


def stack_probes(stack, services):
    """stack_health's `services` list: an HTTP probe of the published port where the catalogue has one."""
    host = local_host(stack)
    probes = []
    for name in enabled_services(services):
        entry = services[name]
        probe = {"service": name}
        if entry.get("probe") and entry.get("port") is not None:
            probe["url"] = "http://%s:%d%s" % (host, entry["port"], entry["probe"].get("path", "/"))
        probes.append(probe)
    return probes
