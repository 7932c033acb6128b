"""homelab.core.compose_containers: compose's labels and the mount targets read out of docker container inspect."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.filter.compose_containers import compose_containers

# The shape `docker container inspect` prints (Docker's /containers/{id}/json).
EARLIER_COOLIFY = {
    "Id": "0123abcd",
    "Name": "/homelab-coolify-1",
    "Config": {"Labels": {"com.docker.compose.project": "homelab", "com.docker.compose.service": "coolify",
                          "com.docker.compose.container-number": "1"}},
    "Mounts": [{"Type": "bind", "Source": "/opt/homelab/data/coolify", "Destination": "/data/coolify", "RW": True}],
}
UPSTREAM_INSTALL = {"Id": "4567cdef", "Name": "/coolify-db", "Config": {"Labels": {}}, "Mounts": []}


def test_labels_names_and_mount_targets_are_read_out():
    assert compose_containers([EARLIER_COOLIFY, UPSTREAM_INSTALL]) == [
        {"id": "0123abcd", "name": "homelab-coolify-1", "project": "homelab", "service": "coolify",
         "mount_targets": ["/data/coolify"]},
        {"id": "4567cdef", "name": "coolify-db", "project": None, "service": None, "mount_targets": []},
    ]


def test_a_container_without_labels_names_or_mounts_is_still_listed():
    assert compose_containers([{"Id": "89ab", "Config": {"Labels": None}, "Mounts": None}]) == [
        {"id": "89ab", "name": None, "project": None, "service": None, "mount_targets": []}]
    assert compose_containers(None) == []
