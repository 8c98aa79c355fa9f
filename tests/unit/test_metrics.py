"""Metrics: names from ARCHITECTURE, on an injected registry; instance state is one-hot."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from watchdog import __version__
from watchdog.health import FINDING_KINDS
from watchdog.metrics import Metrics
from watchdog.model import Finding, ProbeResult, Severity


def test_probe_results_and_instance_state() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.observe_probes(
        [
            ProbeResult("evolution", "version", True, 0.02, 0, ""),
            ProbeResult("evolution:loja", "connection_state", False, 0.03, 0, "", {"state": "connecting"}),
        ]
    )
    value = registry.get_sample_value
    assert value("watchdog_build_info", {"version": __version__}) == 1
    assert value("watchdog_probe_success", {"target": "evolution", "probe": "version"}) == 1
    assert value("watchdog_probe_success", {"target": "evolution:loja", "probe": "connection_state"}) == 0
    assert value("watchdog_probe_duration_seconds_count", {"target": "evolution", "probe": "version"}) == 1
    assert value("watchdog_instance_connection_state", {"instance": "loja", "state": "connecting"}) == 1
    assert value("watchdog_instance_connection_state", {"instance": "loja", "state": "open"}) == 0


def test_findings_gauge_resets_kinds_that_cleared() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    wedged = Finding("session_wedged", "evolution:loja", Severity.CRITICAL, "")
    metrics.observe_findings([wedged, wedged], known_kinds=FINDING_KINDS)
    labels = {"kind": "session_wedged", "severity": "critical"}
    assert registry.get_sample_value("watchdog_findings", labels) == 2
    metrics.observe_findings([], known_kinds=FINDING_KINDS)
    assert registry.get_sample_value("watchdog_findings", labels) == 0


def test_two_registries_do_not_collide() -> None:
    """A module-level registry would raise "Duplicated timeseries" on the second instance."""
    first, second = CollectorRegistry(), CollectorRegistry()
    Metrics(first).job_failures.labels(job="probes").inc()
    Metrics(second)
    assert first.get_sample_value("watchdog_job_failures_total", {"job": "probes"}) == 1
    assert second.get_sample_value("watchdog_job_failures_total", {"job": "probes"}) is None
