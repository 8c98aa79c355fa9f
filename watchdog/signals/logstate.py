"""What the containers' logs say: error bursts, logouts, a silent Dify, containers out of reach.

Pure: classified records and follower states in, findings out; time from the injected clock. A dead message
processor prints nothing in Evolution 2.3.x (its handler catches its own errors): signals/conversations.py
finds it from inbound silence, not from here.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Sequence

from loguru import logger

from watchdog.clock import Clock
from watchdog.config import Settings
from watchdog.model import Finding, Severity, instance_target
from watchdog.signals.logrules import RULE_ABOUT, Classified
from watchdog.signals.logwatch import FOLLOWING, MISSING, UNREACHABLE

ERROR_BURST = "error_burst"
LOGGED_OUT = "logged_out"
DIFY_SILENT = "dify_silent"
DOCKER_UNREACHABLE = "docker_unreachable"
CONTAINER_MISSING = "container_missing"
LOG_FINDING_KINDS = (
    ERROR_BURST,
    LOGGED_OUT,
    DIFY_SILENT,
    DOCKER_UNREACHABLE,
    CONTAINER_MISSING,
)
LOGOUT_MEMORY_SECONDS = 600.0  # a logout stays a finding this long unless the instance connects again
# Evolution's own lines (monitor.service.ts:367, whatsapp.baileys.service.ts:454), read without a rule:
REMOVED = '" - REMOVED'  # an operator deleted the instance: a logout before it is no longer news
CONNECTED = "CONNECTED TO WHATSAPP"


def container_target(name: str) -> str:
    return f"container:{name}"


class LogState:
    def __init__(
        self,
        clock: Clock,
        *,
        evolution: str,
        dify: Sequence[str],
        burst_count: int,
        burst_window: float,
        dify_silent_seconds: float,
    ) -> None:
        self.clock = clock
        self.evolution = evolution
        self.dify = tuple(dify)
        self.burst_count = burst_count
        self.burst_window = burst_window
        self.dify_silent_seconds = dify_silent_seconds
        started = clock.monotonic()
        self.last_line: dict[str, float] = {name: started for name in (evolution, *dify) if name}
        self.follow_state: dict[str, tuple[str, str]] = {}
        self._started: dict[str, str] = {}  # container -> the start time it was last followed from
        self._events: dict[tuple[str, str], deque[float]] = defaultdict(lambda: deque(maxlen=10_000))
        self._logged_out: dict[str, float] = {}

    def line(self, container: str) -> None:
        self.last_line[container] = self.clock.monotonic()

    def record(self, container: str, result: Classified, *, at: float | None = None) -> None:
        """`at` (monotonic) dates a record read back from history; live records happen now."""
        now = self.clock.monotonic() if at is None else at
        if result.rule is not None:
            self._events[(container, result.rule)].append(now)
        if container != self.evolution:
            return
        if result.rule == "whatsapp_logged_out" and result.instance:
            self._logged_out[result.instance] = now
        elif result.rule is None and result.instance and (CONNECTED in result.text or REMOVED in result.text):
            self._logged_out.pop(result.instance, None)

    def follower(self, container: str, state: str, detail: str) -> None:
        self.follow_state[container] = (state, detail)
        if state == FOLLOWING:
            self.last_line.setdefault(container, self.clock.monotonic())
            started = detail.rpartition(" started ")[2]
            before = self._started.get(container)
            if before and started != before:
                # A restart (the watchdog's own is in the journal; an operator's or a deploy's is only this
                # note): its start-up failures are not faults to repair, so nothing else is said.
                logger.info("container {} was restarted (running since {})", container, started)
            self._started[container] = started

    def findings(self, inbound_within: Callable[[float], bool]) -> list[Finding]:
        """`inbound_within(seconds)` says whether customers wrote in that time (Dify silence matters then)."""
        now = self.clock.monotonic()
        found: list[Finding] = []
        for (container, rule), times in self._events.items():
            while times and now - times[0] > self.burst_window:
                times.popleft()
            if len(times) >= self.burst_count:
                found.append(self._burst(container, rule, len(times)))
        for instance, at in list(self._logged_out.items()):
            if now - at > LOGOUT_MEMORY_SECONDS:
                del self._logged_out[instance]
                continue
            summary = "WhatsApp logged this instance out (device removed): it needs a new QR scan"
            found.append(Finding(LOGGED_OUT, instance_target(instance), Severity.CRITICAL, summary))
        for name in self.dify:
            silent = now - self.last_line.get(name, now)
            if silent > self.dify_silent_seconds and inbound_within(self.dify_silent_seconds):
                found.append(
                    Finding(
                        DIFY_SILENT,
                        container_target(name),
                        Severity.CRITICAL,
                        f"no log line for {silent:.0f}s while customers keep writing",
                        {"silent_seconds": round(silent, 1)},
                    )
                )
        for name, (state, detail) in self.follow_state.items():
            if state == UNREACHABLE:
                found.append(
                    Finding(DOCKER_UNREACHABLE, "docker", Severity.WARNING, f"cannot follow {name}: {detail}")
                )
            elif state == MISSING:
                found.append(Finding(CONTAINER_MISSING, container_target(name), Severity.WARNING, detail))
        return _dedupe(found)

    def _burst(self, container: str, rule: str, count: int) -> Finding:
        """`service`: what the lines are evidence about (Dify's errors that Evolution printed are Dify's)."""
        own = "evolution" if container == self.evolution else "dify" if container in self.dify else container
        service = RULE_ABOUT.get(rule, own)
        where = "" if service == own else f" ({service}'s, as {container} logged them)"
        return Finding(
            ERROR_BURST,
            container_target(container),
            Severity.CRITICAL if rule != "error" else Severity.WARNING,
            f"{count} {rule} lines in {self.burst_window:g}s{where}",
            {"rule": rule, "count": count, "container": container, "service": service},
        )


def log_state_for(settings: Settings, clock: Clock) -> LogState | None:
    """The log state for the configured containers, or None when no container is named."""
    if not settings.containers:
        return None
    return LogState(
        clock,
        evolution=settings.evolution_container,
        dify=settings.dify_containers,
        burst_count=settings.log_burst_count,
        burst_window=settings.log_burst_window_seconds,
        dify_silent_seconds=settings.dify_silent_seconds,
    )


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for f in findings:
        key = (f.kind, f.target, str(f.evidence.get("rule", "")))
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique
