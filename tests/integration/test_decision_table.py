"""The decision table of docs/recovery.md, row by row, with real containers under the Docker engine.

Each row runs in its own pair of emulator containers against `evo-watchdog run` at the shipped defaults
(mode auto), time at one factor for every duration (benchmarks/trials.py); the rows run side by side in
one module fixture and each test asserts its row: the root cause, the first action, the forbidden ones.
"""

from __future__ import annotations

import asyncio

import pytest

from benchmarks.decisions import FACTOR, NOTHING, QUIET_HEALTHY, SOAK, Row, rows
from benchmarks.sides import WatchdogSide
from benchmarks.trials import Outcome, Script, run_trials
from tests.integration import dockerkit
from watchdog.recovery.attribution import root_of_key

pytestmark = pytest.mark.integration

AT_ONCE = 5
ROWS = rows()


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome | BaseException]:
    client = dockerkit.connect()  # a skip, or a failure under WATCHDOG_REQUIRE_REAL_INFRA=1
    client.close()
    scripts = [(r.case, Script.one(r.injection)) for r in ROWS] + [(SOAK, QUIET_HEALTHY)]
    return asyncio.run(run_trials(scripts, FACTOR, WatchdogSide, at_once=AT_ONCE))


def test_thirty_minutes_of_healthy_noise_journal_no_action_and_no_page(
    outcomes: dict[str, Outcome | BaseException],
) -> None:
    """The quiet-healthy soak (docs/recovery.md): every "nothing" case of the table, one after another,
    customers writing throughout, 30 minutes at the defaults."""
    outcome = outcomes[SOAK]
    if isinstance(outcome, BaseException):
        raise outcome
    assert outcome.actions == [] and outcome.open_at_end == [], (outcome.findings, outcome.log_tail[-1500:])
    assert outcome.restarts == {"evolution": 1, "dify": 0}  # the operator's, and only that


def test_the_table_covers_every_emulator_fault() -> None:
    from watchdog.sim.dify_state import DIFY_FAULTS
    from watchdog.sim.evolution import EVOLUTION_FAULTS

    injected = {(r.injection.service, r.injection.fault) for r in ROWS}
    faults = {("dify", f.name) for f in DIFY_FAULTS} | {("evolution", f.name) for f in EVOLUTION_FAULTS}
    assert faults <= injected, f"faults with no row: {sorted(faults - injected)}"


@pytest.mark.parametrize("row", ROWS, ids=[r.case for r in ROWS])
def test_decision(row: Row, outcomes: dict[str, Outcome | BaseException]) -> None:
    outcome = outcomes[row.case]
    if isinstance(outcome, BaseException):
        raise outcome
    done = [outcome.what(a) for a in outcome.actions]
    story = (
        f"actions {[(outcome.what(a), a['target'], a['result']) for a in outcome.actions]}, "
        f"incidents {outcome.incidents}, findings {outcome.findings}\n{outcome.log_tail[-1500:]}"
    )
    if row.first == NOTHING:
        # No action and no page; a customer who really waited past the stall time may open an incident,
        # which must have closed on its own (an operator's restart loses the turn in flight)
        assert done == [] and outcome.open_at_end == [], story
        if row.injection.fault == "restart_by_hand":  # nothing but a note
            assert outcome.restarts["evolution"] == 1 and "was restarted (running since" in outcome.log_tail
        return
    assert done and done[0] == row.first, story
    assert root_of_key(outcome.actions[0]["incident"]) == row.root, story
    forbidden = [what for what in done if any(what.startswith(never) for never in row.never)]
    assert forbidden == [], story
    if row.root != "outside":  # repaired, verified, and the incident closed (a person fixes the rest)
        assert outcome.open_at_end == [], story
