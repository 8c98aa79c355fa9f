"""`evo-watchdog check`: every probe once, plus what the containers' logs say when containers are set."""

from __future__ import annotations

from watchdog.clock import Clock
from watchdog.config import Settings
from watchdog.contactkey import resolve_contact_key
from watchdog.health import assess
from watchdog.model import Finding, ProbeResult, Severity
from watchdog.notify import Notifier
from watchdog.probes.suite import ProbeSuite, http_client
from watchdog.signals.logsnapshot import log_findings
from watchdog.signals.logstate import log_state_for


async def run_check(
    settings: Settings, clock: Clock, *, canary: bool
) -> tuple[list[ProbeResult], list[Finding]]:
    key = resolve_contact_key(settings, create=False)  # the daemon's ids when it has a key; no state left
    async with http_client(settings) as http:
        results = await ProbeSuite(settings, http, clock, contact_key=key).run_cycle(canary=canary)
    findings = assess(results, now=clock.time(), stall_seconds=settings.stall_seconds)
    state = log_state_for(settings, clock)
    if state is not None:
        log_results, from_logs = await log_findings(settings.docker_url, settings.containers, state, clock)
        results += log_results
        findings += from_logs
    return results, findings + notify_findings(settings, clock)


NOTIFY_MISSING = "notify_missing"


def notify_findings(settings: Settings, clock: Clock) -> list[Finding]:
    """Recovery `auto` with no usable notify URL: its pages (L4) would reach nobody (journaled
    `undelivered`). A warning about the watchdog's own settings, counted like every finding."""
    nobody = Notifier(settings.notify_urls, clock).nobody()
    if settings.recovery_mode != "auto" or not nobody:
        return []
    summary = f"recovery is auto but a page would reach nobody: {nobody}"
    return [Finding(NOTIFY_MISSING, "watchdog", Severity.WARNING, summary)]
