# Copyright (c) 2026, homelab.core maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Print, as JSON, what each container of a compose project runs: service -> image reference, image
id, repo digests, container id. Read-only; reads only image and state fields (never the environment)."""

from __future__ import annotations

import json
import subprocess
import sys

FORMAT = '{{json .Config.Image}} {{json .Image}} {{json .Id}} {{json (index .Config.Labels "com.docker.compose.service")}}'


def output(argv):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE).stdout.decode()


def main(project):
    try:
        ids = output(["docker", "ps", "--all", "--quiet", "--no-trunc", "--filter", "label=com.docker.compose.project=%s" % project]).split()
    except (OSError, subprocess.CalledProcessError):
        # No Docker (a fresh host) or no engine answering: nothing is deployed.
        ids = []
    state = {}
    if ids:
        for line in output(["docker", "container", "inspect", "--format", FORMAT, *ids]).splitlines():
            if not line.strip():
                continue
            reference, image_id, container_id, service = [json.loads(part) for part in line.split(" ")]
            digests = json.loads(output(["docker", "image", "inspect", "--format", "{{json .RepoDigests}}", image_id]) or "[]")
            state[service] = {"image": reference, "id": image_id, "digests": digests or [], "container": container_id}
    print(json.dumps(state))


if __name__ == "__main__":
    main(sys.argv[1])
