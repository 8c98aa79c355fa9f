"""Leadership against an in-memory lease store with a fake clock: who acts, what a failing store does,
and how a new leader takes over the dead one's journal without repeating an action inside its cooldown."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from watchdog.clock import FakeClock
from watchdog.config import Settings
from watchdog.errors import CoordinationError
from watchdog.metrics import Metrics
from watchdog.model import Finding, Severity
from watchdog.recovery.engine import SKIPPED, build_engine
from watchdog.recovery.journal import INTERRUPTED, Journal
from watchdog.recovery.planner import RESTART_INSTANCE, RUNNING, Policy, RecoveryPlanner
from watchdog.recovery.problems import Level, Problem
from watchdog.replicas.handoff import decode, record, take_over, unknown_actions
from watchdog.replicas.leadership import Leadership

TTL = 15.0
DOWN = Problem("instance:loja", "evolution", Level.INSTANCE, "loja", kinds=("instance_disconnected",))
POLICY = Policy(mode="auto")


class MemoryStore:
    """The Redis lease semantics (NX, compare-and-set, fenced publish) on a dict and a fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.key: tuple[str, float] | None = None  # (holder, expires at)
        self.record: str | None = None
        self.down = False

    def _live(self) -> str | None:
        if self.down:
            raise CoordinationError("redis: ConnectionError: connection refused")
        if self.key is not None and self.clock.monotonic() >= self.key[1]:
            self.key = None
        return self.key[0] if self.key else None

    async def acquire(self, me: str, ttl_ms: int) -> bool:
        if self._live() is not None:
            return False
        self.key = (me, self.clock.monotonic() + ttl_ms / 1000)
        return True

    async def renew(self, me: str, ttl_ms: int) -> bool:
        if self._live() != me:
            return False
        self.key = (me, self.clock.monotonic() + ttl_ms / 1000)
        return True

    async def release(self, me: str) -> bool:
        if self._live() != me:
            return False
        self.key = None
        return True

    async def holder(self) -> str | None:
        return self._live()

    async def publish(self, me: str, record: str) -> bool:
        if self._live() != me:
            return False
        self.record = record
        return True

    async def handoff(self) -> str | None:
        self._live()
        return self.record

    async def aclose(self) -> None:
        pass


class Replica:
    def __init__(self, name: str, store: MemoryStore | None, clock: FakeClock, journal: Journal) -> None:
        self.registry = CollectorRegistry()
        self.journal = journal
        self.takeovers = 0

        def resume() -> None:
            self.takeovers += 1
            journal.resume(clock.time())

        self.leadership = Leadership(
            me=name,
            ttl=TTL,
            store=store,
            clock=clock,
            metrics=Metrics(self.registry),
            journal=journal,
            wall=clock.time,
            closed_window=POLICY.healthy_reset,
            on_takeover=resume,
        )

    def sample(self, name: str) -> float | None:
        return self.registry.get_sample_value(name)


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock)


async def test_without_redis_the_single_replica_always_leads(clock: FakeClock) -> None:
    solo = Replica("solo", None, clock, Journal(":memory:"))
    assert await solo.leadership.may_act() and await solo.leadership.checkpoint()
    view = solo.leadership.view()
    assert view["mode"] == "single" and view["leader"] is True and view["leader_id"] == "solo"
    assert solo.sample("watchdog_leader") == 1.0
    assert solo.takeovers == 0  # the daemon's own start-up resume covers it


async def test_exactly_one_of_two_replicas_leads_and_both_say_which(
    clock: FakeClock, store: MemoryStore
) -> None:
    a = Replica("a", store, clock, Journal(":memory:"))
    b = Replica("b", store, clock, Journal(":memory:"))
    for _ in range(3):
        await a.leadership.round()
        await b.leadership.round()
        clock.advance(a.leadership.machine.period)
    assert await a.leadership.may_act() and not await b.leadership.may_act()
    assert (a.sample("watchdog_leader"), b.sample("watchdog_leader")) == (1.0, 0.0)
    assert a.leadership.view()["leader_id"] == b.leadership.view()["leader_id"] == "a"
    assert a.leadership.view()["leading_since"] is not None and b.leadership.view()["leading_since"] is None
    assert a.takeovers == 1 and b.takeovers == 0


async def test_an_unreachable_store_stops_acting_is_counted_and_shown_then_recovers(
    clock: FakeClock, store: MemoryStore
) -> None:
    a = Replica("a", store, clock, Journal(":memory:"))
    await a.leadership.round()
    assert await a.leadership.may_act()
    store.down = True
    await a.leadership.round()
    assert not await a.leadership.may_act() and not await a.leadership.checkpoint()
    assert a.sample("watchdog_leader") == 0.0 and a.sample("watchdog_lease_errors_total") == 1.0
    assert "connection refused" in a.leadership.view()["store_error"]
    store.down = False
    clock.advance(a.leadership.machine.period)
    await a.leadership.round()  # renews its own key, still there
    assert await a.leadership.may_act() and a.leadership.view()["store_error"] is None
    assert a.takeovers == 2  # each new term re-reads the handoff record before acting


async def test_checkpoint_is_fenced_a_replica_that_lost_the_key_may_not_act(
    clock: FakeClock, store: MemoryStore
) -> None:
    a = Replica("a", store, clock, Journal(":memory:"))
    await a.leadership.round()
    store.key = ("b", clock.monotonic() + TTL)  # its lease was taken while it was paused
    assert not await a.leadership.checkpoint()
    assert not a.leadership.leading() and store.record is None


async def test_the_new_leader_resumes_the_dead_one_incident_without_repeating_inside_the_cooldown(
    clock: FakeClock, store: MemoryStore
) -> None:
    a = Replica("a", store, clock, Journal(":memory:"))
    b = Replica("b", store, clock, Journal(":memory:"))
    await a.leadership.round()
    await b.leadership.round()
    assert await a.leadership.may_act()
    planner = RecoveryPlanner(POLICY)
    plan = a.journal.plan(planner, [DOWN], clock.time())
    [action] = plan.actions
    a.journal.started(action, clock.time())  # the restart is under way ...
    assert await a.leadership.checkpoint()  # ... and its successor was told before it began
    died = clock.monotonic()  # SIGKILL: no release, no more renewals
    while not b.leadership.leading():
        clock.advance(b.leadership.machine.period)
        await b.leadership.round()
    assert clock.monotonic() - died <= 2 * TTL
    assert await b.leadership.may_act()
    [copied] = b.journal.recent_actions(0)
    assert (copied.kind, copied.result) == (RESTART_INSTANCE, INTERRUPTED)
    assert b.journal.open_incidents()["instance:loja"].level == Level.INSTANCE  # same rung, not higher
    retried_at = None
    for _ in range(60):
        if b.journal.plan(planner, [DOWN], clock.time()).actions:
            retried_at = clock.time()
            break
        clock.advance(1)
    assert retried_at is not None
    assert retried_at - copied.finished_at >= POLICY.backoff(1)  # nothing inside the cooldown


def test_take_over_is_idempotent_for_a_shared_journal_and_keeps_the_latest_maintenance(
    clock: FakeClock,
) -> None:
    journal = Journal(":memory:")
    plan = journal.plan(RecoveryPlanner(POLICY), [DOWN], clock.time())
    action_id = journal.started(plan.actions[0], clock.time())
    journal.finished(action_id, "ok", "", clock.time() + 1)
    journal.set_maintenance(clock.time() + 600)
    handoff = decode(record(journal, replica="a", now=clock.time(), closed_window=600))
    assert take_over(journal, handoff, clock.time()) == 0  # both replicas on one journal file
    other = Journal(":memory:")
    assert take_over(other, handoff, clock.time()) == 1
    assert take_over(other, handoff, clock.time()) == 0
    assert unknown_actions(other.recent_actions(0), handoff.actions) == []
    assert other.maintenance_until() == clock.time() + 600
    assert [(a.kind, a.result) for a in other.recent_actions(0)] == [(RESTART_INSTANCE, "ok")]


def test_a_stale_open_incident_of_the_new_leader_is_superseded(clock: FakeClock) -> None:
    mine, theirs = Journal(":memory:"), Journal(":memory:")
    planner = RecoveryPlanner(POLICY)
    mine.plan(planner, [DOWN], clock.time())
    clock.advance(30)
    theirs.plan(planner, [DOWN], clock.time())
    take_over(mine, decode(record(theirs, replica="b", now=clock.time(), closed_window=600)), clock.time())
    [only] = mine.open_incidents().values()
    assert only.opened_at == clock.time()
    assert len(mine.history()) == 2 and mine.history()[1]["closed_at"] is not None


@pytest.mark.parametrize(
    "raw",
    ["not json", "{}", json.dumps({"version": 99}), json.dumps({"version": 1, "replica": "a"}), "[1]"],
)
def test_a_malformed_record_is_a_coordination_error(raw: str) -> None:
    with pytest.raises(CoordinationError, match="malformed"):
        decode(raw)


async def test_a_malformed_record_is_ignored_and_the_leader_acts_on_its_own_journal(
    clock: FakeClock, store: MemoryStore
) -> None:
    store.record = '{"version": 1, "incidents": "garbage"}'
    a = Replica("a", store, clock, Journal(":memory:"))
    await a.leadership.round()
    assert await a.leadership.may_act() and a.takeovers == 1


def test_a_running_action_stays_running_until_resume_judges_it(clock: FakeClock) -> None:
    source = Journal(":memory:")
    plan = source.plan(RecoveryPlanner(POLICY), [DOWN], clock.time())
    source.started(plan.actions[0], clock.time())
    target = Journal(":memory:")
    take_over(target, decode(record(source, replica="a", now=clock.time(), closed_window=600)), clock.time())
    assert [a.result for a in target.recent_actions(0)] == [RUNNING]
    assert target.resume(clock.time()) == 1


async def test_the_loop_survives_a_bug_and_stop_releases_the_lease(
    clock: FakeClock, store: MemoryStore
) -> None:
    a = Replica("a", store, clock, Journal(":memory:"))
    a.leadership.machine.ttl = 0.3  # a round every 0.1 s of real time
    real_acquire = store.acquire
    calls = 0

    async def broken_once(me: str, ttl_ms: int) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug")
        return await real_acquire(me, ttl_ms)

    store.acquire = broken_once  # type: ignore[method-assign]
    a.leadership.start()
    for _ in range(100):
        if a.leadership.leading():
            break
        await asyncio.sleep(0.02)
    assert a.leadership.leading() and a.sample("watchdog_lease_errors_total") == 1.0
    await a.leadership.stop()
    assert store.key is None and not a.leadership.leading()  # the other may take it at once


@pytest.mark.parametrize("leading", [True, False])
async def test_the_engine_runs_an_action_only_when_the_fenced_checkpoint_holds(
    tmp_path: Path, clock: FakeClock, leading: bool
) -> None:
    """The lease lost between planning and acting: the action is journaled as skipped, never run."""
    marker = tmp_path / "restarted"
    settings = Settings.from_env(
        {
            "WATCHDOG_RECOVERY_MODE": "auto",
            "WATCHDOG_RESTART_COMMAND_EVOLUTION": f"touch {marker}",
            "WATCHDOG_CONFIRM_CYCLES": "1",  # one turn is the fault confirmed: this test is about fencing
            "WATCHDOG_STATE_PATH": str(tmp_path / "journal.db"),
        }
    )
    registry = CollectorRegistry()
    async with httpx.AsyncClient() as http:
        engine = build_engine(settings, clock=clock, http=http, metrics=Metrics(registry))
        checks: list[bool] = []

        async def checkpoint() -> bool:
            checks.append(leading)
            return leading

        engine.checkpoint = checkpoint
        down = Finding("evolution_down", "evolution", Severity.CRITICAL, "Evolution API unreachable")
        [action] = await engine.tick([down])
        [done] = engine.journal.recent_actions(0)
        engine.journal.close()
    assert action.kind == "restart_container"
    assert marker.exists() is leading
    assert done.result == ("ok" if leading else SKIPPED)
    assert len(checks) == (3 if leading else 2)  # before, after, end of turn | before, end of turn
    ran = registry.get_sample_value(
        "watchdog_recovery_actions_total",
        {"action": "restart_container", "target": "service:evolution", "result": "ok"},
    )
    assert ran == (1.0 if leading else None)
