"""The recovery ladder as a pure function: (problems, incidents, recent actions, now) -> plan.

Least force first, each rung tried once and judged by the problem still being there after the backoff
delay; a failed action escalates at once. Guardrails: per-target cooldown (the backoff delay, 10 s
doubling to 5 min), a restart budget per target per hour and a global one, modes off/dry-run/auto, a
maintenance silence, and L4: page once and open the circuit. A problem back soon after its incident
closed starts one rung higher, so a flapping fault climbs to a human instead of looping restarts.

Force needs proof (docs/recovery.md): a problem that starts at L2 or L3 acts (restart or page) only once
attribution confirmed it, and opens no incident before; a contact's ladder is L1 then a person, never an
instance or service restart; inside the settle window after a verified repair of its target a problem is
the repaired target warming up: nothing acts on it, nothing climbs, nobody is paged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from watchdog.recovery.problems import Level, Problem, repair_targets

RESET_SESSION, RESTART_INSTANCE, RESTART_CONTAINER, PAGE = (
    "reset_session",
    "restart_instance",
    "restart_container",
    "page",
)
RESTARTS = {RESTART_INSTANCE, RESTART_CONTAINER}
REPAIRS = {RESET_SESSION, *RESTARTS}
ACK = "ack"  # a person acknowledged a page (recovery/ack.py): journaled, never planned
RUNNING, OK, FAILED, DRY_RUN = "running", "ok", "failed", "dry_run"
UNDELIVERED = "undelivered"  # a page with nobody to send it to (no usable WATCHDOG_NOTIFY_URLS)


@dataclass(frozen=True)
class Policy:
    mode: str = "dry-run"  # auto | dry-run | off
    restarts_per_hour: int = 3  # per target
    global_restarts_per_hour: int = 10
    backoff_base: float = 10.0
    backoff_max: float = 300.0
    healthy_reset: float = 600.0  # a problem back within this of its incident closing climbs a rung
    recovery_hold: float = 30.0  # absent this long, the incident closes
    maintenance_until: float = 0.0
    restartable: frozenset[str] = frozenset({"evolution", "dify"})  # services with an L3 executor
    # Unanswered customers wait this long before their first repair, so that a probe cycle can show
    # whether a whole service is down (then they are symptoms, and contacts keep their conversations).
    contact_grace: float = 0.0
    # A notify URL is set: a page that reached nobody earlier (journaled `undelivered`) is sent again.
    pager: bool = True
    # After a verified restart of a target, its problems are start-up for this long (WATCHDOG_SETTLE_SECONDS).
    settle_seconds: float = 0.0

    def backoff(self, attempts: int) -> float:
        return float(min(self.backoff_max, self.backoff_base * 2.0 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class Incident:
    key: str
    service: str
    opened_at: float
    level: Level  # the next rung to try
    summary: str = ""
    instance: str = ""
    contact: str = ""
    attempts: int = 0
    paged: bool = False
    circuit_open: bool = False
    healthy_since: float | None = None
    closed_at: float | None = None
    kinds: tuple[str, ...] = ()  # the finding kinds seen while it was open


@dataclass(frozen=True)
class ActionRecord:
    incident: str
    kind: str
    level: Level
    target: str
    started_at: float
    finished_at: float | None
    result: str  # running | ok | failed | dry_run


@dataclass(frozen=True)
class PlannedAction:
    incident: str
    kind: str
    level: Level
    target: str
    reason: str
    dry_run: bool
    instance: str = ""
    service: str = ""
    subject: str = field(default="", repr=False)  # remoteJid for a session reset; never journaled


@dataclass
class Plan:
    opened: list[Incident] = field(default_factory=list)
    updated: list[Incident] = field(default_factory=list)
    closed: list[Incident] = field(default_factory=list)
    actions: list[PlannedAction] = field(default_factory=list)


class RecoveryPlanner:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def plan(
        self,
        problems: Sequence[Problem],
        incidents: Mapping[str, Incident],
        actions: Sequence[ActionRecord],
        now: float,
        recently_closed: Mapping[str, Incident] | None = None,
    ) -> Plan:
        plan = Plan()
        present = {p.key for p in problems}
        for key, incident in incidents.items():
            if key not in present:
                self._healing(incident, now, plan)
        budget = _Budget(actions, now, self.policy)
        holds = settle_holds(actions, self.policy.settle_seconds)
        for problem in problems:
            known = incidents.get(problem.key)
            if known is None and not problem.confirmed:
                continue  # a suspicion, not yet a fault: no incident, no notification
            if known is None:
                incident = self._open(problem, now, (recently_closed or {}).get(problem.key))
                plan.opened.append(incident)
            elif known.healthy_since is not None or not set(problem.kinds) <= set(known.kinds):
                kinds = tuple(sorted({*known.kinds, *problem.kinds}))
                incident = replace(known, healthy_since=None, kinds=kinds)
                plan.updated.append(incident)
            else:
                incident = known
            action = self._next(problem, incident, actions, now, budget, holds)
            if action is None:
                continue
            plan.actions.append(action)
            budget.take(action)
            after = replace(
                incident,
                attempts=incident.attempts + 1,
                level=_rung(problem, Level(min(Level.HUMAN, action.level + 1))),
                paged=incident.paged or action.kind == PAGE,
                circuit_open=incident.circuit_open or action.kind == PAGE,
            )
            _upsert(plan, after)
        return plan

    def _open(self, problem: Problem, now: float, previous: Incident | None) -> Incident:
        start = problem.start
        fresh = Incident(
            problem.key, problem.service, now, start, problem.summary, problem.instance, problem.contact
        )
        fresh = replace(fresh, kinds=tuple(sorted(problem.kinds)))
        if previous is not None and previous.kinds and not set(previous.kinds) & set(problem.kinds):
            previous = None  # another fault on the same target (a 500 burst, then a dead processor)
        closed_at = previous.closed_at if previous is not None else None
        recently = closed_at is not None and now - closed_at < self.policy.healthy_reset
        if previous is not None and previous.paged and recently:
            # A person was paged and the fault is flapping: keep the circuit open, do not page again.
            return replace(fresh, level=Level.HUMAN, paged=True, circuit_open=True)
        if previous is not None and previous.closed_at is not None and previous.attempts:
            back_after = now - previous.closed_at
            if back_after < self.policy.backoff(previous.attempts):
                start = Level.HUMAN  # the same fault back within the cooldown: a person looks
            elif back_after < self.policy.healthy_reset:
                start = Level(min(Level.HUMAN, max(start, previous.level)))  # back soon: climb a rung
        return replace(fresh, level=_rung(problem, start))

    def _healing(self, incident: Incident, now: float, plan: Plan) -> None:
        if incident.healthy_since is None:
            plan.updated.append(replace(incident, healthy_since=now))
        elif now - incident.healthy_since >= self.policy.recovery_hold:
            plan.closed.append(replace(incident, closed_at=now))

    def _next(
        self,
        problem: Problem,
        incident: Incident,
        actions: Sequence[ActionRecord],
        now: float,
        budget: _Budget,
        holds: Mapping[str, float],
    ) -> PlannedAction | None:
        policy = self.policy
        if policy.mode == "off" or now < policy.maintenance_until:
            return None
        if any(holds.get(target, 0.0) > now for target in repair_targets(problem)):
            return None  # the repaired target warming up (settle window), not the fault back
        if problem.start >= Level.INSTANCE and not problem.confirmed:
            return None  # force needs proof: wait for the next cycles or a second signal
        mine = [a for a in actions if a.incident == incident.key and a.kind != ACK]
        # the latest start; among equal starts the last journaled (actions come in journal order)
        last = max(reversed(mine), key=lambda a: a.started_at, default=None)
        if incident.circuit_open:
            return self._page_again(problem, incident, last, now)
        if problem.may_be_symptom and now - incident.opened_at < policy.contact_grace:
            return None
        if last is not None:
            if last.result == RUNNING:
                return None
            waited = now - (last.finished_at or last.started_at)
            if last.result != FAILED and waited < policy.backoff(incident.attempts):
                return None  # give the last repair time to show its effect
        level = _rung(problem, incident.level)
        if level == Level.SERVICE and problem.service not in policy.restartable:
            level = Level.HUMAN
        target = _target(problem, level)
        reason = f"{', '.join(problem.kinds)} on {problem.key}"
        if level < Level.HUMAN:
            if budget.cooling(target, now):
                return None  # another incident just acted on the same target
            exhausted = budget.exhausted(target, level)
            if exhausted:
                level, target, reason = Level.HUMAN, "on-call", f"{reason}; {exhausted}"
        if level == Level.HUMAN:
            if incident.paged:
                return None
            return PlannedAction(incident.key, PAGE, Level.HUMAN, "on-call", reason, False, problem.instance)
        kind = {
            Level.CONTACT: RESET_SESSION,
            Level.INSTANCE: RESTART_INSTANCE,
            Level.SERVICE: RESTART_CONTAINER,
        }
        return PlannedAction(
            incident.key,
            kind[level],
            level,
            target,
            reason,
            policy.mode == "dry-run",
            problem.instance,
            problem.service,
            problem.subject if level == Level.CONTACT else "",
        )

    def _page_again(
        self, problem: Problem, incident: Incident, last: ActionRecord | None, now: float
    ) -> PlannedAction | None:
        """Behind an open circuit nothing acts, except a page that could not be delivered: it is tried
        again after the backoff delay (doubling to 5 min), until on-call has it. One that reached nobody
        (`undelivered`) is sent again only once there is a pager (a restart with WATCHDOG_NOTIFY_URLS)."""
        retry = {FAILED, UNDELIVERED} if self.policy.pager else {FAILED}
        if last is None or last.kind != PAGE or last.result not in retry:
            return None
        if now - (last.finished_at or last.started_at) < self.policy.backoff(incident.attempts):
            return None
        reason = f"{', '.join(problem.kinds)} on {problem.key}; the last page was not delivered"
        return PlannedAction(incident.key, PAGE, Level.HUMAN, "on-call", reason, False, problem.instance)


def settle_holds(actions: Sequence[ActionRecord], settle_seconds: float) -> dict[str, float]:
    """Target -> the end of its settle window: its last verified repair (a restart, or a contact's session
    reset, which the sessions probe may not see at once) plus `settle_seconds`."""
    holds: dict[str, float] = {}
    for action in actions:
        if action.kind in REPAIRS and action.result == OK and action.finished_at is not None:
            until = action.finished_at + settle_seconds
            holds[action.target] = max(until, holds.get(action.target, until))
    return holds


def _rung(problem: Problem, level: Level) -> Level:
    """A contact's session fault is not repaired by restarting its instance (that does not reset bot
    sessions) nor a service: after L1 comes a person."""
    if problem.start == Level.CONTACT and level > Level.CONTACT:
        return Level.HUMAN
    return level


def _target(problem: Problem, level: Level) -> str:
    if level == Level.CONTACT:
        return f"contact:{problem.instance}:{problem.contact}"
    if level == Level.INSTANCE and problem.instance:
        return f"instance:{problem.instance}"
    if level <= Level.SERVICE:
        return f"service:{problem.service}"
    return "on-call"


def _upsert(plan: Plan, incident: Incident) -> None:
    for bucket in (plan.opened, plan.updated):
        for i, existing in enumerate(bucket):
            if existing.key == incident.key:
                bucket[i] = incident
                return
    plan.updated.append(incident)


class _Budget:
    """Restarts in the last hour, per target and overall, plus the per-target cooldown."""

    def __init__(self, actions: Sequence[ActionRecord], now: float, policy: Policy) -> None:
        self.policy = policy
        self.recent = [a for a in actions if now - a.started_at < 3600]

    def take(self, action: PlannedAction) -> None:
        self.recent.append(
            ActionRecord(action.incident, action.kind, action.level, action.target, 1e18, None, RUNNING)
        )

    def cooling(self, target: str, now: float) -> bool:
        on_target = [a for a in self.recent if a.target == target]
        if any(a.result == RUNNING for a in on_target):
            return True
        done = [a.finished_at for a in on_target if a.finished_at is not None]
        return bool(done) and now - max(done) < self.policy.backoff(len(on_target))

    def exhausted(self, target: str, level: Level) -> str:
        if level < Level.INSTANCE:
            return ""
        mine = sum(1 for a in self.recent if a.kind in RESTARTS and a.target == target)
        if mine >= self.policy.restarts_per_hour:
            return f"restart budget for {target} spent ({mine} in the last hour)"
        total = sum(1 for a in self.recent if a.kind in RESTARTS)
        if total >= self.policy.global_restarts_per_hour:
            return f"global restart budget spent ({total} in the last hour)"
        return ""
