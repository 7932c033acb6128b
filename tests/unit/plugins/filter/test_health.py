"""homelab.core.health_table: the summary site.yml and playbooks/health.yml print."""

from __future__ import annotations

from ansible_collections.homelab.core.plugins.filter.health import health_table


def test_table_has_a_header_and_one_row_per_service():
    lines = health_table(
        [
            {"service": "ollama", "healthy": True, "probe": {"target": "http://127.0.0.1:11434/api/version", "latency_ms": 4}},
            {"service": "coolify-db", "healthy": True, "probe": None},
            {"service": "n8n", "healthy": False, "probe": {"target": "tcp://127.0.0.1:5678", "latency_ms": None}},
        ]
    )
    assert lines[0].split() == ["SERVICE", "STATE", "URL", "LATENCY"]
    assert lines[1].split() == ["ollama", "healthy", "http://127.0.0.1:11434/api/version", "4", "ms"]
    assert lines[2].split() == ["coolify-db", "healthy", "-", "-"]
    assert lines[3].split() == ["n8n", "UNHEALTHY", "-", "-"]
