"""`evo-watchdog check`: every probe once, plus what the containers' logs say when containers are set."""

from __future__ import annotations

from watchdog.clock import Clock
from watchdog.config import Settings
from watchdog.health import assess
from watchdog.model import Finding, ProbeResult
from watchdog.probes.suite import ProbeSuite, http_client
from watchdog.signals.logsnapshot import log_findings
from watchdog.signals.logstate import LogState


async def run_check(
    settings: Settings, clock: Clock, *, canary: bool
) -> tuple[list[ProbeResult], list[Finding]]:
    async with http_client(settings) as http:
        results = await ProbeSuite(settings, http, clock).run_cycle(canary=canary)
    findings = assess(results, now=clock.time(), stall_seconds=settings.stall_seconds)
    containers = [c for c in (settings.evolution_container, *settings.dify_containers) if c]
    if containers:
        state = LogState(
            clock,
            evolution=settings.evolution_container,
            dify=settings.dify_containers,
            burst_count=settings.log_burst_count,
            burst_window=settings.log_burst_window_seconds,
            dify_silent_seconds=settings.dify_silent_seconds,
        )
        log_results, from_logs = await log_findings(settings.docker_url, containers, state, clock)
        results += log_results
        findings += from_logs
    return results, findings
