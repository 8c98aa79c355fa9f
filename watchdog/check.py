"""`evo-watchdog check`: every probe once, plus what the containers' logs say when containers are set."""

from __future__ import annotations

from watchdog.clock import Clock
from watchdog.config import Settings
from watchdog.health import assess
from watchdog.model import Finding, ProbeResult
from watchdog.probes.suite import ProbeSuite, http_client
from watchdog.signals.logsnapshot import log_findings
from watchdog.signals.logstate import log_state_for


async def run_check(
    settings: Settings, clock: Clock, *, canary: bool
) -> tuple[list[ProbeResult], list[Finding]]:
    async with http_client(settings) as http:
        results = await ProbeSuite(settings, http, clock).run_cycle(canary=canary)
    findings = assess(results, now=clock.time(), stall_seconds=settings.stall_seconds)
    state = log_state_for(settings, clock)
    if state is not None:
        log_results, from_logs = await log_findings(settings.docker_url, settings.containers, state, clock)
        results += log_results
        findings += from_logs
    return results, findings
