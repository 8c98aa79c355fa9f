"""Root cause before force: the issue's cases at the shipped defaults (probe every 15 s, stall 60 s, canary
off, auto, 3 confirming cycles, 60 s settle), one cycle of findings at a time through attribution, the
planner and an in-memory journal, with a fake clock."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_planner import World
from watchdog.clock import FakeClock
from watchdog.model import Finding, Severity
from watchdog.recovery.attribution import (
    DIFY,
    EVOLUTION,
    INSTANCE,
    Attribution,
    ConfirmationTracker,
    Seen,
    attribute,
    grounded,
    root,
)
from watchdog.recovery.planner import (
    PAGE,
    RESET_SESSION,
    RESTART_CONTAINER,
    RESTART_INSTANCE,
    RESTARTS,
    PlannedAction,
    Policy,
    settle_holds,
)
from watchdog.recovery.problems import Level, Problem, problems_from, repair_targets

PROBE = 15.0  # WATCHDOG_PROBE_INTERVAL_SECONDS
STALL = 60.0  # WATCHDOG_STALL_SECONDS
SHIPPED = Policy(
    mode="auto",
    recovery_hold=60,
    contact_grace=PROBE + 4 * 5,  # as the engine sets it: one probe cycle with its deadlines
    settle_seconds=60,
)
EVOLUTION_LOG = "evolution_api"
DIFY_LOG = "docker-api-1"
Action = tuple[str, str]  # (kind, target)


def f(kind: str, target: str, subject: str = "", **evidence: object) -> Finding:
    return Finding(kind, target, Severity.CRITICAL, kind, evidence, subject=subject)


def jid(contact: str) -> str:
    return f"55119876{contact[-4:].zfill(5)}@s.whatsapp.net"


def stalled(contact: str, instance: str = "loja") -> Finding:
    return f("stalled_contact", f"evolution:{instance}", jid(contact), contact=contact)


def session(kind: str, contact: str, instance: str = "loja") -> Finding:
    return f(kind, f"evolution:{instance}", jid(contact), contact=contact)


DIFY_TIMEOUT = f("dify_down", "dify", probes=["liveness"], errors=["timeout"])
EVOLUTION_500 = f("evolution_down", "evolution", probes=["instances"], errors=["http_500"])
# Evolution printing Dify's error bodies (DifyService): Dify evidence, in Evolution's log
DIFY_ERRORS_IN_EVOLUTION_LOG = f(
    "error_burst", f"container:{EVOLUTION_LOG}", rule="http_500", container=EVOLUTION_LOG, service="dify"
)
EVOLUTION_ERRORS = f(
    "error_burst", f"container:{EVOLUTION_LOG}", rule="http_500", container=EVOLUTION_LOG, service="evolution"
)
DIFY_QUIET = f("dify_silent", f"container:{DIFY_LOG}", silent_seconds=129)


class Loop:
    """The engine's turn without its I/O: settle holds from the journal, attribution, plan, act."""

    def __init__(self, clock: FakeClock, policy: Policy = SHIPPED, confirm: int = 3) -> None:
        self.clock = clock
        self.world = World(clock, policy)
        self.attribution = Attribution(confirm_cycles=confirm, dify_containers=(DIFY_LOG,))
        self.problems: list[Problem] = []
        self.start = clock.time()

    def cycle(
        self, *findings: Finding, result: Callable[[PlannedAction], str] = lambda a: "ok"
    ) -> list[Action]:
        now = self.clock.time()
        journal = self.world.journal
        holds = settle_holds(journal.recent_actions(now - 3600), self.world.policy.settle_seconds)
        self.problems = self.attribution.cycle(findings, holds, now)
        before = len(self.world.log)
        self.world.tick(*self.problems, result=result)
        self.clock.advance(PROBE)
        return [(a.kind, a.target) for _, a in self.world.log[before:]]

    def run(self, cycles: int, findings: Callable[[float], Iterable[Finding]]) -> list[tuple[float, Action]]:
        """`findings(t)`: what the cycle at t seconds from the loop's start shows."""
        done: list[tuple[float, Action]] = []
        for _ in range(cycles):
            t = self.clock.time() - self.start
            done += [(t, action) for action in self.cycle(*findings(t))]
        return done


def test_dify_forgetting_conversations_is_l1_per_contact_and_nothing_else(clock: FakeClock) -> None:
    loop = Loop(clock)
    repaired: set[str] = set()

    def findings(t: float) -> list[Finding]:
        shown = [DIFY_QUIET] if t >= 90 else []  # "no log line for 129 s": Dify's log alone
        for contact in ("c-0001", "c-0002"):
            if contact not in repaired:
                shown.append(session("stale_conversation", contact))
                if t >= STALL:
                    shown.append(stalled(contact))
        return shown

    done: list[tuple[float, Action]] = []
    for _ in range(20):  # five minutes
        step = loop.run(1, findings)
        repaired |= {target.rpartition(":")[2] for _, (kind, target) in step if kind == RESET_SESSION}
        done += step
    assert [action for _, action in done] == [
        (RESET_SESSION, "contact:loja:c-0001"),
        (RESET_SESSION, "contact:loja:c-0002"),
    ]
    assert done[0][0] == 3 * PROBE  # after the contact grace (one probe cycle with its deadlines)


def test_dify_hanging_restarts_dify_only_then_resets_the_sessions_left_busy(clock: FakeClock) -> None:
    loop = Loop(clock)
    restarted: list[float] = []
    reset: list[Action] = []

    def findings(t: float) -> list[Finding]:
        shown = [session("session_wedged", "c-0001")] if t >= STALL and not reset else []
        if not restarted:
            shown += [DIFY_TIMEOUT, DIFY_ERRORS_IN_EVOLUTION_LOG, stalled("c-0001"), stalled("c-0002")]
            shown += (
                [stalled("c-0003"), f("instance_stalled", "evolution:loja", contacts=3)] if t >= STALL else []
            )
        elif t - restarted[0] <= PROBE:
            shown += [DIFY_TIMEOUT, DIFY_ERRORS_IN_EVOLUTION_LOG]  # warming up, the burst still in its window
        return shown

    done: list[tuple[float, Action]] = []
    for _ in range(20):
        step = loop.run(1, findings)
        restarted += [t for t, (kind, _) in step if kind == RESTART_CONTAINER][:1]
        reset += [a for _, a in step if a[0] == RESET_SESSION]
        done += step
    actions = [action for _, action in done]
    # probe timing out + Dify's errors in Evolution's log: two signals, confirmed in the first cycle
    assert actions[0] == (RESTART_CONTAINER, "service:dify")
    assert (RESTART_CONTAINER, "service:evolution") not in actions
    assert not [a for a in actions if a[0] in (RESTART_INSTANCE, PAGE)]
    assert actions[1:] == [(RESET_SESSION, "contact:loja:c-0001")]  # the session the hang left busy


def test_an_image_wedging_one_session_is_l1_for_that_contact(clock: FakeClock) -> None:
    loop = Loop(clock)
    repaired: list[Action] = []

    def findings(t: float) -> list[Finding]:
        if repaired or t < STALL:
            return []
        return [session("session_wedged", "c-0001"), stalled("c-0001")]

    for _ in range(16):
        repaired += [a for _, a in loop.run(1, findings)]
    assert repaired == [(RESET_SESSION, "contact:loja:c-0001")]
    assert [(a.kind, a.target) for _, a in loop.world.log] == repaired


def test_customers_stalled_on_an_open_instance_are_session_faults_not_an_instance_fault(
    clock: FakeClock,
) -> None:
    loop = Loop(clock)
    waiting = {"c-0001", "c-0002", "c-0003"}

    def findings(t: float) -> list[Finding]:
        crowd = [stalled(c) for c in sorted(waiting)]  # a verified reset closes the contact's wait
        return [*crowd, f("instance_stalled", "evolution:loja", contacts=3)] if len(crowd) >= 3 else crowd

    done: list[tuple[float, Action]] = []
    for _ in range(12):
        step = loop.run(1, findings)
        waiting -= {target.rpartition(":")[2] for _, (_, target) in step}
        done += step
    assert sorted(a for _, a in done) == [(RESET_SESSION, f"contact:loja:c-000{n}") for n in (1, 2, 3)]


def test_a_closed_socket_is_l2_after_confirmation_and_not_followed_by_l3(clock: FakeClock) -> None:
    loop = Loop(clock)
    closed = f("instance_disconnected", "evolution:loja", state="close")
    connecting = f("instance_disconnected", "evolution:loja", state="connecting")
    repaired_at: list[float] = []

    def findings(t: float) -> list[Finding]:
        if not repaired_at:
            return [closed]
        return [connecting] if t - repaired_at[0] <= 2 * PROBE else []  # reconnecting after the restart

    done: list[tuple[float, Action]] = []
    for _ in range(20):
        step = loop.run(1, findings)
        repaired_at += [t for t, (kind, _) in step if kind == RESTART_INSTANCE][:1]
        done += step
    assert done == [(2 * PROBE, (RESTART_INSTANCE, "instance:loja"))]  # the third cycle confirms it
    assert loop.world.journal.open_incidents() == {}  # healthy for the hold: closed, nobody paged


def test_a_blip_shorter_than_the_confirmation_opens_nothing(clock: FakeClock) -> None:
    loop = Loop(clock)
    closed = f("instance_disconnected", "evolution:loja", state="connecting")
    assert loop.run(8, lambda t: [closed] if t < 2 * PROBE else []) == []
    assert loop.run(4, lambda t: [DIFY_TIMEOUT] if t == 0 else []) == []  # one probe failing once
    assert loop.world.journal.history() == []  # no incident, no notification


def test_after_a_verified_l2_the_fault_must_be_confirmed_again_after_the_settle_window(
    clock: FakeClock,
) -> None:
    loop = Loop(clock)
    closed = f("instance_disconnected", "evolution:loja", state="close")
    done = loop.run(12, lambda t: [closed])
    assert [a for _, a in done] == [
        (RESTART_INSTANCE, "instance:loja"),
        (RESTART_CONTAINER, "service:evolution"),
    ]
    l2, l3 = (t for t, _ in done)
    # 60 s of settle after the verified L2, then three cycles to confirm it again
    assert l3 - l2 >= SHIPPED.settle_seconds + 2 * PROBE


def test_evolution_answering_500_is_l3_and_its_warm_up_pages_nobody(clock: FakeClock) -> None:
    loop = Loop(clock)
    restarted: list[float] = []

    def findings(t: float) -> list[Finding]:
        if not restarted:
            return [EVOLUTION_500, EVOLUTION_ERRORS]
        return [EVOLUTION_500] if t - restarted[0] <= 2 * PROBE else []  # the first probes after it

    done: list[tuple[float, Action]] = []
    for _ in range(20):
        step = loop.run(1, findings)
        restarted += [t for t, (kind, _) in step if kind == RESTART_CONTAINER][:1]
        done += step
    assert [a for _, a in done] == [(RESTART_CONTAINER, "service:evolution")]
    alone = Loop(FakeClock())  # without the log corroborating: three failing cycles
    assert [t for t, _ in alone.run(4, lambda t: [EVOLUTION_500])] == [2 * PROBE]


def test_a_dify_app_failure_is_told_to_a_person_never_restarted(clock: FakeClock) -> None:
    loop = Loop(clock)
    app = f("dify_canary_failed", "dify", failure="app")
    done = loop.run(10, lambda t: [app, DIFY_ERRORS_IN_EVOLUTION_LOG])
    assert [a for _, a in done] == [(PAGE, "on-call")]


def test_dify_errors_in_evolutions_log_are_dify_evidence_and_never_restart_alone() -> None:
    (problem,) = problems_from([DIFY_ERRORS_IN_EVOLUTION_LOG], dify_containers=(DIFY_LOG,))
    assert problem.key == "service:dify" and not grounded(problem)
    assert Attribution(confirm_cycles=1).cycle([DIFY_ERRORS_IN_EVOLUTION_LOG, DIFY_QUIET], {}, 0.0) == []


def test_contacts_are_symptoms_only_once_their_service_is_confirmed_down(clock: FakeClock) -> None:
    attribution = Attribution(confirm_cycles=3)
    stale = session("stale_conversation", "c-0001")
    keys = [{p.key for p in attribution.cycle([DIFY_TIMEOUT, stale], {}, float(n))} for n in range(3)]
    assert keys == [
        {"service:dify", "contact:loja:c-0001"},
        {"service:dify", "contact:loja:c-0001"},
        {"service:dify"},  # confirmed on the third cycle: the contact is its symptom
    ]
    assert {p.key for p in attribution.cycle([DIFY_TIMEOUT, stalled("c-0002")], {}, 4.0)} == {"service:dify"}


def test_the_tracker_counts_consecutive_cycles_and_not_those_inside_a_settle_window() -> None:
    tracker = ConfirmationTracker()
    down = problems_from([f("instance_disconnected", "evolution:loja")])
    assert tracker.observe(down, {}, 0.0) == {"instance:loja": Seen(1)}
    assert tracker.observe(down, {}, 15.0) == {"instance:loja": Seen(2)}
    assert tracker.observe([], {}, 30.0) == {}  # absent once: it starts over
    assert tracker.observe(down, {}, 45.0) == {"instance:loja": Seen(1)}
    holds = {"service:evolution": 100.0}  # Evolution restarted: its instances settle with it
    assert tracker.observe(down, holds, 60.0) == {"instance:loja": Seen(0, settling=True)}
    assert tracker.observe(down, holds, 100.0) == {"instance:loja": Seen(1)}
    assert not attribute(down, {"instance:loja": Seen(0, True)}, confirm_cycles=1)[0].confirmed
    spaced = ConfirmationTracker(max_gap=2 * PROBE)
    assert spaced.observe(down, {}, 0.0) == spaced.observe(down, {}, 10 * PROBE) == {"instance:loja": Seen(1)}


findings_pool = [
    DIFY_TIMEOUT,
    EVOLUTION_500,
    f("instance_disconnected", "evolution:loja", state="close"),
    f("instance_stalled", "evolution:loja", contacts=3),
    stalled("c-0001"),
    session("session_wedged", "c-0002"),
    session("stale_conversation", "c-0003"),
    DIFY_ERRORS_IN_EVOLUTION_LOG,
    EVOLUTION_ERRORS,
    f("error_burst", f"container:{DIFY_LOG}", rule="worker_timeout", container=DIFY_LOG),
    DIFY_QUIET,
    f("inbound_stopped", "evolution:loja"),
    f("dify_canary_failed", "dify", failure="stalled"),
    f("dify_canary_failed", "dify", failure="app"),
    f("logged_out", "evolution:vendas"),
]
# The findings that are each service's own (non-log) evidence: nothing else may restart it.
OWN = {
    "service:evolution": {"evolution_down", "inbound_stopped", "instance_disconnected"},
    "instance:loja": {"instance_disconnected"},
    "service:dify": {"dify_down", "dify_canary_failed"},
}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sets(st.integers(0, len(findings_pool) - 1)),
            st.sampled_from(["ok", "failed"]),
            st.sampled_from([PROBE, PROBE, PROBE, 4 * PROBE]),
        ),
        min_size=1,
        max_size=50,
    )
)
def test_no_restart_of_a_component_that_the_attribution_did_not_name(
    steps: list[tuple[set[int], str, float]],
) -> None:
    clock = FakeClock()
    loop = Loop(clock)
    for present, result, wait in steps:
        shown = [findings_pool[i] for i in sorted(present)]
        before = len(loop.world.log)
        loop.cycle(*shown, result=lambda a, r=result: r)  # type: ignore[misc]
        clock.advance(wait - PROBE)
        named = {p.key: p for p in loop.problems}
        kinds = {x.kind for x in shown}
        for _, action in loop.world.log[before:]:
            if action.kind not in RESTARTS:
                continue
            problem = named[action.incident]
            assert problem.confirmed and root(problem) in (INSTANCE, EVOLUTION, DIFY)
            assert action.target in repair_targets(problem)
            assert kinds & OWN[action.target]  # never on log lines or unanswered customers alone
            if action.target == "service:evolution":
                assert kinds & OWN["service:evolution"]  # Dify's errors in Evolution's log never do
        for _, action in loop.world.log[before:]:  # a session fault: L1 or a person, nothing else
            if action.incident.startswith("contact:"):
                assert action.kind in (RESET_SESSION, PAGE)
    assert all(a.level != Level.INSTANCE or a.incident.startswith("instance:") for _, a in loop.world.log)


def test_several_customers_unanswered_ground_dify_errors_in_evolutions_log(clock: FakeClock) -> None:
    """Dify answering 500 on chat only: its probes pass; Evolution prints the error bodies and nobody is
    answered. Log plus customers are two sources: L3 Dify in the first turn, no session resets."""
    loop = Loop(clock)
    done = loop.run(
        4, lambda t: [DIFY_ERRORS_IN_EVOLUTION_LOG, stalled("c-0001"), stalled("c-0002", "suporte")]
    )
    assert [a for _, a in done] == [(RESTART_CONTAINER, "service:dify")]
    assert done[0][0] == 0


def test_customers_explained_by_their_own_evidence_do_not_ground_dify_log_lines() -> None:
    stale = [session("stale_conversation", c) for c in ("c-0001", "c-0002")]
    problems = Attribution(confirm_cycles=3).cycle(
        [DIFY_ERRORS_IN_EVOLUTION_LOG, stalled("c-0001"), stalled("c-0002"), *stale], {}, 0.0
    )
    assert {p.key for p in problems} == {"contact:loja:c-0001", "contact:loja:c-0002"}
    one = Attribution(confirm_cycles=3).cycle([DIFY_ERRORS_IN_EVOLUTION_LOG, stalled("c-0001")], {}, 0.0)
    assert {p.key for p in one} == {"contact:loja:c-0001"}  # one contact is that contact's


def test_a_failing_model_explains_the_unanswered_and_dify_quiet_log(clock: FakeClock) -> None:
    """The stall diagnosis got a model error: a person is told; neither Dify nor the sessions are touched."""
    loop = Loop(clock)
    model = f("dify_canary_failed", "dify", failure="model")
    done = loop.run(10, lambda t: [model, DIFY_QUIET, stalled("c-0001"), stalled("c-0002", "suporte")])
    assert [a for _, a in done] == [(PAGE, "on-call")]
    hung = Loop(FakeClock())  # a Dify down as well (its probe fails) is still Dify's to restart
    after = hung.run(3, lambda t: [model, DIFY_TIMEOUT, stalled("c-0001"), stalled("c-0002")])
    assert (RESTART_CONTAINER, "service:dify") in [a for _, a in after]
