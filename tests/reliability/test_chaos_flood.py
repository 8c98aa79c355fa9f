"""Chaos: a webhook flood at ten times a busy bot's normal rate, mixed with junk and unwatched instances."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.integration.stack import running_stack
from tests.reliability.harness import running, total, until

pytestmark = pytest.mark.integration
TOKEN = "flood-token"
NORMAL_PER_SECOND = 10  # a busy shop: ten deliveries a second
FLOOD_PER_SECOND = 10 * NORMAL_PER_SECOND
SECONDS = 5
MAX_PENDING = 100


def payload(i: int) -> bytes:
    """Mostly new customers on a watched instance (more than the pending table holds), some for an
    instance nobody watches, some junk."""
    if i % 5 == 3:
        return b'{"event": "pizza"'
    instance = "fantasma" if i % 5 == 4 else "loja"
    body = {
        "event": "messages.upsert",
        "instance": instance,
        "data": {
            "key": {"remoteJid": f"55119{i:08d}@s.whatsapp.net", "fromMe": False, "id": f"FLOOD{i}"},
            "messageType": "conversation",
            "message": {"conversation": "Oi"},
        },
        "apikey": "x",
    }
    return json.dumps(body).encode()


def flood(url: str) -> list[int | str]:
    """FLOOD_PER_SECOND deliveries a second for SECONDS, from four senders; each answer's status (or the
    transport error's name)."""
    count = FLOOD_PER_SECOND * SECONDS
    started = time.monotonic()

    def send(i: int, client: httpx.Client) -> int | str:
        delay = started + i / FLOOD_PER_SECOND - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            return client.post(url, content=payload(i), headers={"x-watchdog-token": TOKEN}).status_code
        except httpx.HTTPError as exc:
            return type(exc).__name__

    limits = httpx.Limits(max_connections=8)
    with httpx.Client(timeout=30, limits=limits) as client, ThreadPoolExecutor(4) as pool:
        return list(pool.map(lambda i: send(i, client), range(count)))


async def test_a_flood_ten_times_normal_is_answered_counted_and_bounded() -> None:
    """Expected: every delivery answered (200, or 4xx for the junk; no 5xx, no dropped connection), each
    counted once in watchdog_webhook_events_total, the pending table capped at WATCHDOG_MAX_PENDING with
    the overflow counted as evictions, the unwatched instance kept out of every table, and probe cycles
    still finishing every interval during the flood (/healthz ok)."""
    with running_stack() as stack:
        settings = stack.settings(
            WATCHDOG_WEBHOOK_TOKEN=TOKEN,
            WATCHDOG_MAX_PENDING=str(MAX_PENDING),
            WATCHDOG_STALL_SECONDS="600",
        )
        async with running(settings) as (watchdog, daemon):
            await until(lambda: watchdog.board.cycles >= 1, 30, "a first probe cycle")
            cycles_before = watchdog.board.cycles
            statuses = await asyncio.to_thread(flood, f"{daemon.url}/webhook/evolution")
            cycles_during = watchdog.board.cycles - cycles_before
            alive, detail = watchdog.liveness()
            async with httpx.AsyncClient() as client:
                health = await client.get(f"{daemon.url}/healthz")
    sent = FLOOD_PER_SECOND * SECONDS
    assert len(statuses) == sent
    assert set(statuses) <= {200, 400}, sorted({str(s) for s in statuses})
    assert statuses.count(400) == sent // 5  # the junk, refused as not JSON
    assert total(watchdog, "watchdog_webhook_events_total") == sent
    assert total(watchdog, "watchdog_webhook_events_total", outcome="rejected_not_json") == sent // 5
    assert total(watchdog, "watchdog_webhook_events_total", outcome="ignored_unwatched") == sent // 5
    accepted = total(watchdog, "watchdog_webhook_events_total", outcome="accepted")
    assert accepted == sent * 3 // 5
    assert len(watchdog.conversations.tracker.pending()) == MAX_PENDING
    assert total(watchdog, "watchdog_pending_evictions_total") == accepted - MAX_PENDING
    assert "fantasma" not in watchdog.conversations.activity
    assert cycles_during >= SECONDS - 2  # one a second, give or take a loaded machine
    assert alive and health.status_code == 200, detail
