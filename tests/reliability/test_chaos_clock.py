"""Chaos: the wall clock jumps (NTP step, an operator's `date -s`) while the monotonic clock runs on.

Turnaround, stalls, probe durations, /healthz and notification dedup run on the monotonic clock. The
recovery ladder keeps wall-clock stamps (its journal outlives the process); found by this test, a
backward jump froze it (no escalation, no incident closed, for as long as the jump) and a forward jump
skipped the backoff at once. Its stamps now advance with the monotonic clock while the process runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry

from watchdog.app import Watchdog
from watchdog.clock import FakeClock
from watchdog.config import Settings
from watchdog.metrics import Metrics
from watchdog.model import Finding, Severity
from watchdog.recovery.engine import RecoveryEngine, build_engine
from watchdog.signals.conversations import ConversationMonitor
from watchdog.signals.webhook import Envelope

HOUR = 3600.0
DOWN = [Finding("instance_disconnected", "evolution:loja", Severity.CRITICAL, "connecting, not open")]


def settings_for(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env(
        {
            "EVOLUTION_INSTANCES": "loja",
            "WATCHDOG_RECOVERY_MODE": "dry-run",
            "WATCHDOG_RECOVERY_HOLD_SECONDS": "1",
            "WATCHDOG_STATE_PATH": str(tmp_path / "journal.db"),
            "WATCHDOG_CONFIRM_CYCLES": "1",  # each tick a confirmed fault: the ladder's clock is the subject
            **env,
        }
    )


@pytest.fixture
async def engine(tmp_path: Path, clock: FakeClock) -> AsyncIterator[RecoveryEngine]:
    async with httpx.AsyncClient() as http:
        built = build_engine(
            settings_for(tmp_path), clock=clock, http=http, metrics=Metrics(CollectorRegistry())
        )
        built.resume()
        yield built
        built.journal.close()


async def kinds(engine: RecoveryEngine, findings: list[Finding]) -> list[str]:
    return [action.kind for action in await engine.tick(findings)]


async def test_backward_jump_neither_freezes_the_ladder_nor_makes_negative_durations(
    engine: RecoveryEngine, clock: FakeClock
) -> None:
    """Expected: after the clock goes back an hour, the next rung still comes after the 10 s backoff, the
    incident still closes after the 1 s hold, and its recovery time is positive (here 13 s)."""
    assert await kinds(engine, DOWN) == ["restart_instance"]
    clock.jump_wall(-HOUR)
    clock.advance(5)
    assert await kinds(engine, DOWN) == []  # backoff: 10 s
    clock.advance(6)
    assert await kinds(engine, DOWN) == ["page"]
    clock.advance(1)
    await engine.tick([])  # healthy from now
    clock.advance(1)
    await engine.tick([])  # held for 1 s: closes
    incident = engine.journal.history()[0]
    assert incident["closed_at"] is not None
    assert incident["closed_at"] - incident["opened_at"] == pytest.approx(13.0)


async def test_forward_jump_skips_no_backoff_and_no_budget(engine: RecoveryEngine, clock: FakeClock) -> None:
    """Expected: an hour's jump forward one second after a restart does not count as the backoff having
    passed (no immediate escalation), nor as the hour of the restart budget having passed."""
    assert await kinds(engine, DOWN) == ["restart_instance"]
    clock.jump_wall(HOUR)
    clock.advance(1)
    assert await kinds(engine, DOWN) == []
    recent = engine.journal.recent_actions(engine.now() - HOUR)
    assert [a.kind for a in recent] == ["restart_instance"]  # still inside the budget's hour


def inbound(jid: str, message_id: str) -> Envelope:
    data = {"key": {"remoteJid": jid, "fromMe": False, "id": message_id}, "messageType": "conversation"}
    return Envelope("messages.upsert", "loja", data)


def reply(jid: str, message_id: str) -> Envelope:
    data = {"key": {"remoteJid": jid, "fromMe": True, "id": message_id}, "messageType": "conversation"}
    return Envelope("send.message", "loja", data)


def test_turnaround_and_stalls_ignore_wall_clock_jumps(clock: FakeClock) -> None:
    """Expected: a reply 2 s after the message measures 2 s across a backward jump (never negative); a
    forward jump of two hours raises no stall; the stall comes when 60 s have really passed."""
    registry = CollectorRegistry()
    monitor = ConversationMonitor(
        clock,
        Metrics(registry),
        contact_key=b"test-contact-key-0123",
        threshold=5,
        stall_seconds=60,
        max_pending=100,
    )
    monitor.ingest(inbound("5511900000001@s.whatsapp.net", "in-1"))
    clock.jump_wall(-HOUR)
    clock.advance(2)
    monitor.ingest(reply("5511900000001@s.whatsapp.net", "out-1"))
    labels = {"instance": "loja", "kind": "text", "integration": "unknown"}
    assert registry.get_sample_value("watchdog_turnaround_seconds_sum", labels) == pytest.approx(2.0)

    monitor.ingest(inbound("5511900000002@s.whatsapp.net", "in-2"))
    clock.jump_wall(2 * HOUR)
    clock.advance(1)
    assert monitor.collect_stalls() == []
    clock.advance(60)
    assert len(monitor.collect_stalls()) == 1


async def test_healthz_liveness_ignores_wall_clock_jumps(tmp_path: Path, clock: FakeClock) -> None:
    """Expected: a probe cycle 1 s ago is fresh whatever the wall clock does; stale only when the
    monotonic clock says so."""
    settings = settings_for(tmp_path, WATCHDOG_PROBE_INTERVAL_SECONDS="15")
    async with httpx.AsyncClient() as http:
        watchdog = Watchdog(settings, clock=clock, registry=CollectorRegistry(), http=http)
        watchdog.board.record_cycle([], mono=clock.monotonic(), wall=clock.time())
        clock.advance(1)
        for jump in (HOUR, -2 * HOUR):
            clock.jump_wall(jump)
            assert watchdog.liveness()[0]
        clock.advance(60)
        assert not watchdog.liveness()[0]
        watchdog.recovery.journal.close()
