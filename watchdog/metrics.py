"""Every metric the watchdog exports, defined once, on a registry the caller owns.

Names are a public contract (dashboards and alert rules use them): see ARCHITECTURE.md.
Labels never carry a phone number, JID or secret.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from watchdog import __version__
from watchdog.model import Finding, ProbeResult

INSTANCE_STATES = ("open", "connecting", "close", "unknown")
SESSION_STATUSES = ("opened", "paused", "closed")  # IntegrationSession.status (watchdog/integrations.py)
PROBE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Dense around the default 5 s threshold, where "is my bot fast enough" is decided.
TURNAROUND_BUCKETS = (0.5, 1, 2, 3, 4, 4.5, 5, 5.5, 6, 7, 8, 10, 15, 20, 30, 45, 60, 120, 300)


def turnaround_buckets(threshold: float) -> tuple[float, ...]:
    """The standard buckets plus the configured threshold, so `le="<threshold>"` always exists."""
    return tuple(sorted({*TURNAROUND_BUCKETS, threshold}))


def sample_total(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """`name`'s samples whose labels include `labels`, summed (as a dashboard's `sum` over the rest)."""
    return sum(
        sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


class Metrics:
    def __init__(self, registry: CollectorRegistry, *, turnaround_threshold: float = 5.0) -> None:
        self.registry = registry
        self.build_info = Gauge(
            "watchdog_build_info", "Watchdog version; always 1.", ["version"], registry=registry
        )
        self.build_info.labels(version=__version__).set(1)
        self.probe_success = Gauge(
            "watchdog_probe_success",
            "1 when the last probe of this target succeeded and found it healthy.",
            ["target", "probe"],
            registry=registry,
        )
        self.probe_duration = Histogram(
            "watchdog_probe_duration_seconds",
            "Time one probe took, failures included.",
            ["target", "probe"],
            buckets=PROBE_BUCKETS,
            registry=registry,
        )
        self.instance_state = Gauge(
            "watchdog_instance_connection_state",
            "1 for the live connection state of each Evolution instance, 0 for the others.",
            ["instance", "state"],
            registry=registry,
        )
        self.findings = Gauge(
            "watchdog_findings",
            "Findings active after the last probe cycle, by kind and severity.",
            ["kind", "severity"],
            registry=registry,
        )
        self.job_failures = Counter(
            "watchdog_job_failures_total",
            "Scheduled jobs that raised instead of returning; the daemon keeps running.",
            ["job"],
            registry=registry,
        )
        self.turnaround = Histogram(
            "watchdog_turnaround_seconds",
            "Time from a customer's message to the bot's reply, on the watchdog's clock; `integration` is "
            "the bot integration holding the contact's session (else unknown).",
            ["instance", "kind", "integration"],
            buckets=turnaround_buckets(turnaround_threshold),
            registry=registry,
        )
        self.breaches = Counter(
            "watchdog_turnaround_breaches_total",
            "Bot replies slower than WATCHDOG_TURNAROUND_THRESHOLD_SECONDS.",
            ["instance", "kind", "integration"],
            registry=registry,
        )
        self.stalled = Counter(
            "watchdog_stalled_conversations_total",
            "Conversations left without a reply for WATCHDOG_STALL_SECONDS.",
            ["instance", "kind", "integration"],
            registry=registry,
        )
        self.human_replies = Counter(
            "watchdog_human_replies_total",
            "Waits ended by a person typing on the phone instead of the bot.",
            ["instance"],
            registry=registry,
        )
        self.e2e_seconds = Histogram(
            "watchdog_e2e_seconds",
            "End-to-end heartbeat legs: sent to received by the bot instance (received), to the bot's reply "
            "(replied), to the reply on the prober (delivered); sent to delivered is round_trip.",
            ["instance", "leg"],
            buckets=turnaround_buckets(turnaround_threshold),
            registry=registry,
        )
        self.e2e_success = Gauge(
            "watchdog_e2e_success",
            "1 when the last heartbeat to this bot instance came back, 0 when it failed (after one re-send).",
            ["instance"],
            registry=registry,
        )
        self.webhook_events = Counter(
            "watchdog_webhook_events_total",
            "Evolution webhook deliveries by event and outcome (accepted, ignored, rejected reason).",
            ["event", "outcome"],
            registry=registry,
        )
        self.log_events = Counter(
            "watchdog_log_events_total",
            "Container log records matching a rule (see watchdog/signals/logrules.py).",
            ["container", "rule"],
            registry=registry,
        )
        self.log_lines = Counter(
            "watchdog_log_lines_total",
            "Log lines read from each container.",
            ["container"],
            registry=registry,
        )
        self.log_lines_dropped = Counter(
            "watchdog_log_lines_dropped_total",
            "Log lines dropped because the classifier fell behind (its queue was full).",
            registry=registry,
        )
        self.recovery_actions = Counter(
            "watchdog_recovery_actions_total",
            "Recovery actions by kind, target and verified result (ok, failed, dry_run; a page with no "
            "notify URL: undelivered).",
            ["action", "target", "result"],
            registry=registry,
        )
        self.recovery_duration = Histogram(
            "watchdog_recovery_duration_seconds",
            "Time a recovery action took, verification included.",
            ["action"],
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=registry,
        )
        self.incident_open = Gauge(
            "watchdog_incident_open",
            "Open incidents by target (contacts counted per instance).",
            ["target"],
            registry=registry,
        )
        self.last_cycle = Gauge(
            "watchdog_last_probe_cycle_timestamp_seconds",
            "Unix time the last probe cycle finished.",
            registry=registry,
        )
        self.leader = Gauge(
            "watchdog_leader",
            "1 while this replica holds the leader lease and may act (always 1 without WATCHDOG_REDIS_URL).",
            registry=registry,
        )
        self.sessions = Gauge(
            "watchdog_sessions",
            "Bot sessions by integration and status (opened, paused, closed), from the last sessions probe.",
            ["instance", "integration", "status"],
            registry=registry,
        )
        self._session_series: dict[str, set[tuple[str, str]]] = {}  # instance -> (integration, status) set
        self.lease_errors = Counter(
            "watchdog_lease_errors_total",
            "Calls to the lease store (Redis) that failed; while they fail this replica does not act.",
            registry=registry,
        )

    def observe_probes(self, results: Iterable[ProbeResult]) -> None:
        for result in results:
            self.probe_success.labels(target=result.target, probe=result.probe).set(1 if result.ok else 0)
            self.probe_duration.labels(target=result.target, probe=result.probe).observe(result.duration)
            if result.probe == "connection_state":
                self._set_state(result.target.partition(":")[2], _state_of(result))
            elif result.probe == "sessions" and result.ok:
                self._set_sessions(result)

    def observe_findings(self, findings: Iterable[Finding], *, known_kinds: Iterable[str]) -> None:
        counts: dict[tuple[str, str], int] = {}
        for finding in findings:
            key = (finding.kind, str(finding.severity))
            counts[key] = counts.get(key, 0) + 1
        for kind in known_kinds:
            for severity in ("warning", "critical"):
                self.findings.labels(kind=kind, severity=severity).set(counts.get((kind, severity), 0))

    def _set_sessions(self, result: ProbeResult) -> None:
        """Every status of each integration with a bot here, 0 included; a series that was set before and
        has no session now goes to 0 rather than keeping its old count."""
        instance = result.target.partition(":")[2]
        counts: dict[tuple[str, str], int] = {}
        for bot in result.data.get("bots", ()):
            for status in SESSION_STATUSES:
                counts[(str(bot.get("integration") or "dify"), status)] = 0
        for session in result.data.get("sessions", ()):
            key = (str(session.get("integration") or "dify"), str(session.get("status")))
            counts[key] = counts.get(key, 0) + 1
        for integration, status in self._session_series.get(instance, set()) - counts.keys():
            self.sessions.labels(instance=instance, integration=integration, status=status).set(0)
        for (integration, status), count in counts.items():
            self.sessions.labels(instance=instance, integration=integration, status=status).set(count)
        self._session_series[instance] = self._session_series.get(instance, set()) | counts.keys()

    def _set_state(self, instance: str, state: str) -> None:
        for candidate in INSTANCE_STATES:
            self.instance_state.labels(instance=instance, state=candidate).set(1 if candidate == state else 0)


def _state_of(result: ProbeResult) -> str:
    state = result.data.get("state")
    return state if state in INSTANCE_STATES else "unknown"
