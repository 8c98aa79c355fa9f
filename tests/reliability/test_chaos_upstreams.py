"""Chaos: upstreams that accept a connection and then never answer, or cut a stream short."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.stack import running_stack
from tests.reliability.harness import MuteServer, running, until
from watchdog.app import Watchdog
from watchdog.config import Settings
from watchdog.model import ProbeResult

pytestmark = pytest.mark.integration
SLACK = 3.0  # seconds of scheduling slack on a loaded machine, on top of a deadline


def result(watchdog: Watchdog, target: str, probe: str) -> ProbeResult:
    return next(r for r in watchdog.board.results if r.target == target and r.probe == probe)


async def watch_cycles(watchdog: Watchdog, cycles: int, probe: MuteServer | None = None) -> tuple[int, int]:
    """Let `cycles` more probe cycles finish; returns the most asyncio tasks and the most connections held
    open at the mute server seen meanwhile."""
    goal = watchdog.board.cycles + cycles
    most_tasks = most_open = 0
    async with asyncio.timeout(60):
        while watchdog.board.cycles < goal:
            most_tasks = max(most_tasks, len(asyncio.all_tasks()))
            most_open = max(most_open, probe.open_now if probe else 0)
            await asyncio.sleep(0.05)
    return most_tasks, most_open


async def test_evolution_accepting_connections_but_never_answering(tmp_path: Path) -> None:
    """Expected: each probe gives up at its deadline (0.5 s), evolution_down is found from fetchInstances,
    probe cycles keep finishing every interval (/healthz stays ok), and nothing piles up: the loop's task
    count and the connections left open at the silent server stay flat over six cycles."""
    with MuteServer() as mute:
        settings = Settings.from_env(
            {
                "EVOLUTION_URL": mute.url,
                "EVOLUTION_API_KEY": "k",
                "WATCHDOG_PROBE_INTERVAL_SECONDS": "1",
                "WATCHDOG_PROBE_TIMEOUT_SECONDS": "0.5",
                "WATCHDOG_LISTEN": "127.0.0.1:0",
                "WATCHDOG_STATE_PATH": str(tmp_path / "journal.db"),
            }
        )
        async with running(settings) as (watchdog, _daemon):
            await watch_cycles(watchdog, 2)
            early_tasks, early_open = await watch_cycles(watchdog, 2, mute)
            late_tasks, late_open = await watch_cycles(watchdog, 4, mute)
            alive, detail = watchdog.liveness()
            findings = {f.kind for f in watchdog.board.findings}
            probes = [result(watchdog, "evolution", "version"), result(watchdog, "evolution", "instances")]
    assert mute.accepted >= 12  # every cycle really tried both calls
    version, listing = probes
    # GET / is the version probe (upstream's waits on web.whatsapp.com): its timeout only loses the version
    assert version.ok and version.data["version_error"] == "timeout" and version.duration < 0.5 + SLACK
    # fetchInstances is the liveness signal
    assert not listing.ok and listing.data["error"] == "timeout" and listing.duration < 0.5 + SLACK
    assert "evolution_down" in findings
    assert alive, detail
    assert late_open <= max(early_open, 2)  # two calls per cycle, each closed at its deadline
    assert late_tasks <= early_tasks + 2


async def test_dify_hanging_then_cutting_its_stream(tmp_path: Path) -> None:
    """Expected: with Dify hanging (every route), its liveness and app probes fail with `timeout` and the
    canary fails as a stall, each within its deadline, while Evolution's probes stay green and cycles keep
    coming with a flat task count; with the hang lifted and streams cut before `message_end`, Dify's probes
    recover and the canary alone fails, saying why."""
    with running_stack() as stack:
        stack.fault("dify", "hang", scope="all")
        # recovery off: once the hang is confirmed (three turns) its actions and news start tasks of their
        # own mid-window, which is work beginning, not probes piling up (what the task count checks here)
        settings = stack.settings(WATCHDOG_CANARY_INTERVAL_SECONDS="1", WATCHDOG_RECOVERY_MODE="off")
        async with running(settings) as (watchdog, _daemon):
            await until(lambda: watchdog._canary is not None, 30, "a canary run")
            early_tasks, _ = await watch_cycles(watchdog, 2)
            late_tasks, _ = await watch_cycles(watchdog, 4)
            hung = [result(watchdog, "dify", "liveness"), result(watchdog, "dify", "app_info")]
            hung_canary = watchdog._canary
            evolution_ok = result(watchdog, "evolution", "version").ok
            stack.http.delete(f"{stack.dify_root}/_sim/faults/hang").raise_for_status()
            stack.fault("dify", "truncate_stream")
            await until(
                lambda: (
                    result(watchdog, "dify", "liveness").ok
                    and watchdog._canary is not None
                    and "message_end" in watchdog._canary.detail
                ),
                30,
                "the truncated stream to be reported",
            )
            cut_canary = watchdog._canary
    for probe in hung:
        assert not probe.ok and probe.data["error"] == "timeout" and probe.duration < 0.5 + SLACK
    assert hung_canary is not None and not hung_canary.ok and "stalled" in hung_canary.detail
    assert hung_canary.duration < 2 * 0.5 + 1 + SLACK  # the canary's own deadline: 2x threshold + 1 s
    assert evolution_ok
    assert late_tasks <= early_tasks + 2
    assert not cut_canary.ok and "without message_end" in cut_canary.detail
