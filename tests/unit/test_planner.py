"""The recovery ladder with a fake clock and a real (in-memory) journal: every rung and guardrail."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.clock import FakeClock
from watchdog.model import Finding, Severity
from watchdog.recovery.attribution import Attribution
from watchdog.recovery.journal import Journal
from watchdog.recovery.planner import (
    PAGE,
    RESET_SESSION,
    RESTART_CONTAINER,
    RESTART_INSTANCE,
    RESTARTS,
    PlannedAction,
    Policy,
    RecoveryPlanner,
)
from watchdog.recovery.problems import Level, Problem, problems_from, repair_targets

JID = "5511987600001@s.whatsapp.net"
STALE = Problem("contact:loja:c-1", "evolution", Level.CONTACT, "loja", "c-1", JID, ("stale_conversation",))
DOWN = Problem("instance:loja", "evolution", Level.INSTANCE, "loja", kinds=("instance_disconnected",))
DIFY = Problem("service:dify", "dify", Level.SERVICE, kinds=("dify_down",))


class World:
    """Plans each tick against the journal and 'runs' the actions at once with a chosen result."""

    def __init__(self, clock: FakeClock, policy: Policy | None = None) -> None:
        self.clock = clock
        self.policy = policy or Policy(mode="auto")
        self.planner = RecoveryPlanner(self.policy)
        self.journal = Journal(":memory:")
        self.log: list[tuple[float, PlannedAction]] = []

    def tick(self, *problems: Problem, result: Callable[[PlannedAction], str] = lambda a: "ok") -> list[str]:
        now = self.clock.time()
        plan = self.journal.plan(self.planner, problems, now)
        for action in plan.actions:
            action_id = self.journal.started(action, now)
            self.journal.finished(action_id, "dry_run" if action.dry_run else result(action), "", now)
            self.log.append((now, action))
        return [a.kind for a in plan.actions]

    def run(self, seconds: float, *problems: Problem, step: float = 1.0, **kw: object) -> list[str]:
        kinds: list[str] = []
        end = self.clock.time() + seconds
        while self.clock.time() < end:
            kinds += self.tick(*problems, **kw)  # type: ignore[arg-type]
            self.clock.advance(step)
        return kinds


def test_the_full_ladder_with_backoff_between_rungs(clock: FakeClock) -> None:
    world = World(clock)
    assert world.tick(DOWN) == [RESTART_INSTANCE]
    assert world.log[0][1].target == "instance:loja"
    assert world.run(9.5, DOWN, step=0.5) == []  # 10 s to show its effect
    clock.advance(0.5)
    assert world.tick(DOWN) == [RESTART_CONTAINER]
    assert world.log[-1][1].target == "service:evolution"
    assert world.run(19, DOWN) == []  # then 20 s
    clock.advance(1)
    assert world.tick(DOWN) == [PAGE]
    assert world.run(3 * 3600, DOWN, step=60) == []  # the circuit is open: nothing more, ever
    incident = world.journal.open_incidents()["instance:loja"]
    assert incident.paged and incident.circuit_open


def test_a_session_fault_goes_from_l1_to_a_person_never_to_a_restart(clock: FakeClock) -> None:
    """An instance restart does not reset bot sessions, a service restart is not one contact's repair."""
    world = World(clock)
    assert world.tick(STALE) == [RESET_SESSION]
    assert world.log[0][1].subject == JID and world.log[0][1].target == "contact:loja:c-1"
    assert world.run(9.5, STALE, step=0.5) == []  # 10 s to show its effect
    clock.advance(0.5)
    assert world.tick(STALE) == [PAGE]
    assert world.run(3 * 3600, STALE, step=60) == []
    assert world.journal.open_incidents()["contact:loja:c-1"].level == Level.HUMAN
    failed = World(FakeClock())
    assert failed.tick(STALE, result=lambda a: "failed") == [RESET_SESSION]
    assert failed.tick(STALE) == [PAGE]


def test_a_contact_waits_out_the_grace_before_its_first_repair(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", contact_grace=5))
    assert world.run(5, STALE) == []
    assert world.tick(STALE) == [RESET_SESSION]
    assert World(FakeClock(), Policy(mode="auto", contact_grace=5)).tick(DOWN) == [RESTART_INSTANCE]
    crowded = replace(DOWN, kinds=("instance_stalled",))
    assert World(FakeClock(), Policy(mode="auto", contact_grace=5)).tick(crowded) == []


def test_a_failed_action_escalates_at_once(clock: FakeClock) -> None:
    world = World(clock)
    assert world.tick(DOWN, result=lambda a: "failed") == [RESTART_INSTANCE]
    assert world.tick(DOWN, result=lambda a: "failed") == [RESTART_CONTAINER]
    assert world.tick(DOWN) == [PAGE]


def test_recovery_closes_the_incident_after_the_hold_and_a_quick_return_pages(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", recovery_hold=30))
    world.tick(STALE)
    assert world.run(29, step=1) == [] and "contact:loja:c-1" in world.journal.open_incidents()
    world.run(2, step=1)
    assert world.journal.open_incidents() == {}
    assert world.tick(STALE) == [PAGE]  # back within the 10 s cooldown: a person looks


def test_a_return_within_ten_minutes_climbs_a_rung_and_later_starts_over(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", recovery_hold=30))
    world.tick(DOWN)
    world.run(31)  # healthy: closed
    clock.advance(60)
    assert world.tick(DOWN) == [RESTART_CONTAINER]
    world.run(31)
    clock.advance(601)
    assert world.tick(DOWN) == [RESTART_INSTANCE]
    contact = World(FakeClock(), Policy(mode="auto", recovery_hold=30))  # a contact's next rung: a person
    contact.tick(STALE)
    contact.run(31)
    contact.clock.advance(60)
    assert contact.tick(STALE) == [PAGE]


def test_dry_run_journals_what_it_would_do_and_off_does_nothing(clock: FakeClock) -> None:
    dry = World(clock, Policy(mode="dry-run"))
    assert dry.tick(DOWN) == [RESTART_INSTANCE]
    assert dry.log[0][1].dry_run and dry.journal.recent_actions(0)[0].result == "dry_run"
    off = World(FakeClock(), Policy(mode="off"))
    assert off.run(600, DOWN, step=10) == []
    assert "instance:loja" in off.journal.open_incidents()  # still tracked and reported


def test_maintenance_silences_actions_until_it_ends(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", maintenance_until=clock.time() + 120))
    assert world.run(120, DOWN, step=10) == []
    assert world.tick(DOWN) == [RESTART_INSTANCE]


def test_restart_budget_per_target_pages_when_spent(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", restarts_per_hour=2, recovery_hold=30, healthy_reset=60))
    kinds = []
    for _ in range(3):  # the instance drops, is restarted, recovers, and drops again
        kinds += world.tick(DOWN)
        world.run(31)
        clock.advance(61)
    assert kinds == [RESTART_INSTANCE, RESTART_INSTANCE, PAGE]
    page = world.log[-1][1]
    assert "restart budget for instance:loja spent (2 in the last hour)" in page.reason


def test_global_budget_across_instances(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", global_restarts_per_hour=3))
    downs = [replace(DOWN, key=f"instance:i{n}", instance=f"i{n}") for n in range(5)]
    kinds = world.tick(*downs)
    assert kinds.count(RESTART_INSTANCE) == 3 and kinds.count(PAGE) == 2


def test_no_container_restarter_goes_from_instance_to_human(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", restartable=frozenset()))
    assert world.tick(DOWN, result=lambda a: "failed") == [RESTART_INSTANCE]
    assert world.tick(DOWN) == [PAGE]
    assert World(FakeClock(), Policy(mode="auto", restartable=frozenset())).tick(DIFY) == [PAGE]


def test_an_action_cut_off_by_a_crash_is_retried_at_its_rung_after_the_cooldown(clock: FakeClock) -> None:
    world = World(clock)
    plan = world.journal.plan(world.planner, [DOWN], clock.time())
    assert [a.kind for a in plan.actions] == [RESTART_INSTANCE]
    world.journal.started(plan.actions[0], clock.time())  # ... and the watchdog dies here
    clock.advance(2)
    assert world.journal.resume(clock.time()) == 1
    assert world.journal.open_incidents()["instance:loja"].level == Level.INSTANCE
    assert world.run(9.5, DOWN, step=0.5) == []  # not repeated inside its cooldown
    clock.advance(0.5)
    assert world.tick(DOWN) == [RESTART_INSTANCE]  # the same rung again, not a climb caused by the crash
    assert world.journal.resume(clock.time()) == 0  # nothing was running: levels stay as they are
    assert world.journal.open_incidents()["instance:loja"].level == Level.SERVICE


def test_an_action_still_running_blocks_its_own_target_only(clock: FakeClock) -> None:
    """Actions run on their own: while loja's restart runs (journaled, not finished) nothing more acts
    on loja, however long it takes, and another target is repaired as usual."""
    world = World(clock)
    plan = world.journal.plan(world.planner, [DOWN], clock.time())
    world.journal.started(plan.actions[0], clock.time())  # still running
    other = replace(STALE, key="contact:suporte:c-2", instance="suporte", contact="c-2")
    assert world.run(600, DOWN, other, step=5)[0] == RESET_SESSION  # the contact climbs its own ladder
    assert world.log[0][1].target == "contact:suporte:c-2"
    assert "instance:loja" not in {action.target for _, action in world.log}


def test_an_action_interrupted_by_shutdown_is_judged_as_after_a_crash(clock: FakeClock) -> None:
    world = World(clock)
    plan = world.journal.plan(world.planner, [DOWN], clock.time())
    action_id = world.journal.started(plan.actions[0], clock.time())
    clock.advance(2)
    assert world.journal.interrupt(action_id, "cut off by shutdown after 2s", clock.time())
    assert not world.journal.interrupt(action_id, "again", clock.time())  # only a running one
    assert world.journal.resume(clock.time()) == 0  # nothing left for the next start to judge
    assert world.journal.open_incidents()["instance:loja"].level == Level.INSTANCE
    assert world.run(9.5, DOWN, step=0.5) == []
    clock.advance(0.5)
    assert world.tick(DOWN) == [RESTART_INSTANCE]


def test_a_page_that_was_not_delivered_is_sent_again_with_backoff_until_it_is(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", restartable=frozenset()))
    undelivered: Callable[[PlannedAction], str] = lambda a: "failed"  # noqa: E731
    assert world.tick(DOWN, result=undelivered) == [RESTART_INSTANCE]
    assert world.tick(DOWN, result=undelivered) == [PAGE]
    assert world.run(19, DOWN, result=undelivered) == []  # behind the circuit, after a backoff of 20 s
    clock.advance(1)
    assert world.tick(DOWN, result=undelivered) == [PAGE]
    assert world.run(39, DOWN) == []
    clock.advance(1)
    assert world.tick(DOWN) == [PAGE]  # delivered at last ...
    assert world.run(3 * 3600, DOWN, step=60) == []  # ... and never again: the circuit stays open


def test_another_fault_on_a_recently_repaired_target_starts_at_its_own_rung(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", recovery_hold=5))
    burst = Problem("service:evolution", "evolution", Level.SERVICE, kinds=("evolution_down",))
    quiet = replace(burst, kinds=("inbound_stopped",))
    assert world.tick(burst) == [RESTART_CONTAINER]
    world.run(30, step=1)  # healthy: the incident closes
    assert world.journal.open_incidents() == {}
    assert world.tick(quiet) == [RESTART_CONTAINER]  # not a page: it is not the same fault back
    world.run(30, step=1)
    assert world.tick(quiet) == [PAGE]  # the same fault back soon after its repair: a person looks


def test_two_incidents_on_one_target_restart_it_once(clock: FakeClock) -> None:
    world = World(clock)
    other = replace(DOWN, key="instance:loja-2")  # same instance, another finding key
    assert world.tick(DOWN, other) == [RESTART_INSTANCE]


def f(kind: str, target: str, subject: str = "", **evidence: object) -> Finding:
    return Finding(kind, target, Severity.CRITICAL, kind, evidence, subject=subject)


def once(*findings: Finding) -> dict[str, Problem]:
    """One cycle of attribution with no history (each suspect seen once)."""
    attribution = Attribution(confirm_cycles=3, dify_containers=("docker-api-1",))
    return {p.key: p for p in attribution.cycle(findings, {}, 0.0)}


def test_problems_from_findings_and_symptoms_are_inhibited() -> None:
    findings = [
        f("stalled_contact", "evolution:loja", JID, contact="c-1"),
        f("stale_conversation", "evolution:loja", JID, contact="c-1"),
        f("stalled_contact", "evolution:suporte", JID, contact="c-2"),
        f("instance_disconnected", "evolution:suporte"),
        f("dify_silent", "container:docker-api-1"),
        f("error_burst", "container:docker-api-1", rule="worker_timeout", container="docker-api-1"),
        f("error_burst", "container:evolution_api", rule="error", container="evolution_api"),
        f("logged_out", "evolution:vendas"),
        f("session_paused", "evolution:loja", JID, contact="c-3"),
    ]
    raw = {p.key: p for p in problems_from(findings, dify_containers=("docker-api-1",))}
    assert raw["service:dify"].kinds == ("dify_silent", "error_burst")
    assert set(raw) == {
        "contact:loja:c-1",
        "contact:suporte:c-2",
        "instance:suporte",
        "service:dify",
        "human:logged_out:evolution:vendas",
    }
    problems = once(*findings)
    # Dify's log alone names no root cause; suporte's socket (probe + its customer unanswered) is confirmed
    # and its contact is a symptom; loja's contact is repaired on its own.
    assert set(problems) == {"contact:loja:c-1", "instance:suporte", "human:logged_out:evolution:vendas"}
    assert problems["instance:suporte"].confirmed
    assert problems["contact:loja:c-1"].kinds == ("stale_conversation", "stalled_contact")
    evolution_down = once(*findings, f("evolution_down", "evolution"))
    assert evolution_down["service:evolution"].confirmed  # probe + customers unanswered
    assert not [p for p in evolution_down.values() if p.start == Level.CONTACT]
    # a dead message processor: an instance restart cannot revive it, the process restart does
    (quiet,) = problems_from([f("inbound_stopped", "evolution:loja")])
    assert (quiet.key, quiet.start) == ("service:evolution", Level.SERVICE)


keys = [STALE, DOWN, DIFY, replace(DOWN, key="instance:x", instance="x")]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sets(st.integers(0, 3)), st.sampled_from(["ok", "failed"]), st.integers(1, 400)),
        min_size=1,
        max_size=60,
    )
)
def test_random_sequences_never_exceed_budgets_or_act_inside_a_cooldown(
    steps: list[tuple[set[int], str, int]],
) -> None:
    clock = FakeClock()
    policy = Policy(mode="auto", restarts_per_hour=3, global_restarts_per_hour=5, recovery_hold=30)
    world = World(clock, policy)
    for present, result, advance in steps:
        world.tick(*(keys[i] for i in sorted(present)), result=lambda a, r=result: r)  # type: ignore[misc]
        clock.advance(advance)
    restarts = [(t, a) for t, a in world.log if a.kind in RESTARTS]
    for t, _ in restarts:
        window = [a for u, a in restarts if t <= u < t + 3600]
        assert len(window) <= policy.global_restarts_per_hour
        for target in {a.target for a in window}:
            assert sum(a.target == target for a in window) <= policy.restarts_per_hour
    by_target: dict[str, list[float]] = {}
    for t, a in world.log:
        if a.kind != PAGE:
            by_target.setdefault(a.target, []).append(t)
    for times in by_target.values():
        assert all(b - a >= policy.backoff_base for a, b in itertools.pairwise(times))
    for incident in world.journal.history(limit=1000):  # at most one delivered page per incident
        assert sum(a["kind"] == PAGE and a["result"] == "ok" for a in incident["actions"]) <= 1


def test_a_permanent_fault_pages_once_and_stays_within_budget_for_three_hours(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", restarts_per_hour=3))
    kinds = world.run(3 * 3600, DOWN, step=5, result=lambda a: "ok")
    assert kinds.count(PAGE) == 1
    assert sum(k in RESTARTS for k in kinds) <= 3
    flapping = World(FakeClock(), Policy(mode="auto", restarts_per_hour=3, recovery_hold=10))
    pages = 0
    restarts = 0
    for _ in range(3 * 60):  # down for a minute, healthy for a minute, for three hours
        kinds = flapping.run(60, DOWN, step=5) + flapping.run(60, step=5)
        pages += kinds.count(PAGE)
        restarts += sum(k in RESTARTS for k in kinds)
    assert restarts <= 3 * 3 and pages == 1  # flapping after the page: the circuit stays open, no flood


def test_stalled_instances_are_session_faults_unless_something_else_is_down() -> None:
    stalled = f("instance_stalled", "evolution:loja", contacts=3)
    down = f("dify_down", "dify")
    assert once(stalled) == {}  # customers stalled on an open instance: their sessions, not the instance
    assert set(once(stalled, down)) == {"service:dify"} and once(stalled, down)["service:dify"].confirmed
    disconnected = f("instance_disconnected", "evolution:loja")
    assert set(once(stalled, disconnected, down)) == {"instance:loja", "service:dify"}


def test_a_dify_app_or_model_failure_and_a_wrong_setting_go_to_a_person_never_a_restart() -> None:
    def start(kind: str, **evidence: str) -> list[tuple[str, Level]]:
        finding = Finding(kind, "dify", Severity.CRITICAL, "canary: Run failed", dict(evidence))
        return [(p.key, p.start) for p in problems_from([finding])]

    assert start("dify_canary_failed", failure="app") == [("human:dify_canary_failed:dify", Level.HUMAN)]
    assert start("dify_canary_failed", failure="model") == [("human:dify_canary_failed:dify", Level.HUMAN)]
    assert start("dify_misconfigured") == [("human:dify_misconfigured:dify", Level.HUMAN)]
    # a canary that stalls (Dify hangs) is Dify's own fault: its restart is the repair
    assert start("dify_canary_failed", failure="stalled") == [("service:dify", Level.SERVICE)]
    assert start("dify_canary_failed", failure="slow") == []  # answered within the stall time: reported


EVO = Problem("service:evolution", "evolution", Level.SERVICE, kinds=("evolution_down",))
pool = [STALE, DOWN, DIFY, EVO, replace(DOWN, key="instance:x", instance="x")]
steps_strategy = st.lists(
    st.tuples(
        st.lists(st.tuples(st.integers(0, len(pool) - 1), st.booleans()), max_size=5),
        st.sampled_from(["ok", "failed"]),
        st.sampled_from([1, 5, 15, 15, 15, 60, 400]),
    ),
    min_size=1,
    max_size=60,
)


def _drive(steps: list[tuple[list[tuple[int, bool]], str, int]], policy: Policy) -> World:
    """Run `steps` (problems present with their confirmed flag, the actions' result, time to the next
    tick), checking each tick's actions against the problems it was given."""
    world = World(FakeClock(), policy)
    for present, result, advance in steps:
        problems = {pool[i].key: replace(pool[i], confirmed=confirmed) for i, confirmed in present}
        before = len(world.log)
        world.tick(*problems.values(), result=lambda a, r=result: r)  # type: ignore[misc]
        for _, action in world.log[before:]:
            problem = problems[action.incident]
            if action.kind in RESTARTS or problem.start >= Level.INSTANCE:
                # no L2 or L3 (nor a page of a problem that starts there) without confirmation
                assert problem.confirmed, action
        world.clock.advance(advance)
    return world


@settings(max_examples=200, deadline=None)
@given(steps_strategy)
def test_no_instance_or_service_restart_without_confirmation(
    steps: list[tuple[list[tuple[int, bool]], str, int]],
) -> None:
    world = _drive(steps, Policy(mode="auto", recovery_hold=30, settle_seconds=60))
    for _, action in world.log:  # and a session fault is never answered with a restart
        if action.incident.startswith("contact:"):
            assert action.kind in (RESET_SESSION, PAGE)


@settings(max_examples=200, deadline=None)
@given(steps_strategy)
def test_no_page_after_a_verified_repair_inside_the_settle_window(
    steps: list[tuple[list[tuple[int, bool]], str, int]],
) -> None:
    settle = 60.0
    world = _drive(steps, Policy(mode="auto", recovery_hold=30, settle_seconds=settle))
    repairs = [(t, a.target) for t, a in world.log if a.kind != PAGE]
    results = {(r.started_at, r.target): r.result for r in world.journal.recent_actions(0)}
    verified = [(t, target) for t, target in repairs if results.get((t, target)) == "ok"]
    for t, action in world.log:
        if action.kind != PAGE:
            continue
        targets = repair_targets(next(p for p in pool if p.key == action.incident))
        assert not [v for v, target in verified if target in targets and v < t < v + settle], action
