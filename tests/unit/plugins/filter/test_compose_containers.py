"""homelab.core.compose_containers: compose's labels read out of `docker container ls --format json`."""

from __future__ import annotations

import json

from ansible_collections.homelab.core.plugins.filter.compose_containers import compose_containers

# Lines as docker 26 prints them (abridged): Labels is one comma-separated string.
EARLIER_COOLIFY = json.dumps({
    "ID": "0123abcd", "Names": "homelab-coolify-1", "Image": "127.0.0.1:5000/coollabsio/coolify:4.0.0-beta.400",
    "Labels": "com.docker.compose.depends_on=coolify-db:service_healthy:false,coolify-redis:service_healthy:false,"
              "com.docker.compose.project=homelab,com.docker.compose.service=coolify,com.docker.compose.oneoff=False",
})
UPSTREAM_INSTALL = json.dumps({"ID": "4567cdef", "Names": "coolify-db", "Labels": ""})


def test_project_service_and_name_are_read_out_even_after_a_label_with_commas():
    assert compose_containers([EARLIER_COOLIFY, UPSTREAM_INSTALL]) == [
        {"id": "0123abcd", "name": "homelab-coolify-1", "project": "homelab", "service": "coolify"},
        {"id": "4567cdef", "name": "coolify-db", "project": None, "service": None},
    ]


def test_parsed_lines_and_empty_input_work_too():
    assert compose_containers([{"ID": "89ab", "Names": "a,b", "Labels": {"com.docker.compose.project": "p"}}, ""]) == [
        {"id": "89ab", "name": "a", "project": "p", "service": None}]
    assert compose_containers(None) == []
