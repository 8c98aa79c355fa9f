"""Actions in flight: one task per target with its own deadline, journaled before and after, and cut
off at shutdown the way a restarted watchdog's resume expects (real asyncio, in-memory journal)."""

from __future__ import annotations

import asyncio

from watchdog.clock import FakeClock
from watchdog.recovery.executors import Outcome
from watchdog.recovery.inflight import SKIPPED, ActionRunner
from watchdog.recovery.journal import INTERRUPTED, Journal, JournalError
from watchdog.recovery.planner import (
    RESET_SESSION,
    RESTART_CONTAINER,
    RESTART_INSTANCE,
    RUNNING,
    PlannedAction,
    Policy,
    RecoveryPlanner,
)
from watchdog.recovery.problems import Level, Problem

JID = "5511987600001@s.whatsapp.net"
DOWN = Problem("instance:loja", "evolution", Level.INSTANCE, "loja", kinds=("instance_disconnected",))
STALE = Problem(
    "contact:suporte:c-1", "evolution", Level.CONTACT, "suporte", "c-1", JID, ("stale_conversation",)
)


class Rig:
    """A planner, a journal and a runner whose executor hangs on the targets in `hanging`."""

    def __init__(self, clock: FakeClock, *, deadline: float = 60.0) -> None:
        self.clock = clock
        self.journal = Journal(":memory:")
        self.planner = RecoveryPlanner(Policy(mode="auto"))
        self.hanging: set[str] = set()
        self.broken: set[str] = set()
        self.reports: list[tuple[str, str]] = []
        self.failures: list[JournalError] = []
        self.runner = ActionRunner(
            self.journal,
            clock=clock,
            now=clock.time,
            checkpoint=self.checkpoint,
            execute=self.execute,
            deadline=lambda action: deadline,
            report=lambda action, outcome, took: self.reports.append((action.target, outcome.result)),
            journal_failing=self.failures.append,
        )

    async def checkpoint(self) -> bool:
        return True

    async def execute(self, action: PlannedAction) -> Outcome:
        if action.target in self.hanging:
            await asyncio.Event().wait()
        if action.target in self.broken:
            raise KeyError(JID)
        return Outcome.ok("done")

    def turn(self, *problems: Problem) -> list[asyncio.Task[None]]:
        plan = self.journal.plan(self.planner, problems, self.clock.time())
        return [task for action in plan.actions if (task := self.runner.start(action)) is not None]

    def results(self) -> list[tuple[str, str, str]]:
        return [(a.kind, a.target, a.result) for a in self.journal.recent_actions(0)]


async def test_a_slow_target_holds_up_no_other_and_gets_no_second_action(clock: FakeClock) -> None:
    rig = Rig(clock)
    rig.hanging.add("instance:loja")
    [slow] = rig.turn(DOWN)
    [quick] = rig.turn(STALE)
    await quick
    clock.advance(600)
    assert rig.turn(DOWN) == []  # loja's restart still runs: nothing more on it, however long it takes
    assert rig.results() == [
        (RESTART_INSTANCE, "instance:loja", RUNNING),
        (RESET_SESSION, "contact:suporte:c-1", "ok"),
    ]
    assert [f.action.target for f in rig.runner.in_flight()] == ["instance:loja"] and not slow.done()
    await rig.runner.stop()


async def test_the_runner_refuses_a_second_action_on_a_busy_target(clock: FakeClock) -> None:
    rig = Rig(clock)
    rig.hanging.add("instance:loja")
    plan = rig.journal.plan(rig.planner, [DOWN], clock.time())
    assert rig.runner.start(plan.actions[0]) is not None
    again = PlannedAction(
        "instance:loja", RESTART_INSTANCE, Level.INSTANCE, "instance:loja", "again", False, "loja"
    )
    assert rig.runner.start(again) is None
    await asyncio.sleep(0)
    assert [r for _, _, r in rig.results()] == [RUNNING, SKIPPED]
    await rig.runner.stop()


async def test_past_its_deadline_an_action_is_failed_and_the_ladder_climbs(clock: FakeClock) -> None:
    rig = Rig(clock, deadline=0.05)
    rig.hanging.add("instance:loja")
    [task] = rig.turn(DOWN)
    await task
    [record] = rig.journal.history()[0]["actions"]
    assert (record["result"], record["detail"]) == (
        "failed",
        "timed out after 0.05s (its deadline); abandoned, not verified",
    )
    assert rig.reports == [("instance:loja", "failed")]
    assert [a.kind for a in rig.journal.plan(rig.planner, [DOWN], clock.time()).actions] == [
        RESTART_CONTAINER
    ]


async def test_shutdown_interrupts_and_the_next_start_retries_the_same_rung_after_the_cooldown(
    clock: FakeClock,
) -> None:
    rig = Rig(clock)
    rig.hanging.add("instance:loja")
    rig.turn(DOWN)
    await asyncio.sleep(0)
    assert rig.journal.open_incidents()["instance:loja"].level == Level.SERVICE  # climbed when planned
    clock.advance(3)
    await rig.runner.stop()
    [record] = rig.journal.history()[0]["actions"]
    assert record["result"] == INTERRUPTED and record["detail"].startswith("cut off by shutdown")
    assert rig.journal.open_incidents()["instance:loja"].level == Level.INSTANCE  # back on its rung
    assert rig.journal.resume(clock.time()) == 0 and rig.reports == []
    clock.advance(5)
    assert rig.turn(DOWN) == []  # the cooldown runs from the interruption
    clock.advance(6)
    rig.hanging.clear()
    [retry] = rig.turn(DOWN)
    await retry
    assert [(k, r) for k, _, r in rig.results()] == [
        (RESTART_INSTANCE, INTERRUPTED),
        (RESTART_INSTANCE, "ok"),
    ]


async def test_resume_on_takeover_spares_the_actions_this_process_still_runs(clock: FakeClock) -> None:
    rig = Rig(clock)
    rig.hanging.add("instance:loja")
    rig.turn(DOWN)
    assert rig.journal.resume(clock.time(), keep=rig.runner.action_ids()) == 0
    assert [r for _, _, r in rig.results()] == [RUNNING]
    await rig.runner.stop()
    assert [r for _, _, r in rig.results()] == [INTERRUPTED]


async def test_a_result_the_journal_refused_is_written_once_it_works_again(clock: FakeClock) -> None:
    rig = Rig(clock)
    [task] = rig.turn(DOWN)
    real = rig.journal.finished
    calls = 0

    def failing_once(action_id: int, result: str, detail: str, now: float) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise JournalError("journal write failed: disk I/O error")
        real(action_id, result, detail, now)

    rig.journal.finished = failing_once  # type: ignore[method-assign]
    await task
    assert [r for _, _, r in rig.results()] == [RUNNING] and len(rig.failures) == 1
    rig.runner.flush()
    assert [r for _, _, r in rig.results()] == ["ok"]


async def test_a_bug_in_an_executor_is_a_journaled_failure_that_names_no_contact(clock: FakeClock) -> None:
    rig = Rig(clock)
    rig.broken.add("contact:suporte:c-1")
    [task] = rig.turn(STALE)
    await task
    [record] = rig.journal.history()[0]["actions"]
    assert (record["result"], record["detail"]) == (
        "failed",
        "internal error: KeyError (traceback in the log)",
    )
    assert rig.runner.in_flight() == [] and rig.reports == [("contact:suporte:c-1", "failed")]
