# Copyright (c) 2025, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Health of docker compose projects: output parsers, probes and the wait loop.

Private to homelab.core; used by the ``stack_health`` module.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPException
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import HTTPSHandler, ProxyHandler, Request, build_opener

MAX_INTERVAL = 10.0
"""Longest pause between two attempts, in seconds."""

MIN_ATTEMPT_TIMEOUT = 0.1
"""Shortest timeout of one probe attempt, so that a last attempt made at the deadline can still connect."""

BODY_LIMIT = 1024 * 1024
"""Bytes of a response body searched for ``body_contains``."""

USER_AGENT = "homelab.core.stack_health"

# `docker compose run` names its containers <project>-<service>-run-<12 hex digits>.
_ONE_OFF = re.compile(r"-run-[0-9a-f]{12}$")


def monotonic():
    """Current time in seconds; tests replace it with a fake clock."""
    return time.monotonic()


def wait(event, seconds):
    """Wait until ``event`` is set or ``seconds`` pass; return whether it was set. Tests replace it."""
    return event.wait(seconds)


def backoff(interval):
    """Yield pauses that start at ``interval`` and double up to ``MAX_INTERVAL``."""
    interval = min(interval, MAX_INTERVAL)
    while True:
        yield interval
        interval = min(interval * 2, MAX_INTERVAL)


def parse_ps(text):
    """Return the containers listed by ``docker compose ps --all --format json``.

    Compose 2.21 and later print one JSON object per line, older 2.x releases one JSON array; no containers
    gives an empty output (or ``[]``). One-off containers of ``docker compose run`` are left out, as they are
    not part of the running stack. Raises ``ValueError`` on output that is not JSON.
    """
    text = text.strip()
    if text.startswith("["):
        records = json.loads(text)
    else:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [
        {
            "name": record["Name"],
            "service": record["Service"],
            "state": record["State"],
            "health": record.get("Health") or "",
            "exit_code": record.get("ExitCode"),
        }
        for record in records
        if not _ONE_OFF.search(record["Name"])
    ]


def parse_restart_counts(text):
    """Map container names to restart counts from ``docker inspect --format '{{.Name}} {{.RestartCount}}'``."""
    counts = {}
    for line in text.splitlines():
        name, _sep, count = line.strip().partition(" ")
        if count:
            counts[name.lstrip("/")] = int(count)
    return counts


def merge_logs(stdout, stderr):
    """Interleave the two streams of ``docker logs --timestamps`` by time and drop the timestamps."""
    lines = [line for line in stdout.split("\n") + stderr.split("\n") if line]
    lines.sort(key=lambda line: line.partition(" ")[0])
    return [line.partition(" ")[2] for line in lines]


def parse_hostport(value):
    """Split ``host:port`` (``[v6]:port`` for IPv6) into ``(host, port)``; raise ``ValueError`` when invalid."""
    host, _sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected host:port, got %r" % value)
    return host, int(port)


def _describe(exc):
    """Short lower-case text for a network error, such as ``connection refused`` or ``timed out``."""
    reason = exc.reason if isinstance(exc, URLError) else exc
    text = getattr(reason, "strerror", None) or str(reason)
    return text[:1].lower() + text[1:]


def _is_loopback(url):
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=None)
def _ssl_context(validate_certs):
    """TLS context, made once: loading the CA certificates takes tens of milliseconds and holds the GIL."""
    context = ssl.create_default_context()
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _http_attempt(probe, timeout):
    """One HTTP request, following redirects; return ``(status_code, error)`` where ``error`` is None on success."""
    url = probe["target"]
    handlers = [HTTPSHandler(context=_ssl_context(probe["validate_certs"]))]
    if _is_loopback(url):
        handlers.append(ProxyHandler({}))
    try:
        try:
            response = build_opener(*handlers).open(Request(url, headers={"User-Agent": USER_AGENT}), timeout=timeout)
        except HTTPError as exc:
            response = exc
        try:
            status = response.getcode()
            body = response.read(BODY_LIMIT) if probe["body_contains"] else b""
        finally:
            response.close()
    except (OSError, HTTPException) as exc:  # URLError is an OSError
        return None, _describe(exc)
    if status not in probe["status_code"]:
        return status, "status %d not in %s" % (status, probe["status_code"])
    if probe["body_contains"] and probe["body_contains"] not in body.decode("utf-8", "replace"):
        return status, "body does not contain %r" % probe["body_contains"]
    return status, None


def _tcp_attempt(probe, timeout):
    """One TCP connection; return ``(None, error)`` where ``error`` is None on success."""
    try:
        socket.create_connection((probe["host"], probe["port"]), timeout=timeout).close()
    except OSError as exc:
        return None, _describe(exc)
    return None, None


_ATTEMPTS = {"http": _http_attempt, "tcp": _tcp_attempt}


def _probe_result(probe, error):
    return {"type": probe["type"], "target": probe["target"], "ok": False, "status_code": None,
            "latency_ms": None, "error": error, "attempts": 0}


def run_probe(probe, deadline, interval, timeout, stop, progress):
    """Try ``probe`` with backoff until it succeeds, ``deadline`` (a ``monotonic()`` time) passes or ``stop`` is set.

    At least one attempt is made. Sets ``progress`` when done and returns the last attempt's result.
    """
    result = _probe_result(probe, None)
    pauses = backoff(interval)
    while True:
        started = monotonic()
        status, error = _ATTEMPTS[probe["type"]](probe, max(min(timeout, deadline - started), MIN_ATTEMPT_TIMEOUT))
        result.update(ok=error is None, status_code=status, error=error, attempts=result["attempts"] + 1,
                      latency_ms=int((monotonic() - started) * 1000))
        remaining = deadline - monotonic()
        if result["ok"] or remaining <= 0 or wait(stop, min(next(pauses), remaining)):
            break
    progress.set()
    return result


def assess(container, probe):
    """Return why a service is unhealthy, or None when it is healthy.

    ``container`` is an entry of ``parse_ps()`` (None when the service has no container), ``probe`` the
    result of ``run_probe()`` (None when the service has no probe).
    """
    if container is None:
        return "no container"
    if container["state"] == "exited":
        return "container exited with code %s" % container["exit_code"]
    if container["state"] != "running":
        return "container is %s" % container["state"]
    if container["health"] == "starting":
        return "healthcheck is still starting"
    if container["health"] not in ("", "healthy"):
        return "healthcheck reports %s" % container["health"]
    if probe is not None and not probe["ok"]:
        return "probe %s: %s" % (probe["target"], probe["error"])
    return None


def _entry(project, service, container, check, results):
    check = check or {"required": True, "probe": None}
    probe = None
    if check["probe"]:
        probe = results.get((project, service)) or _probe_result(check["probe"], "no result yet")
    reason = assess(container, probe)
    return {
        "project": project,
        "service": service,
        "container": container and container["name"],
        "state": container and container["state"],
        "health": container and container["health"],
        "restart_count": None,
        "probe": probe,
        "required": check["required"],
        "healthy": reason is None,
        "reason": reason,
    }


def evaluate(states, checks, results):
    """Return one entry per container, per expected service without a container, and per empty project.

    ``states`` maps project names to ``parse_ps()`` lists, ``checks`` maps project names to
    ``{service: {"required": bool, "probe": dict or None}}`` and ``results`` maps ``(project, service)``
    to finished probe results.
    """
    entries = []
    for project, containers in states.items():
        project_checks = checks.get(project, {})
        found = set(container["service"] for container in containers)
        entries.extend(_entry(project, c["service"], c, project_checks.get(c["service"]), results)
                       for c in containers)
        entries.extend(_entry(project, service, None, check, results)
                       for service, check in project_checks.items() if service not in found)
        if not containers and not project_checks:
            entries.append(dict(_entry(project, None, None, None, results), reason="project has no containers"))
    return sorted(entries, key=lambda e: (e["project"], e["service"] or "", e["container"] or ""))


def label(entry):
    """``project/service``, or only the project for an entry about the whole project."""
    return "%s/%s" % (entry["project"], entry["service"]) if entry["service"] else entry["project"]


def watch(read_states, checks, deadline, interval, timeout):
    """Wait until every required service is healthy or ``deadline`` seconds pass.

    Probes run in parallel, one thread each, while ``read_states()`` (returning the ``states`` of
    ``evaluate()``) is polled with backoff, and again as soon as a probe finishes.
    Return ``(entries, elapsed_ms)``.
    """
    started = monotonic()
    until = started + deadline
    stop, progress = threading.Event(), threading.Event()
    probes = [((project, service), check["probe"])
              for project, services in checks.items() for service, check in services.items() if check["probe"]]
    with ThreadPoolExecutor(max_workers=max(len(probes), 1)) as pool:
        futures = dict((key, pool.submit(run_probe, probe, until, interval, timeout, stop, progress))
                       for key, probe in probes)
        try:
            for pause in backoff(interval):
                progress.clear()
                states = read_states()
                done = dict((key, future.result()) for key, future in futures.items() if future.done())
                remaining = until - monotonic()
                if remaining <= 0 or all(e["healthy"] or not e["required"] for e in evaluate(states, checks, done)):
                    break
                wait(progress, min(pause, remaining))
        finally:
            stop.set()
    results = dict((key, future.result()) for key, future in futures.items())
    return evaluate(states, checks, results), int((monotonic() - started) * 1000)
