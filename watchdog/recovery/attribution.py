"""Attribution: from one cycle's findings, the root causes to repair and whether each is confirmed.

Pure: findings, the restart holds (settle windows) and `now` in, problems out; the only state is the count
of consecutive cycles each suspect was present (a Kubernetes failureThreshold), fed once per turn.

* Log-derived findings (`error_burst`, `dify_silent`) alone never name a root cause: they corroborate a
  probe, canary or customer finding. Dify's errors printed by Evolution are Dify evidence (problems.py).
* Customers stalled on an instance that says nothing else are session faults: L1 per contact, never L2.
* L2 and L3 (and the pages of a problem that starts there) wait for confirmation: `confirm_cycles`
  consecutive cycles, or two independent sources in one cycle (probe + customers, canary + probe, ...).
* Cycles inside the settle window of a verified repair of the problem's target do not count: after it
  the fault must be confirmed again.
* Unanswered contacts are symptoms only once their service (or instance) is confirmed down.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from watchdog.model import Finding
from watchdog.recovery.problems import Level, Problem, problems_from, repair_targets
from watchdog.signals.conversations import BROAD_STALL_CONTACTS

PROBE, CANARY, CUSTOMERS, LOG = "probe", "canary", "customers", "log"
SOURCES = {
    "evolution_down": PROBE,
    "dify_down": PROBE,
    "instance_disconnected": PROBE,
    "instance_not_loaded": PROBE,
    "dify_canary_failed": CANARY,
    "stalled_contact": CUSTOMERS,
    "instance_stalled": CUSTOMERS,
    "inbound_stopped": CUSTOMERS,
    "error_burst": LOG,
    "dify_silent": LOG,
    "customers_unanswered": CUSTOMERS,
    "e2e_not_received": "e2e",  # the heartbeat (signals/heartbeat.py): a probe of the whole path,
    "e2e_no_reply": "e2e",  # a source of its own beside the probes, the canary and the customers
    "e2e_not_delivered": "e2e",
    "e2e_slow": "e2e",
}
STALLED = {"stalled_contact", "instance_stalled"}  # customers without an answer
# Attribution's own kind, never a finding: several contacts unanswered at once, the customers' word on a
# service suspicion that log lines raised.
UNANSWERED = "customers_unanswered"
# What a root cause is: the target the attribution names, which is the only one a restart may touch.
SESSION, INSTANCE, EVOLUTION, DIFY, OUTSIDE = "session", "instance", "evolution", "dify", "outside"


@dataclass(frozen=True)
class Seen:
    cycles: int  # consecutive cycles present, those inside a settle window not counted
    settling: bool = False  # inside the settle window of a verified repair of its target


def root(problem: Problem) -> str:
    """The root cause a problem names: a contact's session, an instance, a service, or outside both
    (a person: a logout, a setting, the Dify app or its model provider)."""
    return root_of_key(problem.key)


def root_of_key(key: str) -> str:
    """`root` read from an incident key alone (as the journal keeps it): `service:dify` names dify."""
    section, _, rest = key.partition(":")
    if section == "contact":
        return SESSION
    if section == "instance":
        return INSTANCE
    if section == "service":
        return rest
    return OUTSIDE


def grounded(problem: Problem) -> bool:
    """May this problem be a root cause at all? Not on log findings alone, and not on customers stalled on
    an instance that says `open` (their sessions are the fault)."""
    if problem.start in (Level.CONTACT, Level.HUMAN):
        return True
    kinds = set(problem.kinds)
    if {SOURCES.get(kind) for kind in kinds} <= {LOG}:
        return False
    return not (problem.key.startswith("instance:") and kinds <= STALLED)


def with_customers(problems: Sequence[Problem]) -> list[Problem]:
    """Several contacts unanswered at once, with nothing of their own to explain them (a stale
    conversation, their instance down), speak about a service: they ground a service problem that only
    log lines named (Dify's 500s printed by Evolution, a worker timeout)."""
    broken = {p.instance for p in problems if p.key.startswith("instance:") and not set(p.kinds) <= STALLED}
    stalled = {
        p.key
        for p in problems
        if p.start == Level.CONTACT
        and set(p.kinds) & STALLED
        and "stale_conversation" not in p.kinds  # explained: Dify forgot it
        and p.instance not in broken  # explained: its instance is down
    }
    if len(stalled) < BROAD_STALL_CONTACTS:
        return list(problems)
    return [
        _add_kinds(p, UNANSWERED) if p.key.startswith("service:") and not grounded(p) else p for p in problems
    ]


def outside_dify(problems: Sequence[Problem]) -> list[Problem]:
    """Dify's app or model failing (the canary's verdict) explains what only customers and log lines
    said about Dify: no Dify restart for it, and no session resets for contacts merely unanswered; the
    person told is the repair. A failing Dify probe still counts (Dify itself down too)."""
    if not any(p.start == Level.HUMAN and "dify_canary_failed" in p.kinds for p in problems):
        return list(problems)
    return [
        p
        for p in problems
        if not (p.key == "service:dify" and "dify_down" not in p.kinds)
        and not (p.start == Level.CONTACT and set(p.kinds) <= {"stalled_contact"})
    ]


def _add_kinds(problem: Problem, *kinds: str) -> Problem:
    return replace(problem, kinds=tuple(sorted({*problem.kinds, *kinds})))


class ConfirmationTracker:
    """Consecutive cycles each grounded suspect was present; absent once, its count starts over. Cycles
    more than `max_gap` seconds apart are not consecutive (a replica that did not lead in between)."""

    def __init__(self, max_gap: float = math.inf) -> None:
        self.max_gap = max_gap
        self._cycles: dict[str, int] = {}
        self._last = -math.inf

    def observe(self, suspects: Sequence[Problem], holds: Mapping[str, float], now: float) -> dict[str, Seen]:
        """`holds`: target -> end of the settle window after its verified repair (planner.settle_holds)."""
        if now - self._last > self.max_gap:
            self._cycles = {}
        self._last = now
        seen: dict[str, Seen] = {}
        for problem in suspects:
            settling = any(holds.get(target, 0.0) > now for target in repair_targets(problem))
            cycles = 0 if settling else self._cycles.get(problem.key, 0) + 1
            seen[problem.key] = Seen(cycles, settling)
        self._cycles = {key: s.cycles for key, s in seen.items()}
        return seen


def attribute(problems: Sequence[Problem], seen: Mapping[str, Seen], *, confirm_cycles: int) -> list[Problem]:
    """The root causes among one cycle's problems (problems_from), each marked confirmed or not, with the
    contacts that are symptoms of a confirmed service or instance fault left out."""
    stalled = {p.instance for p in problems if set(p.kinds) & STALLED}
    judged = [
        replace(p, confirmed=_confirmed(p, seen.get(p.key, Seen(1)), stalled, confirm_cycles))
        for p in problems
        if grounded(p)
    ]
    services = [p for p in judged if p.key.startswith("service:")]
    down = any(p.confirmed or seen.get(p.key, Seen(1)).settling for p in services)
    bigger = {p.instance for p in judged if p.key.startswith("instance:") and p.confirmed}
    return [p for p in judged if not (p.start == Level.CONTACT and (down or p.instance in bigger))]


def _confirmed(problem: Problem, seen: Seen, stalled: set[str], confirm_cycles: int) -> bool:
    if problem.start in (Level.CONTACT, Level.HUMAN):
        return True  # L1 acts on one contact's evidence; a person is told at once
    if seen.settling:
        return False
    sources = {SOURCES[kind] for kind in problem.kinds if kind in SOURCES}
    if problem.instance in stalled or (stalled and not problem.instance):
        sources.add(CUSTOMERS)  # customers unanswered on that instance, or anywhere for a service
    return seen.cycles >= confirm_cycles or len(sources) >= 2


class Attribution:
    """One cycle at a time: findings -> problems -> root causes, confirmation counted across cycles."""

    def __init__(
        self, *, confirm_cycles: int, dify_containers: Sequence[str] = (), max_gap: float = math.inf
    ) -> None:
        self.confirm_cycles = confirm_cycles
        self.dify_containers = tuple(dify_containers)
        self.tracker = ConfirmationTracker(max_gap)

    def cycle(self, findings: Sequence[Finding], holds: Mapping[str, float], now: float) -> list[Problem]:
        problems = outside_dify(with_customers(problems_from(findings, dify_containers=self.dify_containers)))
        seen = self.tracker.observe([p for p in problems if grounded(p)], holds, now)
        return attribute(problems, seen, confirm_cycles=self.confirm_cycles)
