"""Acknowledging a paged incident, with a fake clock and a real journal: the circuit closes, the ladder
starts again at the problem's first rung, budgets and cooldowns still hold, flapping follows the rules."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.unit.test_planner import DOWN, World
from watchdog.clock import FakeClock
from watchdog.commands.incidents import run_incidents
from watchdog.recovery.ack import NotPaged, UnknownIncident, acknowledge
from watchdog.recovery.journal import Journal
from watchdog.recovery.planner import (
    ACK,
    PAGE,
    RESTART_CONTAINER,
    RESTART_INSTANCE,
    PlannedAction,
    Policy,
)
from watchdog.recovery.problems import Level, Problem, first_rung

SUPPORT = Problem(
    "instance:suporte", "evolution", Level.INSTANCE, "suporte", kinds=("instance_disconnected",)
)
LOGOUT = Problem("human:logged_out:instance:loja", "evolution", Level.HUMAN, kinds=("logged_out",))
NO_L3 = frozenset[str]()  # no container to restart: a failed L2 goes straight to a page


def failing(action: PlannedAction) -> str:
    """Every repair fails; pages are delivered (an undelivered page is sent again: test_planner)."""
    return "ok" if action.kind == PAGE else "failed"


def paged(world: World, problem: Problem = DOWN) -> None:
    """Drive `problem` until it is paged, its instance restart failing each time."""
    kinds = world.run(30, problem, result=failing)
    assert kinds[-1] == PAGE and world.journal.open_incidents()[problem.key].circuit_open


def ack(world: World, key: str = DOWN.key) -> Level:
    return acknowledge(world.journal, key, world.clock.time()).level


def test_an_ack_closes_the_circuit_and_the_ladder_starts_again_at_the_first_rung(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", restartable=NO_L3))
    paged(world)
    assert world.run(600, DOWN, step=10) == []  # the open circuit: nothing happens without a person
    assert ack(world) == Level.INSTANCE
    incident = world.journal.open_incidents()[DOWN.key]
    assert not incident.circuit_open and not incident.paged and incident.attempts == 0
    assert world.tick(DOWN, result=failing) == [RESTART_INSTANCE]  # at once: it waited long enough
    assert world.run(5, DOWN, result=failing) == [PAGE]  # failed again: the person hears of it again
    assert world.journal.open_incidents()[DOWN.key].circuit_open
    kinds = [row["kind"] for row in world.journal.history()[0]["actions"]]
    assert kinds == [RESTART_INSTANCE, PAGE, ACK, RESTART_INSTANCE, PAGE]


def test_an_ack_does_not_skip_the_targets_cooldown(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", restartable=NO_L3))
    paged(world)
    ack(world)
    assert world.tick(DOWN, result=failing) == [RESTART_INSTANCE]
    clock.advance(1)
    assert world.tick(DOWN, result=failing) == [PAGE]
    ack(world)  # straight after the page: the target's second restart ended a second ago
    assert world.run(15, DOWN, result=failing) == []  # backoff(2) = 20 s after that restart
    assert world.run(10, DOWN, result=failing)[:1] == [RESTART_INSTANCE]


def test_an_ack_buys_no_restarts_beyond_the_hourly_budget(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", restarts_per_hour=2, restartable=NO_L3))
    paged(world)
    clock.advance(60)
    ack(world)
    assert world.run(60, DOWN, result=failing) == [RESTART_INSTANCE, PAGE]
    clock.advance(60)
    ack(world)
    assert world.run(60, DOWN, result=failing) == [PAGE]  # both restarts of the hour are spent
    assert "restart budget for instance:loja spent" in world.log[-1][1].reason
    clock.advance(3600)  # the hour has passed: a new ack may restart again
    ack(world)
    assert world.run(60, DOWN, result=failing)[:1] == [RESTART_INSTANCE]


def test_the_global_budget_holds_across_acks(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", global_restarts_per_hour=2, restartable=NO_L3))
    assert world.run(30, DOWN, SUPPORT, result=failing) == [RESTART_INSTANCE, RESTART_INSTANCE, PAGE, PAGE]
    clock.advance(60)
    ack(world, SUPPORT.key)
    assert world.run(60, DOWN, SUPPORT, result=failing) == [PAGE]
    assert "global restart budget spent" in world.log[-1][1].reason


def test_a_fault_back_soon_after_an_acked_repair_follows_the_usual_flap_rules(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", recovery_hold=10, restartable=frozenset({"evolution"})))
    world.tick(DOWN, result=failing)
    world.run(5, DOWN, result=failing)  # the container restart fails too: paged
    assert world.journal.open_incidents()[DOWN.key].circuit_open
    ack(world)
    clock.advance(60)
    assert world.tick(DOWN) == [RESTART_INSTANCE]  # this time it works
    assert world.run(11) == [] and not world.journal.open_incidents()  # healthy: closed a second ago
    # Back within the repair's cooldown: the acked incident is not "paged" any more, so a person is paged
    # once (the rule for any repaired fault back that fast), then the circuit holds.
    assert world.run(120, DOWN) == [PAGE]
    assert world.journal.open_incidents()[DOWN.key].circuit_open


def test_an_acked_fault_back_after_the_cooldown_climbs_a_rung(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", recovery_hold=10, restartable=frozenset({"evolution"})))
    world.tick(DOWN, result=failing)
    world.run(5, DOWN, result=failing)
    ack(world)
    clock.advance(60)
    world.tick(DOWN)
    world.run(11)
    clock.advance(60)  # past backoff(1) but inside the healthy reset: one rung higher
    assert world.run(5, DOWN) == [RESTART_CONTAINER]


def test_without_an_ack_a_flapping_paged_fault_stays_behind_the_circuit(clock: FakeClock) -> None:
    """The contrast: the ack is what lets recovery act on a fault that was paged."""
    world = World(clock, Policy(mode="auto", recovery_hold=10, restartable=NO_L3))
    paged(world)
    world.run(20)
    clock.advance(60)
    assert world.run(300, DOWN) == []
    assert world.journal.open_incidents()[DOWN.key].circuit_open


def test_acknowledging_a_problem_only_a_person_can_fix_does_not_page_again(clock: FakeClock) -> None:
    world = World(clock)
    assert world.tick(LOGOUT) == [PAGE]
    assert ack(world, LOGOUT.key) == Level.HUMAN
    assert world.run(3600, LOGOUT, step=30) == []
    with pytest.raises(NotPaged):
        ack(world, LOGOUT.key)  # acknowledged already


def test_unknown_closed_and_unpaged_incidents_are_refused(clock: FakeClock) -> None:
    world = World(clock, Policy(mode="auto", recovery_hold=10))
    with pytest.raises(UnknownIncident, match="no open incident 'instance:loja'"):
        ack(world)
    world.tick(DOWN)  # restarting: not paged
    with pytest.raises(NotPaged, match="not paged"):
        ack(world)
    world.run(30)  # healthy: closed
    with pytest.raises(UnknownIncident):
        ack(world)
    assert ACK not in {a.kind for a in world.journal.recent_actions(0)}


def test_first_rung_follows_the_incident_key() -> None:
    keys = {"contact:loja:c-1": 1, "instance:loja": 2, "service:dify": 3, LOGOUT.key: 4}
    assert {key: int(first_rung(key)) for key in keys} == keys


def test_a_restarted_watchdog_remembers_the_ack(clock: FakeClock, tmp_path: Path) -> None:
    world = World(clock, Policy(mode="auto", restartable=NO_L3))
    world.journal = Journal(tmp_path / "journal.db")
    paged(world)
    ack(world)
    world.journal.close()
    world.journal = Journal(tmp_path / "journal.db")
    world.journal.resume(clock.time())
    assert not world.journal.open_incidents()[DOWN.key].circuit_open
    assert world.tick(DOWN) == [RESTART_INSTANCE]


def test_incidents_lists_the_journal_read_only(clock: FakeClock, tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    world = World(clock, Policy(mode="auto", restartable=NO_L3))
    world.journal = Journal(path)
    paged(world)
    ack(world)
    table, as_json = io.StringIO(), io.StringIO()
    assert run_incidents(path, as_json=False, limit=5, out=table) == 0
    assert run_incidents(path, as_json=True, limit=5, out=as_json) == 0
    lines = table.getvalue().splitlines()
    assert lines[1].split()[1:4] == ["open,", "acknowledged", DOWN.key]
    assert [line.split()[2] for line in lines[2:]] == [RESTART_INSTANCE, PAGE, ACK]
    assert "recovery acts again from L2" in lines[-1]
    listed = json.loads(as_json.getvalue())
    assert [a["kind"] for a in listed[0]["actions"]] == [RESTART_INSTANCE, PAGE, ACK]
    assert not listed[0]["circuit_open"]


def test_incidents_without_a_journal_fails_and_creates_none(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    assert run_incidents(path, as_json=True, limit=5, out=io.StringIO()) == 1
    assert not path.exists()
    path.write_bytes(b"")  # there, but the daemon never wrote it
    assert run_incidents(path, as_json=False, limit=5, out=io.StringIO()) == 1
    assert path.read_bytes() == b""
