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


def test_a_fleet_gets_one_table_with_a_host_column_and_a_line_for_a_host_without_report():
    lines = health_table(
        {
            "control-1": [{"service": "open-webui", "healthy": True, "probe": {"target": "http://127.0.0.1:3000/health", "latency_ms": 7}}],
            "gpu-1": [{"service": "ollama", "healthy": False, "probe": {"target": "http://127.0.0.1:11434/api/version", "latency_ms": None}}],
            "gpu-2": None,
        }
    )
    assert lines[0].split() == ["HOST", "SERVICE", "STATE", "URL", "LATENCY"]
    assert lines[1].split() == ["control-1", "open-webui", "healthy", "http://127.0.0.1:3000/health", "7", "ms"]
    assert lines[2].split() == ["gpu-1", "ollama", "UNHEALTHY", "http://127.0.0.1:11434/api/version", "-"]
    assert lines[3].split() == ["gpu-2", "-", "NO", "REPORT", "-", "-"]


def test_the_host_column_is_as_wide_as_the_longest_host_name():
    ollama = [{"service": "ollama", "healthy": True, "probe": {"target": "http://127.0.0.1:11434/api/version", "latency_ms": 3}}]
    lines = health_table({"homelab-fleet-control-host": ollama, "gpu-1": ollama})
    # Every column starts at the same place on every line.
    starts = {line.index("ollama") if "ollama" in line else line.index("SERVICE") for line in lines}
    assert starts == {len("homelab-fleet-control-host") + 1}
