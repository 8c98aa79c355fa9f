"""StallDiagnosis: one Dify canary call when a broad stall begins, again at most once per `every` while it
lasts; the verdict is shown only while the stall lasts and is dropped after a verified repair."""

from __future__ import annotations

import asyncio
from typing import Any

from watchdog.clock import FakeClock
from watchdog.model import Finding, ProbeResult, Severity
from watchdog.signals.diagnosis import StallDiagnosis, broad_stall


def stalled(contact: str, instance: str = "loja") -> Finding:
    return Finding(
        "stalled_contact",
        f"evolution:{instance}",
        Severity.CRITICAL,
        "",
        {"contact": contact},
        subject=contact,
    )


class Canary:
    """Answers what it is told, counting the calls."""

    threshold = 5.0

    def __init__(self, result: ProbeResult) -> None:
        self.result = result
        self.calls = 0
        self.patience: list[float | None] = []

    async def run(self, *, patience: float | None = None) -> ProbeResult:
        self.calls += 1
        self.patience.append(patience)
        return self.result


HUNG = ProbeResult(
    "dify",
    "canary",
    False,
    5.0,
    0.0,
    "stalled: no event for 5s",
    data={"error": "canary", "failure": "stalled"},
)
BROAD = [stalled("c-1"), stalled("c-2", "suporte")]


def diagnosis(canary: Any, clock: FakeClock, scheduled: bool = False) -> StallDiagnosis:
    return StallDiagnosis(canary, clock, every=60.0, scheduled=scheduled)


def test_a_broad_stall_is_two_contacts_or_more() -> None:
    assert not broad_stall([stalled("c-1")])
    assert not broad_stall([stalled("c-1"), stalled("c-1")])
    assert broad_stall(BROAD)


async def test_it_asks_once_per_stall_window_and_shows_the_verdict_while_the_stall_lasts() -> None:
    clock, canary = FakeClock(), Canary(HUNG)
    diag = diagnosis(canary, clock)
    refreshed: list[int] = []
    assert diag.findings([stalled("c-1")], start=lambda: refreshed.append(1), stall_seconds=60) == []
    assert diag.findings(BROAD, start=lambda: refreshed.append(1), stall_seconds=60) == []  # asked
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert canary.calls == 1 and refreshed == [1]
    assert canary.patience == [5.0]  # customers already waited: the verdict within the turnaround threshold
    kinds = [f.kind for f in diag.findings(BROAD, start=lambda: None, stall_seconds=60)]
    assert kinds == ["dify_canary_failed"]
    clock.advance(30)
    diag.findings(BROAD, start=lambda: None, stall_seconds=60)
    await asyncio.sleep(0)
    assert canary.calls == 1  # not due yet
    clock.advance(31)
    diag.findings(BROAD, start=lambda: None, stall_seconds=60)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert canary.calls == 2
    assert diag.findings([stalled("c-1")], start=lambda: None, stall_seconds=60) == []  # the stall ended
    assert diag.result is None


async def test_a_verified_repair_drops_the_verdict_and_a_scheduled_canary_makes_it_unneeded() -> None:
    clock, canary = FakeClock(), Canary(HUNG)
    diag = diagnosis(canary, clock)
    diag.findings(BROAD, start=lambda: None, stall_seconds=60)
    await asyncio.sleep(0)
    diag.forget()
    assert diag.result is None
    scheduled = diagnosis(Canary(HUNG), clock, scheduled=True)
    assert scheduled.findings(BROAD, start=lambda: None, stall_seconds=60) == []
    await scheduled.stop()
    await diag.stop()
