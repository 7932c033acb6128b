#!/usr/bin/python
#
# Copyright (c) 2025, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


DOCUMENTATION = r"""
module: stack_health

short_description: Wait for docker compose projects to be healthy and probe their services

version_added: 1.0.0

author:
  - homelab.core maintainers (@homelab-core)

description:
  - Reads the containers of each docker compose project with
    C(docker compose --project-name NAME ps --all --format json) and, in parallel, probes services over HTTP(S) or TCP,
    until every required service is healthy or O(deadline) passes.
  - A service is healthy when its container is running, the compose healthcheck state is C(healthy) or empty (no
    healthcheck), and its probe, if it has one, succeeds. A service with a probe or listed in O(projects[].services) but
    without a container is unhealthy, and so is a project without any container.
  - Every container of the project is judged, including those of services that have no probe. One-off containers created
    by C(docker compose run) are ignored.
  - Probes retry with exponential backoff, starting at O(interval) and doubling up to 10 seconds, and all share the same
    O(deadline), so the wait lasts as long as the slowest service, not the sum of them.
  - For each unhealthy service the last O(log_lines) lines of its container's log are returned.
  - The module only reads; it never changes anything and never reports C(changed).

requirements:
  - The Docker CLI with the Compose v2 plugin (C(docker compose)) on the managed host.

attributes:
  check_mode:
    support: full
    description: The module only reads, so it runs and reports the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
  idempotent:
    support: full
    description: The module never changes anything.

options:
  projects:
    description:
      - The compose projects to check.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Compose project name, as given to C(docker compose --project-name).
        type: str
        required: true
      project_src:
        description:
          - Directory of the project's compose file.
          - When set, the services that C(docker compose config --services) lists there are expected to have a
            container, so a service that was never created is reported as unhealthy (C(no container)).
          - Not needed to read the project's containers, which are found by project name.
        type: path
      files:
        description:
          - Compose files of the project, relative to O(projects[].project_src), when it is not the default
            C(docker-compose.yml) there (a second stack in the same directory).
        type: list
        elements: str
      services:
        description:
          - Services to probe or to require.
          - A service listed without O(projects[].services[].url) or O(projects[].services[].tcp) is only required to
            have a healthy container.
        type: list
        elements: dict
        suboptions:
          service:
            description:
              - Compose service name.
            type: str
            required: true
          url:
            description:
              - HTTP or HTTPS URL that must answer with one of O(projects[].services[].status_code).
              - Redirects are followed. Proxy environment variables are ignored for loopback addresses.
              - Mutually exclusive with O(projects[].services[].tcp).
            type: str
          tcp:
            description:
              - C(host:port) (C([address]:port) for IPv6) that must accept a TCP connection.
              - Mutually exclusive with O(projects[].services[].url).
            type: str
          status_code:
            description:
              - HTTP status codes that count as success for O(projects[].services[].url).
            type: list
            elements: int
            default: [200]
          body_contains:
            description:
              - Text the body of the HTTP response must contain. Requires O(projects[].services[].url).
            type: str
          setup_page:
            description:
              - A page on which anyone could create the service's first admin account, asked anonymously (redirects
                not followed) once the service is healthy. The service counts as unhealthy while the page is open,
                since its admin account, which the inventory gives, was not created.
            type: dict
            suboptions:
              url:
                description: The page's URL.
                type: str
                required: true
              rule:
                description: How the upstream answer tells an owned service from an unclaimed one.
                type: str
                choices: [n8n, open-webui, coolify]
                required: true
          required:
            description:
              - Whether this service must be healthy.
              - An unhealthy service that is not required is reported in RV(services) but does not make the task fail,
                and the module does not wait for it.
            type: bool
            default: true
  deadline:
    description:
      - Seconds to wait for every required service to become healthy.
      - V(0) checks once without waiting.
    type: int
    default: 180
  interval:
    description:
      - Seconds between the first two attempts of a probe and between the first two reads of the container states.
      - Each following pause is twice as long as the one before, up to 10 seconds.
    type: float
    default: 1.0
  probe_timeout:
    description:
      - Timeout of one HTTP or TCP probe attempt, in seconds.
    type: float
    default: 5.0
  log_lines:
    description:
      - Number of log lines returned for each unhealthy service, stdout and stderr interleaved by time.
      - V(0) returns no logs.
    type: int
    default: 20
  fail_on_unhealthy:
    description:
      - Fail the task when a required service is still unhealthy at the deadline.
      - When V(false), the task succeeds and RV(healthy) tells the result.
    type: bool
    default: true
  validate_certs:
    description:
      - Validate the TLS certificates of HTTPS probes.
    type: bool
    default: true

notes:
  - Works with the JSON output of every Compose v2 release, one object per line (2.21 and later) or one array (older).

seealso:
  - module: community.docker.docker_compose_v2
"""

EXAMPLES = r"""
- name: Wait for the AI stack to be healthy
  homelab.core.stack_health:
    projects:
      - name: homelab
        project_src: /opt/homelab
        services:
          - service: ollama
            url: http://127.0.0.1:11434/api/version
          - service: open-webui
            url: http://127.0.0.1:3000/health
            body_contains: "true"
          - service: n8n
            url: http://127.0.0.1:5678/healthz
          - service: postgres
            tcp: 127.0.0.1:5432
    deadline: 300

- name: Report the health of the stack without failing
  homelab.core.stack_health:
    projects:
      - name: homelab
    deadline: 0
    fail_on_unhealthy: false
  register: stack

- name: Show what is unhealthy
  ansible.builtin.debug:
    var: stack.unhealthy
  when: not stack.healthy
"""

RETURN = r"""
services:
  description:
    - One entry per container of the projects, one per expected service without a container, and one per project
      without any container (with RV(services[].service) set to V(null)), sorted by project, service and container.
  returned: always
  type: list
  elements: dict
  contains:
    project:
      description: Compose project name.
      type: str
      sample: homelab
    service:
      description: Compose service name; V(null) for the entry of a project without any container.
      type: str
      sample: n8n
    container:
      description: Container name; V(null) when there is no container.
      type: str
      sample: homelab-n8n-1
    state:
      description: Container state as reported by compose, such as V(running), V(exited) or V(restarting).
      type: str
      sample: running
    health:
      description: Compose healthcheck state, V(healthy), V(unhealthy), V(starting), or empty without healthcheck.
      type: str
      sample: healthy
    restart_count:
      description: Number of times Docker restarted the container; V(null) when unknown.
      type: int
      sample: 0
    setup_page:
      description: The anonymous request of O(projects[].services[].setup_page); absent when the service has none.
      returned: when the service has a setup page to ask
      type: dict
      contains:
        url:
          description: The page asked.
          type: str
          sample: http://127.0.0.1:5678/rest/settings
        open:
          description: Whether anyone could still create the first admin account there.
          type: bool
          sample: false
    probe:
      description: Result of the last probe attempt; V(null) when the service has no probe.
      type: dict
      contains:
        type:
          description: V(http) or V(tcp).
          type: str
          sample: http
        target:
          description: The URL, or V(tcp://host:port).
          type: str
          sample: http://127.0.0.1:5678/healthz
        ok:
          description: Whether the probe succeeded.
          type: bool
          sample: true
        status_code:
          description: HTTP status code of the last attempt; V(null) for TCP or when no response came.
          type: int
          sample: 200
        latency_ms:
          description: Duration of the last attempt in milliseconds.
          type: int
          sample: 12
        error:
          description: Why the last attempt failed; V(null) on success.
          type: str
          sample: connection refused
        attempts:
          description: Number of attempts made.
          type: int
          sample: 3
    required:
      description: Whether the service must be healthy (O(projects[].services[].required)).
      type: bool
      sample: true
    healthy:
      description: Whether the service is healthy.
      type: bool
      sample: true
    reason:
      description: Why the service is unhealthy; V(null) when healthy.
      type: str
      sample: "probe http://127.0.0.1:5678/healthz: connection refused"
    logs:
      description: Last O(log_lines) lines of the container's log.
      returned: when the service is unhealthy
      type: list
      elements: str
      sample:
        - "INFO:     Application startup complete."
healthy:
  description: Whether every required service is healthy.
  returned: always
  type: bool
  sample: false
unhealthy:
  description: "The required services that are unhealthy, each as C(project/service: reason)."
  returned: always
  type: list
  elements: str
  sample:
    - "homelab/n8n: probe http://127.0.0.1:5678/healthz: connection refused"
    - "homelab/ollama: container exited with code 1"
elapsed_ms:
  description: Time spent waiting, in milliseconds.
  returned: always
  type: int
  sample: 5321
"""

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.homelab.core.plugins.module_utils._compose import (
    label,
    merge_logs,
    parse_hostport,
    parse_ps,
    parse_restart_counts,
    watch,
)
from ansible_collections.homelab.core.plugins.module_utils._setup_pages import RULES, ask, is_open


class StackHealth:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.docker = module.get_bin_path("docker", required=True)
        self.setup_pages = {}
        self.checks = self.build_checks()

    def compose(self, project, args, cwd=None):
        """Run ``docker compose`` for ``project``; fail the task when it fails."""
        cmd = [self.docker, "compose", "--project-name", project] + args
        rc, out, err = self.module.run_command(cmd, cwd=cwd)
        if rc != 0:
            self.module.fail_json(msg="%s failed: %s" % (" ".join(cmd), err.strip()), rc=rc, stdout=out, stderr=err)
        return out

    def probe(self, project, spec):
        where = "%s/%s" % (project, spec["service"])
        if spec["url"]:
            parts = urlsplit(spec["url"])
            if parts.scheme not in ("http", "https") or not parts.hostname:
                self.module.fail_json(msg="%s: url must be an http:// or https:// URL, got %r" % (where, spec["url"]))
            return {"type": "http", "target": spec["url"], "status_code": spec["status_code"],
                    "body_contains": spec["body_contains"], "validate_certs": self.params["validate_certs"]}
        if spec["tcp"]:
            try:
                host, port = parse_hostport(spec["tcp"])
            except ValueError as exc:
                self.module.fail_json(msg="%s: tcp %s" % (where, exc))
            return {"type": "tcp", "target": "tcp://" + spec["tcp"], "host": host, "port": port}
        return None

    def build_checks(self):
        """Map each project to ``{service: {"required": bool, "probe": dict or None}}``."""
        checks = {}
        for project in self.params["projects"]:
            name = project["name"]
            services = checks.setdefault(name, {})
            if project["project_src"]:
                files = [arg for path in project["files"] or [] for arg in ("--file", path)]
                declared = self.compose(name, files + ["config", "--services"], cwd=project["project_src"])
                services.update((service, {"required": True, "probe": None}) for service in declared.split())
            listed = set()
            for spec in project["services"] or []:
                if spec["service"] in listed:
                    self.module.fail_json(msg="%s/%s is listed twice" % (name, spec["service"]))
                listed.add(spec["service"])
                services[spec["service"]] = {"required": spec["required"], "probe": self.probe(name, spec)}
                if spec["setup_page"]:
                    self.setup_pages[(name, spec["service"])] = spec["setup_page"]
        return checks

    def ask_setup_pages(self, entries):
        """Ask each healthy service's setup page anonymously, in parallel; an open page makes it unhealthy."""
        asked = [(entry, self.setup_pages[(entry["project"], entry["service"])]) for entry in entries
                 if entry["healthy"] and (entry["project"], entry["service"]) in self.setup_pages]
        if not asked:
            return
        with ThreadPoolExecutor(max_workers=len(asked)) as pool:
            answers = list(pool.map(lambda item: ask(item[1]["url"], self.params["probe_timeout"]), asked))
        for (entry, page), (status, answer) in zip(asked, answers):
            entry["setup_page"] = {"url": page["url"], "open": is_open(page["rule"], status, answer)}
            if entry["setup_page"]["open"]:
                entry.update(healthy=False, reason=(
                    "offers its setup page %s to anyone, although the inventory gives its admin account: the account "
                    "was not created (see its log), so keep its port closed and fix that first" % page["url"]))

    def read_states(self):
        states = {}
        for project in self.checks:
            out = self.compose(project, ["ps", "--all", "--format", "json"])
            try:
                states[project] = parse_ps(out)
            except (ValueError, KeyError, TypeError) as exc:
                self.module.fail_json(msg="Cannot parse docker compose ps output of %s: %s" % (project, exc),
                                      stdout=out)
        return states

    def add_restart_counts(self, entries):
        names = [entry["container"] for entry in entries if entry["container"]]
        if not names:
            return
        # A container removed meanwhile makes docker inspect fail, but it still prints the others.
        _rc, out, _err = self.module.run_command(
            [self.docker, "inspect", "--type", "container", "--format", "{{.Name}} {{.RestartCount}}"] + names)
        counts = parse_restart_counts(out)
        for entry in entries:
            entry["restart_count"] = counts.get(entry["container"])

    def logs(self, container):
        if not container or not self.params["log_lines"]:
            return []
        rc, out, err = self.module.run_command(
            [self.docker, "logs", "--timestamps", "--tail", str(self.params["log_lines"]), container])
        if rc != 0:
            self.module.warn("Cannot read the logs of %s: %s" % (container, err.strip()))
            return []
        return merge_logs(out, err)

    def run(self):
        params = self.params
        entries, elapsed_ms = watch(self.read_states, self.checks, params["deadline"], params["interval"],
                                    params["probe_timeout"])
        self.ask_setup_pages(entries)
        self.add_restart_counts(entries)
        for entry in entries:
            if not entry["healthy"]:
                entry["logs"] = self.logs(entry["container"])
        unhealthy = [entry for entry in entries if entry["required"] and not entry["healthy"]]
        result = dict(
            changed=False,
            services=entries,
            healthy=not unhealthy,
            unhealthy=["%s: %s" % (label(entry), entry["reason"]) for entry in unhealthy],
            elapsed_ms=elapsed_ms,
        )
        if unhealthy and params["fail_on_unhealthy"]:
            self.module.fail_json(
                msg="%d %s unhealthy: %s." % (
                    len(unhealthy),
                    "service is" if len(unhealthy) == 1 else "services are",
                    "; ".join("%s (%s)" % (label(entry), entry["reason"]) for entry in unhealthy),
                ),
                **result
            )
        self.module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            projects=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    name=dict(type="str", required=True),
                    project_src=dict(type="path"),
                    files=dict(type="list", elements="str"),
                    services=dict(
                        type="list",
                        elements="dict",
                        options=dict(
                            service=dict(type="str", required=True),
                            url=dict(type="str"),
                            tcp=dict(type="str"),
                            status_code=dict(type="list", elements="int", default=[200]),
                            body_contains=dict(type="str"),
                            required=dict(type="bool", default=True),
                            setup_page=dict(type="dict", options=dict(
                                url=dict(type="str", required=True),
                                rule=dict(type="str", choices=list(RULES), required=True),
                            )),
                        ),
                        mutually_exclusive=[("url", "tcp")],
                        required_by={"body_contains": "url"},
                    ),
                ),
            ),
            deadline=dict(type="int", default=180),
            interval=dict(type="float", default=1.0),
            probe_timeout=dict(type="float", default=5.0),
            log_lines=dict(type="int", default=20),
            fail_on_unhealthy=dict(type="bool", default=True),
            validate_certs=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["deadline"] < 0 or params["log_lines"] < 0:
        module.fail_json(msg="deadline and log_lines must not be negative")
    if params["interval"] <= 0 or params["probe_timeout"] <= 0:
        module.fail_json(msg="interval and probe_timeout must be positive")
    StackHealth(module).run()


if __name__ == "__main__":
    main()
