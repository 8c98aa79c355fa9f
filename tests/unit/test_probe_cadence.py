"""SlowCadence: sessions and webhook every Nth cycle, staggered; failures, busy bots and asks go first."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pytest

from watchdog.clients.evolution import EvolutionClient
from watchdog.clock import FakeClock
from watchdog.integrations import INTEGRATIONS
from watchdog.model import ProbeResult, instance_target
from watchdog.probes.base import ProbeRunner
from watchdog.probes.cadence import SlowCadence
from watchdog.probes.evolution import EvolutionProbes

NAMES = [f"inst-{i}" for i in range(8)]


def slow(name: str, *, ok: bool = True, sessions: Sequence[Mapping[str, Any]] = ()) -> list[ProbeResult]:
    data = {"sessions": list(sessions)}
    return [
        ProbeResult(instance_target(name), "sessions", ok, 0.01, 0.0, "", data),
        ProbeResult(instance_target(name), "webhook", ok, 0.01, 0.0, "", {}),
    ]


def cycle(cadence: SlowCadence, watched: list[str], **fresh_of: Any) -> tuple[list[str], list[ProbeResult]]:
    due = cadence.due(watched)
    fresh = [r for name in due for r in fresh_of.get(name, slow(name))]
    return due, cadence.carry(watched, fresh)


def test_first_cycle_probes_everything_then_each_instance_every_nth_cycle() -> None:
    cadence = SlowCadence(4)
    due, carried = cycle(cadence, NAMES)
    assert (due, carried) == (NAMES, [])
    probed: Counter[str] = Counter()
    for _ in range(8):
        due, carried = cycle(cadence, NAMES)
        assert len(due) == 2  # staggered: every cycle costs the same
        probed.update(due)
        assert {r.target for r in carried} == {instance_target(n) for n in NAMES if n not in due}
        assert len(carried) == 2 * (len(NAMES) - len(due))
    assert probed == Counter({name: 2 for name in NAMES})


def test_carried_results_are_the_last_ones_taken_and_marked_as_carried() -> None:
    cadence = SlowCadence(2)
    first = slow("a")
    cycle(cadence, ["a", "b"], a=first)
    due, carried = cycle(cadence, ["a", "b"])
    assert due == ["b"]
    assert carried == first  # the very results taken before, checked_at unchanged
    assert all(cadence.carried(r) for r in carried)
    assert not cadence.carried(slow("a")[0])


def test_failed_or_busy_results_are_probed_again_next_cycle() -> None:
    cadence = SlowCadence(10)
    busy = [{"contact": "c1", "status": "opened", "await_user": False}]
    waiting = [{"contact": "c2", "status": "opened", "await_user": True}]
    cycle(
        cadence,
        ["a", "b", "c"],
        a=slow("a", ok=False),
        b=slow("b", sessions=busy),
        c=slow("c", sessions=waiting),
    )
    due, _ = cycle(cadence, ["a", "b", "c"])
    assert due == ["a", "b"]  # a failed, b's bot was busy on a reply; c is settled and waits its turn


def test_asked_instances_are_probed_at_the_next_cycle_only() -> None:
    cadence = SlowCadence(10)
    cycle(cadence, NAMES)
    cadence.refresh(["inst-5", "gone"])
    assert cycle(cadence, NAMES)[0] == ["inst-1", "inst-5"]
    assert cycle(cadence, NAMES)[0] == ["inst-2"]


def test_every_one_probes_everything_each_cycle_and_instances_that_leave_are_forgotten() -> None:
    cadence = SlowCadence(1)
    for _ in range(3):
        assert cycle(cadence, NAMES) == (NAMES, [])
    cadence = SlowCadence(3)
    cycle(cadence, NAMES)
    _, carried = cycle(cadence, NAMES[:2])
    assert {r.target for r in carried} <= {instance_target(n) for n in NAMES[:2]}
    assert cycle(cadence, NAMES)[0][-len(NAMES[2:]) :] == NAMES[2:]  # back again: unknown, probed at once


def test_every_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SlowCadence(0)


async def test_evolution_probes_ask_connection_state_every_cycle_and_the_rest_every_nth(
    clock: FakeClock,
) -> None:
    asked: Counter[str] = Counter()

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        asked[path.split("/")[-2] if path.count("/") > 2 else path] += 1
        if path == "/":
            return httpx.Response(200, json={"version": "2.3.0"})
        if path.endswith("fetchInstances"):
            return httpx.Response(200, json=[{"name": n, "connectionStatus": "open"} for n in NAMES])
        if "connectionState" in path:
            return httpx.Response(200, json={"instance": {"state": "open"}})
        return httpx.Response(200, json={} if "/webhook/" in path else [])

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        client = EvolutionClient(http, "http://evolution.test", "key", timeout=1)
        runner = ProbeRunner(clock, concurrency=4, deadline=1)
        probes = EvolutionProbes(client, runner, contact_key=b"test-contact-key-0123", slow_every=4)
        first = await probes.run_all()
        finds = len(INTEGRATIONS) + 1  # each integration's bots, and the webhook
        assert asked == Counter(
            {"/": 1, "/instance/fetchInstances": 1, "connectionState": 8, "find": 8 * finds}
        )
        asked.clear()
        second = await probes.run_all()
    assert asked == Counter({"/": 1, "/instance/fetchInstances": 1, "connectionState": 8, "find": 2 * finds})
    shape = sorted((r.target, r.probe) for r in first)
    assert sorted((r.target, r.probe) for r in second) == shape  # the same results, 12 of 16 carried over
    assert sum(probes.cadence.carried(r) for r in second) == 12
