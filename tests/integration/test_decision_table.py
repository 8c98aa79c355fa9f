"""The decision table of docs/recovery.md, row by row, with real containers under the Docker engine.

Each row runs in its own pair of emulator containers against `evo-watchdog run` at the shipped defaults
(mode auto), time at one factor for every duration (benchmarks/trials.py); the rows run side by side in
one module fixture and each test asserts its row: the root cause, the first action, the forbidden ones.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.trials import Injection, Outcome, Script, run_trials
from tests.integration import dockerkit

pytestmark = pytest.mark.integration

TABLE = Path(__file__).resolve().parents[2] / "docs" / "recovery.md"
SECTION = "## Decision table (real containers)"
FACTOR = 0.2  # the one time factor (docs/recovery.md says so)
AT_ONCE = 5
NOTHING = "nothing"


SOAK = "quiet-healthy soak"
QUIET_HEALTHY = Script(
    tuple(
        (at, Injection.parse(text))
        for at, text in (
            (0, "dify:slow seconds=30 lasts=240"),
            (300, "evolution:socket_closed instance=loja reconnect_after=10"),
            (420, "dify:error_500 scope=all lasts=10"),
            (600, "evolution:slow_root seconds=30 lasts=240"),
            (900, "evolution:slow seconds=2 lasts=240"),
            (1200, "evolution:restart_by_hand"),
            (1400, "dify:truncate_stream lasts=200"),
            (1650, "evolution:socket_closed instance=suporte reconnect_after=10"),
        )
    ),
    watch=1800.0,
)


@dataclass(frozen=True)
class Row:
    case: str
    injection: Injection
    root: str  # session | instance | evolution | dify | outside | none
    first: str  # an action as Outcome.what() names it, or "nothing"
    never: tuple[str, ...]  # action prefixes; "any" when nothing at all may happen


def rows() -> list[Row]:
    text = TABLE.read_text().split(SECTION, 1)[1]
    out = []
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith("| case") or "`" not in line:
            continue
        case, inject, root, first, never = (cell.strip() for cell in line.strip().strip("|").split("|"))
        out.append(
            Row(
                case,
                Injection.parse(inject.strip("`")),
                root,
                first.strip("`"),
                tuple(re.findall(r"`([^`]+)`", never)) or (never,),
            )
        )
    return out


ROWS = rows()


def root_of(incident: str) -> str:
    """The root cause an incident key names (recovery/attribution.py `root`)."""
    section, _, rest = incident.partition(":")
    if section in ("contact", "instance"):
        return {"contact": "session", "instance": "instance"}[section]
    if section == "service":
        return rest
    return "outside"


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Outcome | BaseException]:
    client = dockerkit.connect()  # a skip, or a failure under WATCHDOG_REQUIRE_REAL_INFRA=1
    client.close()
    scripts = [(r.case, Script.one(r.injection)) for r in ROWS] + [(SOAK, QUIET_HEALTHY)]
    return asyncio.run(run_trials(scripts, FACTOR, at_once=AT_ONCE))


def test_thirty_minutes_of_healthy_noise_journal_no_action_and_no_page(
    outcomes: dict[str, Outcome | BaseException],
) -> None:
    """The quiet-healthy soak (docs/recovery.md): every "nothing" case of the table, one after another,
    customers writing throughout, 30 minutes at the defaults."""
    outcome = outcomes[SOAK]
    if isinstance(outcome, BaseException):
        raise outcome
    assert outcome.actions == [] and outcome.incidents == [], (outcome.findings, outcome.log_tail[-1500:])
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
        assert done == [] and outcome.incidents == [], story
        return
    assert done and done[0] == row.first, story
    assert root_of(outcome.actions[0]["incident"]) == row.root, story
    forbidden = [what for what in done if any(what.startswith(never) for never in row.never)]
    assert forbidden == [], story
    if row.root != "outside":  # repaired, verified, and the incident closed (a person fixes the rest)
        assert outcome.open_at_end == [], story
