"""Target 1: every emulator fault of the decision table (docs/recovery.md), each injected into its own pair
of emulator containers, a side's faults all at once, against three sides in turn, at **their defaults, in
real time**:

* the watchdog at its shipped defaults (mode auto, canary off);
* the watchdog with the canary on (every 60 s) and the heartbeat (every 5 minutes, a prober instance);
* the baseline as commonly deployed: Docker's HEALTHCHECK at Docker's defaults on Evolution's `GET /` and
  Dify's `/health`, and docker-autoheal (benchmarks/sides.py).

Per fault and side: noticed after, the first action, customers answered again after, wrong-target
actions, needless actions, pages; all measured in this run, none multiplied. Then the quiet-healthy soak
(30 minutes of healthy noise) on each side: its actions and pages per hour are the false ones.
`--smoke` plays two faults at one uniform time factor (labelled as such) so CI keeps it running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from benchmarks.decisions import NOTHING, QUIET_HEALTHY, SOAK, Row, needless, rows, wrong_target
from benchmarks.report import Figure, Report
from benchmarks.sides import BaselineSide, WatchdogSide
from benchmarks.trials import STARTS_AT_ONCE, Outcome, Script, Side, run_trials

SIDES: dict[str, Callable[[], Side]] = {
    "watchdog (defaults)": WatchdogSide,
    "watchdog (canary and heartbeat on)": lambda: WatchdogSide(
        {"WATCHDOG_CANARY_INTERVAL_SECONDS": "60"}, heartbeat=True
    ),
    "baseline (HEALTHCHECK + autoheal)": BaselineSide,
}
SMOKE_CASES = ("a WhatsApp socket closes", "Evolution hangs")
SMOKE_FACTOR = 0.2


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def judged(row: Row, outcome: Outcome) -> dict[str, Any]:
    done = [outcome.what(a) for a in outcome.actions]
    return {
        "fault": row.case,
        "expected": row.first if row.first == NOTHING else f"{row.first} ({row.root})",
        "noticed_s": _round(outcome.noticed),
        "first action": done[0] if done else "none",
        "as expected": (done[:1] or [NOTHING]) == [row.first],
        "answered again_s": _round(outcome.answered)
        if isinstance(outcome.answered, float)
        else outcome.answered,
        "wrong target": sum(wrong_target(row, what) for what in done),
        "needless": sum(needless(row, what) for what in done),
        "pages": done.count("page"),
    }


def _soak_row(outcome: Outcome) -> dict[str, Any]:
    hours = QUIET_HEALTHY.watch / 3600
    done = [outcome.what(a) for a in outcome.actions]
    return {
        "actions": len(done) - done.count("page"),
        "pages": done.count("page"),
        "false actions per hour": round(len(done) / hours, 2),
    }


def run(report: Report, *, smoke: bool) -> None:
    table = rows()
    if smoke:
        table = [r for r in table if r.case in SMOKE_CASES]
    factor = SMOKE_FACTOR if smoke else 1.0
    scripts = [(r.case, Script.one(r.injection)) for r in table]
    if not smoke:
        scripts.append((SOAK, QUIET_HEALTHY))
    sides = dict(list(SIDES.items())[::2]) if smoke else SIDES
    results = asyncio.run(_all(sides, scripts, factor))
    when = (
        f"accelerated: every duration times {factor:g} (settings, emulators, faults), figures in seconds at "
        "the defaults"
        if smoke
        else "real time, shipped defaults, one run"
    )
    soak: dict[str, Any] = {}
    judged_lines: dict[str, list[dict[str, Any]]] = {}
    for name, outcomes in results.items():
        lines = []
        for row in table:
            outcome = outcomes[row.case]
            if isinstance(outcome, BaseException):
                report.notes.append(f"{name} / {row.case}: did not run: {type(outcome).__name__}: {outcome}")
                continue
            lines.append(judged(row, outcome))
        report.tables[f"Faults at the defaults: {name} ({when})"] = lines
        judged_lines[name] = lines
        _figures(report, name, lines, when)
        if SOAK in outcomes:
            outcome = outcomes[SOAK]
            soak[name] = {"error": str(outcome)} if isinstance(outcome, BaseException) else _soak_row(outcome)
    report.tables[f"Faults at the defaults, side by side ({when})"] = side_by_side(judged_lines)
    if soak:
        report.tables["Quiet-healthy soak, 30 minutes real time: false actions"] = [
            {"side": name, **figures} for name, figures in soak.items()
        ]


def side_by_side(judged_lines: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per fault, one column per side: what it did first and when, whether customers were answered
    again, and any wrong-target or needless action or page (the per-side tables have the columns apart)."""
    by_fault: dict[str, dict[str, Any]] = {}
    for side, lines in judged_lines.items():
        for line in lines:
            row = by_fault.setdefault(line["fault"], {"fault": line["fault"], "expected": line["expected"]})
            row[side] = _cell(line)
    for row in by_fault.values():
        for side in judged_lines:
            row.setdefault(side, "did not run")
    return list(by_fault.values())


def _cell(line: dict[str, Any]) -> str:
    verdict = "right" if line["as expected"] else "**wrong**"
    text = f"{line['first action']} ({verdict})"
    if line["noticed_s"] is not None and line["expected"] != NOTHING:
        text += f", noticed after {line['noticed_s']:g} s"
    answered = line["answered again_s"]
    if isinstance(answered, float | int):
        text += f"; customers answered again after {answered:g} s"
    elif answered == "not by the end":
        text += "; customers not answered again"
    extra = [f"{line[c]} {c}" for c in ("wrong target", "needless", "pages") if line[c]]
    return text + (f"; {', '.join(extra)}" if extra else "")


async def _all(
    sides: dict[str, Callable[[], Side]], scripts: list[tuple[str, Script]], factor: float
) -> dict[str, dict[str, Outcome | BaseException]]:
    """Each side's faults all at once, one side after another, each trial its own pair of containers;
    every side's soak runs beside them from the start. About as many pairs run at a time as one side has
    faults: three sides at once would be 60-odd pairs, more than two cores keep in real time."""
    starting = asyncio.Semaphore(STARTS_AT_ONCE)  # shared: the start-ups take turns
    faults = [(label, script) for label, script in scripts if label != SOAK]
    soaks = [(label, script) for label, script in scripts if label == SOAK]
    soaking = [
        asyncio.create_task(run_trials(soaks, factor, side, at_once=1, starting=starting))
        for side in sides.values()
        if soaks
    ]
    results: dict[str, dict[str, Outcome | BaseException]] = {}
    for name, side in sides.items():
        results[name] = await run_trials(faults, factor, side, at_once=len(faults), starting=starting)
    for name, soak in zip(sides, soaking, strict=False):
        results[name].update(await soak)
    return results


def _figures(report: Report, side: str, lines: list[dict[str, Any]], when: str) -> None:
    faults = [line for line in lines if line["expected"] != NOTHING]
    noticed = [line for line in faults if line["noticed_s"] is not None]
    report.add(
        Figure("1 faults", f"{side}: faults noticed", f"{len(noticed)} of {len(faults)}", "", "", None, when)
    )
    right = sum(line["as expected"] for line in lines)
    report.add(
        Figure("1 faults", f"{side}: right first action", f"{right} of {len(lines)}", "", "", None, when)
    )
    for column in ("wrong target", "needless", "pages"):
        total = sum(int(line[column]) for line in lines)
        report.add(Figure("1 faults", f"{side}: {column} (all faults)", total, "", "", None, when))
