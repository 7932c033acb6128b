# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The schema of a stack catalogue's service entry, as data: pure functions, no I/O.

``SCHEMA`` describes every key that homelab.core reads from a service entry of a stack
catalogue (``main_stack_catalogue``, ``mcp_stack_catalogue``): its type, whether it is required,
the shape of its items where the engine (``_catalogue``, ``_backup``, ``_update``) relies on it,
and one line on what it does. It checks entries after Ansible has templated them, so values are
plain Python values.

``catalogue_problems(stack)`` checks the ``services`` of a stack definition against it: unknown
keys, wrong types, and combinations of keys that the engine cannot honour. Each problem is one
sentence naming the stack, the catalogue variable, the service, the key and the fix.

``schema_markdown_table()`` is the key table of roles/compose_stack/README.md, which
tests/scripts/role_docs.py writes from it.

The module imports nothing of the collection, so that tests/scripts/role_docs.py can load it
from its file.
"""

from __future__ import annotations

import difflib
import re

from collections.abc import Mapping, Sequence

# The inventory groups a service may be placed in (_fleet.PLACEMENTS).
PLACEMENTS = ("gpu_nodes", "control")
# The secret the engine adds to every stack (_catalogue.HASH_KEY_SECRET): placeholders may name it.
HASH_KEY_SECRET = "config_hash_key"
# <<secret:NAME>> and <<port:SERVICE>> in env values and config file contents (_catalogue.PLACEHOLDER).
PLACEHOLDER = re.compile(r"<<(secret|port):([A-Za-z0-9_.-]+)>>")
# The strings that _catalogue._truthy reads as true, and their opposites: any other string is false there,
# so a typo such as "ture" would switch a service off without a word.
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
# The conditions docker compose accepts in depends_on.
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")

# Type name -> (name in the README table, the phrase in a sentence).
KINDS = {
    "str": ("str", "a string"),
    "int": ("int", "a whole number"),
    "port": ("int", "a whole number from 1 to 65535"),
    "bool": ("bool", "true or false"),
    "truthy": ("bool", "true or false"),
    "float": ("float", "a number"),
    "list": ("list", "a list"),
    "dict": ("dict", "a mapping"),
    "null": ("null", "null"),
    "any": ("any", "any value"),
}


def _field(kind, description, required=False, **more):
    """One key of the schema.

    ``kind``: a name of KINDS, or a tuple of them. ``required``: True, or False. More:
    ``keys`` (a dict of fields: the only keys a mapping may have), ``values`` (the field of every value of a
    mapping with free keys), ``elements`` (the field of every item of a list), ``choices``, ``pattern``
    (regex, what it means, the fix), ``expected`` and ``fix`` (what a sentence about a wrong type says the value
    must be, and what to do), ``null`` (null counts as leaving the key out), ``required_unless`` (another key that
    makes this one unnecessary).
    """
    spec = {"type": kind if isinstance(kind, tuple) else (kind,), "required": required, "description": description}
    spec.update(more)
    return spec


# The engine hands str(mode) to homelab.core.file_tree, which reads it as octal (its _MODE_RE): a YAML number would be
# read as the octal digits of its decimal value.
MODE = _field(
    "str", "file mode in octal", pattern=(r"^(0o)?[0-7]{1,4}$", "is not an octal file mode", "give one such as \"0755\""),
    fix="quote it, as in \"0755\" (YAML reads an unquoted 0755 as the number 493)",
)
OWNER = _field(("int", "str"), "user id or name")
GROUP = _field(("int", "str"), "group id or name")

IMAGE_FIELDS = {
    "registry": _field("str", "registry host (default docker.io)"),
    "repository": _field("str", "repository in the registry", required=True),
    "tag": _field("str", "pinned tag", required=True, fix="quote it, as in \"1.10\" (YAML reads 1.10 as the number 1.1)"),
    "digest": _field("str", "sha256:<64 hex digits>, or empty"),
}

SCHEMA = {
    "image": _field(
        "dict", "the image to pull; `homelab_image_registry` replaces the registry",
        required_unless="build", keys=IMAGE_FIELDS, null=True,
    ),
    "gpu_image_tag_suffix": _field(
        "str", "appended to the tag when the service gets the GPU (Open-WebUI: `-cuda`)", null=True,
    ),
    "port": _field(
        "port", "published host port (on the stack's bind address); absent: nothing published", null=True,
    ),
    "container_port": _field(
        "port", "the port inside the container (default: `port`)",
    ),
    "gpu": _field("truthy", "reserve the GPU (nvidia or CDI, from the GPU decision)", null=True),
    "per_gpu": _field(
        "truthy", "with the stack's `per_gpu` active (two GPUs or more): one service per GPU, `<name>-gpu<index>`, each "
        "reserving its GPU alone, on `port` + the index, its data under `<path>/gpu<index>`", null=True,
    ),
    "user": _field(("int", "str"), "compose `user:`", null=True),
    "data": _field(
        "list", "directories under the data root, created in order; `target` mounts one", null=True,
        elements=_field("dict", "a data directory", keys={
            "path": _field("str", "the directory, relative to the data root", required=True),
            "target": _field("str", "where the container mounts it (none: not mounted)"),
            "owner": OWNER,
            "group": GROUP,
            "mode": MODE,
        }),
    ),
    "env": _field(
        "dict", "`{NAME: value}`, written to `env/<service>.env`; a null value leaves NAME out", null=True,
        values=_field(("str", "int", "float", "bool", "null"), "an environment variable's value",
                      expected="a string, a number, true, false or null",
                      fix="give a string (a list or mapping is not an environment value)"),
    ),
    "secret_files": _field(
        "list", "secrets mounted read-only from `secrets/<service>/<secret>` (or `path`)", null=True,
        elements=_field("dict", "a secret file", keys={
            "secret": _field("str", "the secret's name in the stack's secret catalogue", required=True),
            "target": _field("str", "where the container mounts it", required=True),
            "owner": OWNER,
            "path": _field("str", "the file, relative to the stack root (default secrets/<service>/<secret>)"),
        }),
    ),
    "config_files": _field(
        "list", "files under the stack root (or the data root with `base: data`), mounted read-only", null=True,
        elements=_field("dict", "a config file", keys={
            "path": _field("str", "the file, relative to the stack root (or the data root)", required=True),
            "target": _field("str", "where the container mounts it", required=True),
            "content": _field("str", "the file's text, placeholders filled in", required=True),
            "owner": OWNER,
            "group": GROUP,
            "mode": MODE,
            "dir_group": _field(("int", "str"), "group of the directory the engine creates for it"),
            "base": _field("str", "`data`: the path is under the data root", choices=("data",)),
            "with_service": _field("str", "the file exists only while that service is deployed"),
        }),
    ),
    "probe": _field(
        "dict", "`{path}`: HTTP GET on the published port; `{}`: container health only", null=True, keys={
            "path": _field("str", "the path of the HTTP GET",
                           pattern=(r"^/", "does not begin with /", "write it from the root, as in /health")),
        },
    ),
    "setup_page": _field(
        "dict", "`{path, rule}`: the page where anyone could create the first admin account, asked anonymously after "
                "each deploy while the inventory gives the service's account; the health check fails while it is open",
        null=True, keys={
            "path": _field("str", "the page's path", required=True,
                           pattern=(r"^/", "does not begin with /", "write it from the root, as in /register")),
            "rule": _field("str", "how the upstream answer tells an owned service from an unclaimed one", required=True,
                           choices=("n8n", "open-webui", "coolify")),
        },
    ),
    "depends_on": _field(
        "dict", "`{service: condition}`; dependencies on services that are switched off are dropped", null=True,
        values=_field("str", "a compose condition", choices=CONDITIONS),
    ),
    "compose": _field(
        "dict", "compose keys passed through verbatim (`healthcheck`, `command`, `environment`, ...)", null=True,
        values=_field("any", "a compose value"),
    ),
    "enabled": _field(
        "truthy", "`false` leaves the service out; its env, secret and config files go, its data stays",
    ),
    "description": _field("str", "one line, for docs and messages", null=True),
    "min_version": _field(
        "dict", "the oldest tag with a feature the role relies on; an older pin is refused", null=True, keys={
            "version": _field("str", "the oldest version with the feature", required=True,
                              pattern=(r"^v?[0-9]+(\.[0-9]+)*($|[-+])", "is not a version",
                                       "give one such as \"2.17.0\""),
                              fix="quote it, as in \"0.10\" (YAML reads 0.10 as the number 0.1)"),
            "feature": _field("str", "the feature, named in the refusal", required=True),
        },
    ),
    "networks": _field(
        "list", "the compose networks of the service (default: every network of the stack)", null=True,
        elements=_field("str", "a network of the stack"),
    ),
    "extra_ports": _field(
        "list", "ports published besides `port`", null=True,
        elements=_field("dict", "a published port", keys={
            "host": _field("port", "the host port", required=True),
            "container": _field("port", "the port inside the container", required=True),
        }),
    ),
    "credentials": _field(
        "list", "secret names: the service is deployed only when the inventory gives every one", null=True,
        elements=_field("str", "a secret of the stack's secret catalogue"),
    ),
    "build": _field(
        "dict", "built on the host from `dockerfile` on the image `base` with `files` `[{path, content, mode}]` and "
        "`args`; never pulled", null=True, keys={
            "base": _field("dict", "the base image, through `homelab_image_registry`", required=True,
                           keys=IMAGE_FIELDS),
            "dockerfile": _field("str", "the Dockerfile's text", required=True),
            "files": _field("list", "more files of the build context", null=True,
                            elements=_field("dict", "a file of the build context", keys={
                                "path": _field("str", "the file, relative to the build context", required=True),
                                "content": _field("str", "the file's text", required=True),
                                "mode": MODE,
                            })),
            "args": _field("dict", "build arguments", null=True,
                           values=_field(("str", "int", "float"), "a build argument's value",
                                         expected="a string or a number")),
        },
    ),
    "publish_via": _field("str", "a gateway service that publishes this service's `port`", null=True),
    "backup": _field(
        "dict", "homelab.core.backup: `postgres: {user, password_secret}` (pg_dump), `redis: {config}` (the RDB), "
        "`models: [paths]` (re-pulled: left out unless asked for), `sqlite: [paths]` (snapshots)", null=True, keys={
            "postgres": _field("dict", "pg_dump through the running container", keys={
                "user": _field("str", "the database user", required=True),
                "password_secret": _field("str", "the secret of the service's secret_files with the password"),
            }),
            "redis": _field("dict", "BGSAVE, then the RDB is copied", keys={
                "config": _field("str", "the config file inside the container"),
            }),
            "models": _field("list", "data paths that are re-pulled, left out unless asked for", null=True,
                             elements=_field("str", "a path under the data root")),
            "sqlite": _field("list", "SQLite databases under the data root, saved as snapshots", null=True,
                             elements=_field("str", "a path under the data root")),
        },
    ),
    "placement": _field(
        "str", "the inventory group whose hosts run it: `gpu_nodes` or `control` (default)", choices=PLACEMENTS,
    ),
    "fleet_port": _field(
        "bool", "also publish `port` on the host's `homelab_private_address`, for the fleet's control hosts",
        null=True,
    ),
    "unauthenticated": _field(
        "str", "why whoever reaches the port may use the service; named when it is exposed", null=True,
    ),
}


# --- Types ------------------------------------------------------------------------------


def _is_mapping(value):
    return isinstance(value, Mapping)


def _is_list(value):
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is(value, kind):
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return _is_int(value)
    if kind == "port":
        # _catalogue._is_port, and compose_document formats ports with %d: a digit string is refused there too.
        return _is_int(value) and 1 <= value <= 65535
    if kind == "bool":
        # fleet_port is read by its truth value alone, so the string "false" would mean true.
        return isinstance(value, bool)
    if kind == "truthy":
        # _catalogue._truthy reads a bool, or a string as true only when it is one of TRUE_WORDS.
        return isinstance(value, bool) or (isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS)
    if kind == "float":
        return isinstance(value, float)
    if kind == "list":
        return _is_list(value)
    if kind == "dict":
        return _is_mapping(value)
    if kind == "null":
        return value is None
    return True


# What a value is, in a sentence.
VALUE_KINDS = (("null", "null"), ("bool", "a boolean"), ("int", "a whole number"), ("float", "a number"),
               ("str", "a string"), ("dict", "a mapping"), ("list", "a list"))


def _kind_of(value):
    for kind, phrase in VALUE_KINDS:
        if _is(value, kind):
            return phrase
    return type(value).__name__


def _shown(value):
    text = repr(value)
    if value is None or isinstance(value, bool):
        text = {None: "null", True: "true", False: "false"}[value]
    elif isinstance(value, str):
        text = "'%s'" % value.replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def _expected(spec):
    if spec.get("expected"):
        return spec["expected"]
    phrases = [KINDS[kind][1] for kind in spec["type"]]
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " or " + phrases[-1]


def _names(names):
    return ", ".join(sorted(str(name) for name in names))


def _suggest(word, choices):
    close = difflib.get_close_matches(str(word), sorted(str(choice) for choice in choices), n=1)
    return close[0] if close else None


def _fix(word, choices, fix, rename=False):
    """``fix``, after "did you mean ...?" (and "Rename it, or") where one of ``choices`` is close to ``word``."""
    close = _suggest(word, choices)
    if not close:
        return fix
    return "did you mean %s? %s" % (close, ("Rename it, or " + fix) if rename else fix[0].upper() + fix[1:])


# --- Checks -----------------------------------------------------------------------------


def _check_value(value, spec, where, say):
    """Problems with one value (``where`` is its key path inside the entry) against its field."""
    if not any(_is(value, kind) for kind in spec["type"]):
        fix = spec.get("fix") or "give %s instead" % _expected(spec)
        shown = _shown(value) if value is None else "%s (%s)" % (_shown(value), _kind_of(value))
        return [say(where, "is %s, but it must be %s; %s." % (shown, _expected(spec), fix))]
    if spec.get("choices") and value not in spec["choices"]:
        return [say(where, "is %s, which is not one of %s; %s" % (
            _shown(value), ", ".join(spec["choices"]), _fix(value, spec["choices"], "use one of those.")))]
    if spec.get("pattern") and isinstance(value, str):
        regex, meaning, fix = spec["pattern"]
        if not re.match(regex, value):
            return [say(where, "is %s, which %s; %s." % (_shown(value), meaning, fix))]
    problems = []
    if _is_mapping(value) and "keys" in spec:
        problems += _check_mapping(value, spec["keys"], where, say)
    elif _is_mapping(value) and "values" in spec:
        for key in sorted(value, key=str):
            if not isinstance(key, str):
                problems.append(say(where, "has the key %s (%s); keys are strings, quote it." % (_shown(key), _kind_of(key))))
                continue
            problems += _check_value(value[key], spec["values"], "%s.%s" % (where, key), say)
    if _is_list(value) and "elements" in spec:
        for index, item in enumerate(value):
            problems += _check_value(item, spec["elements"], "%s[%d]" % (where, index), say)
    return problems


def _absent(mapping, key, spec):
    return key not in mapping or (mapping[key] is None and spec.get("null"))


def _check_mapping(mapping, fields, where, say):
    """Unknown, missing and mistyped keys of a mapping whose keys the schema lists (``where`` '' for the entry)."""
    problems = []
    for key in sorted(mapping, key=str):
        if key in fields:
            continue
        close = _suggest(key, fields)
        if close:
            fix = "did you mean %s? Rename it." % close
        elif where:
            fix = "remove it (%s may have only %s)." % (where, ", ".join(fields))
        else:
            fix = "remove it (the keys are listed in the compose_stack role's README)."
        problems.append(say(where, "has the key %s, which no part of homelab.core reads; %s" % (key, fix)))
    for key, spec in fields.items():
        path = "%s.%s" % (where, key) if where else key
        if _absent(mapping, key, spec):
            if spec["required"]:
                problems.append(say(where, "has no %s, which it needs (%s); add it." % (key, spec["description"])))
            continue
        problems += _check_value(mapping[key], spec, path, say)
    return problems


def _placeholders(entry):
    """(key path, kind, name) of every <<secret:NAME>> and <<port:SERVICE>> in env values and config contents."""
    found = []
    env = entry.get("env")
    for key, value in sorted((env if _is_mapping(env) else {}).items(), key=lambda item: str(item[0])):
        if isinstance(value, str):
            found += [("env.%s" % key, kind, name) for kind, name in PLACEHOLDER.findall(value)]
    files = entry.get("config_files")
    for index, item in enumerate(files if _is_list(files) else []):
        if _is_mapping(item) and isinstance(item.get("content"), str):
            found += [("config_files[%d].content" % index, kind, name) for kind, name in PLACEHOLDER.findall(item["content"])]
    return found


def _combination_problems(name, entry, stack, say):
    """Keys that are each well formed but that the engine cannot honour together, or that name something
    that does not exist. Each rule's comment quotes the engine's code that makes it impossible, with the
    function it is in (service_image_ref, version_problem, compose_document, stack_probes, expand,
    config_hash, config_file_wanted, credentials_given and _backup.backup_plan)."""
    problems = []
    services = stack.get("services") if _is_mapping(stack.get("services")) else {}
    others = [other for other in services if other != name]
    has = dict((key, not _absent(entry, key, spec)) for key, spec in SCHEMA.items())
    # The checks below read only values of the right type; _check_mapping has named the others.
    ok = dict((key, has[key] and not _check_value(entry[key], SCHEMA[key], key, say)) for key in SCHEMA)
    declared = None
    if _is_mapping(stack.get("secrets")):
        declared = set(stack["secrets"]) | {HASH_KEY_SECRET}

    # The image is what the service runs unless it is built:
    #   service_image_ref: `if entry.get("build"): return built_image_ref(...)` ... `image_ref(entry["image"], ...)`
    if not has["image"] and not has["build"]:
        problems.append(say("", "has neither image nor build, so it has nothing to run; give it an image "
                                "{registry, repository, tag, digest} or a build."))
    # A built service runs the image built on the host, tagged with a hash of the build's inputs, so what
    # concerns a pulled image is never used (service_image_ref: `if entry.get("build"): return built_image_ref(...)`);
    # the tag suffix is appended only for a service with gpu (`suffix = ... if entry.get("gpu") and
    # uses_gpu(gpu_reservation) else ""`); version_problem compares `(entry.get("image") or {}).get("tag", "")`,
    # which would refuse every run of a built image.
    unused = [
        ("image", has["build"], "is never pulled: the service has a build, and a built service runs the image built on "
                                "the host; remove image (the build's base image is build.base)."),
        ("gpu_image_tag_suffix", has["build"], "is never used: a built image is tagged with a hash of its inputs, not "
                                               "the pulled tag; remove gpu_image_tag_suffix."),
        ("gpu_image_tag_suffix", not has["build"] and not has["gpu"],
         "is never used: the suffix is appended only for a service with gpu; add gpu: true, or remove "
         "gpu_image_tag_suffix."),
        ("min_version", has["build"], "cannot be checked: a built image is tagged with a hash of its inputs, not a "
                                      "version; remove min_version and pin the version in build.args."),
    ]
    problems.extend(say(key, text) for key, applies, text in unused if has[key] and applies)
    # The container port is mapped only behind a published port of the service itself:
    #   `if entry.get("port") is not None and not entry.get("publish_via"):` ... `entry.get("container_port", entry["port"])`
    #   (and the fleet port: `if entry.get("fleet_port") and entry.get("port") is not None ...`)
    if has["container_port"] and not has["port"]:
        problems.append(say("container_port", "is set, but the service has no port, and the engine maps the port "
                                              "inside only behind a published one; add port, or remove container_port."))
    elif has["container_port"] and has["publish_via"] and not has["fleet_port"]:
        problems.append(say("container_port", "is never used: with publish_via, the gateway publishes port on the "
                                              "same port inside the gateway; remove container_port (the gateway "
                                              "routes to the service's own port), or remove publish_via."))
    # A gateway publishes the services behind it that have a port, and only enabled services publish:
    #   `for other in enabled if services[other].get("publish_via") == name and services[other].get("port") is not None`
    if has["publish_via"] and not has["port"]:
        problems.append(say("publish_via", "names %s, but the service has no port for it to publish; add port, "
                                           "or remove publish_via." % entry["publish_via"]))
    if ok["publish_via"] and entry["publish_via"] not in others:
        problems.append(say("publish_via", "names %s, which is no other service of this catalogue, so nothing "
                                           "publishes the port; %s" % (entry["publish_via"], _fix(
                                               entry["publish_via"], others, "name the gateway service (one of %s), or "
                                               "remove publish_via." % _names(others)))))
    # The probe's URL is built on the published port: `if entry.get("probe") and entry.get("port") is not None:`
    if ok["probe"] and entry["probe"].get("path") is not None and not has["port"]:
        problems.append(say("probe", "has a path, but the service publishes no port to probe it on; add port, or "
                                     "make the probe {} (container health only)."))
    # The page is asked on the published port, like the probe (_compose_document.stack_probes).
    if ok["setup_page"] and entry["setup_page"] and not has["port"]:
        problems.append(say("setup_page", "is set, but the service publishes no port to ask it on; add port, or "
                                          "remove setup_page."))
    # `if entry.get("fleet_port") and entry.get("port") is not None and stack.get("private_address"):`
    if ok["fleet_port"] and entry["fleet_port"] and not has["port"]:
        problems.append(say("fleet_port", "is true, but the service has no port to publish on the private address; "
                                          "add port, or remove fleet_port."))
    # Only a service that gets the GPU is split: split_per_gpu `if not _truthy(entry.get("per_gpu", False)) or not
    # entry.get("gpu"): result[name] = entry`.
    if ok["per_gpu"] and _truthy(entry["per_gpu"]) and not (ok["gpu"] and _truthy(entry["gpu"])):
        problems.append(say("per_gpu", "is true, but the service does not get the GPU, so it is never split per GPU; "
                                       "add gpu: true, or remove per_gpu."))
    # compose keys are copied first, then the engine sets its own over them:
    #   `service["logging"] = copy.deepcopy(LOGGING)` and, on a host with a GPU, `service["deploy"] = gpu_deploy(...)`
    if ok["compose"] and "logging" in entry["compose"]:
        problems.append(say("compose.logging", "is replaced by the engine's own logging (json-file, 10m, 3 files) "
                                               "on every service; remove compose.logging."))
    if ok["compose"] and "deploy" in entry["compose"] and ok["gpu"] and _truthy(entry["gpu"]):
        problems.append(say("compose.deploy", "is replaced by the GPU reservation on every host with a GPU, since the "
                                              "service has gpu; remove compose.deploy, or gpu."))
    # The redis backup copies the RDB from the first data directory: `data = (entry.get("data") or [{}])[0]`
    # (_backup.backup_plan), so without data it has nothing to copy.
    if ok["backup"] and entry["backup"].get("redis") is not None and not (ok["data"] and entry["data"]):
        problems.append(say("backup.redis", "needs the service's data: the backup copies the RDB from its first data "
                                            "directory; add data, or remove backup.redis."))
    # The dump reads its password from a secret file of the service: `_secret_file(name, entry, spec.get("password_secret"))`
    # returns None for any other name.
    if ok["backup"] and _is_mapping(entry["backup"].get("postgres")):
        secret = entry["backup"]["postgres"].get("password_secret")
        mounted = [item.get("secret") for item in (entry.get("secret_files") if ok["secret_files"] else None) or []]
        if isinstance(secret, str) and secret not in mounted:
            problems.append(say("backup.postgres.password_secret",
                                "names %s, which is not one of the service's secret_files, so the dump has no password "
                                "file; add a secret_files entry for %s, or name one of %s." % (secret, secret, _names(mounted) or "them")))
    # Dependencies on services that are not enabled are dropped: `if other in enabled`; a name that is no service
    # is never enabled, so the dependency would vanish.
    if ok["depends_on"]:
        for other in sorted(entry["depends_on"], key=str):
            if other not in others:
                problems.append(say("depends_on", "names %s, which is no other service of this catalogue, so the "
                                                  "dependency is dropped; %s" % (other, _fix(other, others, "remove it.", rename=True))))
    # A config file with with_service exists only while that service is enabled:
    #   config_file_wanted: `bool((services.get(other) or {}).get("enabled"))`
    if ok["config_files"]:
        for index, item in enumerate(entry["config_files"]):
            other = item.get("with_service")
            if isinstance(other, str) and other not in services:
                problems.append(say("config_files[%d].with_service" % index,
                                    "names %s, which is no service of this catalogue, so the file is never written; "
                                    "%s" % (other, _fix(other, services, "remove with_service.", rename=True))))
    # Placeholders are filled in last, and an unknown name stops the plan:
    #   expand: `return str(values[name])` (a declared secret) and `return str(services[name]["port"])`
    for where, kind, target in _placeholders(entry):
        if kind == "secret" and declared is not None and target not in declared:
            fix = _fix(target, declared, "declare it in the stack's secret catalogue.", rename=True)
            problems.append(say(where, "has <<secret:%s>>, but the stack declares no secret %s, so planning the stack "
                                       "fails; %s" % (target, target, fix)))
        if kind == "port" and not (target in services and _is_mapping(services[target])
                                   and services[target].get("port") is not None):
            problems.append(say(where, "has <<port:%s>>, but %s is no service of this catalogue with a port, so planning "
                                       "the stack fails; name a service that has a port." % (target, target)))
    # A secret file holds a declared secret: config_hash reads `values[item["secret"]]` for every one.
    if ok["secret_files"] and declared is not None:
        for index, item in enumerate(entry["secret_files"]):
            if item["secret"] not in declared:
                problems.append(say("secret_files[%d].secret" % index,
                                    "names %s, which the stack's secret catalogue does not declare, so planning the "
                                    "stack fails; %s" % (item["secret"], _fix(item["secret"], declared, "declare it there.", rename=True))))
    # A credential is given in the inventory, which may set only declared secrets (_secret_problems refuses the
    # others), and credentials_given then leaves the service out for ever.
    if ok["credentials"] and declared is not None:
        for secret in entry["credentials"]:
            if secret not in declared:
                problems.append(say("credentials", "names %s, which the stack's secret catalogue does not declare, so "
                                                   "the inventory cannot give it and the service is never deployed; "
                                                   "declare it there (credential: true), or remove it." % secret))
    # compose refuses a service on a network that the project does not define.
    if ok["networks"] and _is_mapping(stack.get("networks")):
        for network in entry["networks"]:
            if network not in stack["networks"]:
                problems.append(say("networks", "names %s, which the stack does not define, so docker compose refuses "
                                                "the project; %s" % (network, _fix(
                                                    network, stack["networks"], "use one of %s, or define %s in the "
                                                    "stack's networks." % (_names(stack["networks"]), network)))))
    return problems


def _truthy(value):
    if isinstance(value, str):
        return value.strip().lower() in TRUE_WORDS
    return bool(value)


def catalogue_problems(stack):
    """Every problem of the stack's catalogue (``stack['services']``), one sentence each, naming the stack,
    the catalogue variable, the service, the key and the fix."""
    name = "%s stack" % stack["name"] if stack.get("name") else "the stack"
    variable = (stack.get("variables") or {}).get("catalogue") or "catalogue"
    services = stack.get("services")
    if services is None:
        return []
    if not _is_mapping(services):
        return ["%s: %s must be a mapping of service name to entry, not %s; write one entry per service."
                % (name, variable, _kind_of(services))]
    problems = []
    for service in sorted(services, key=str):
        entry = services[service]

        def say(where, text, service=service):
            return "%s: %s.%s%s %s" % (name, variable, service, ("." + where) if where else "", text)

        if not _is_mapping(entry):
            problems.append(say("", "is %s (%s), but it must be a mapping of keys such as image and port; give the "
                                    "service its entry." % (_shown(entry), _kind_of(entry))))
            continue
        problems += _check_mapping(entry, SCHEMA, "", say)
        problems += _combination_problems(service, entry, stack, say)
    return problems


# --- The README table -------------------------------------------------------------------


def _type_text(spec):
    names = list(dict.fromkeys(KINDS[kind][0] for kind in spec["type"]))
    text = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    if "keys" in spec:
        text += " {%s}" % ", ".join(spec["keys"])
    elif "choices" in spec:
        text += " (%s)" % ", ".join(spec["choices"])
    elif "elements" in spec:
        text += " of " + _type_text(spec["elements"])
    elif "values" in spec and spec["values"]["type"] != ("any",):
        text += " of " + _type_text(spec["values"])
    return text


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def schema_markdown_table():
    """The markdown table of SCHEMA: key | type | required | what it does."""
    lines = ["| key | type | required | what it does |", "| --- | --- | --- | --- |"]
    for key, spec in SCHEMA.items():
        if spec["required"]:
            required = "yes"
        elif spec.get("required_unless"):
            required = "unless `%s`" % spec["required_unless"]
        else:
            required = "no"
        lines.append("| `%s` | %s | %s | %s |" % (key, _cell(_type_text(spec)), required, _cell(spec["description"])))
    return "\n".join(lines) + "\n"
