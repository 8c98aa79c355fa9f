"""Evolution's own webhook sender -> the watchdog's real endpoint: turnaround, stalls, refusals."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from tests.integration.stack import Stack, running_stack
from watchdog.app import Daemon, Watchdog
from watchdog.clock import SystemClock
from watchdog.metrics import sample_total
from watchdog.probes.suite import http_client
from watchdog.sim.runner import EvolutionOptions

pytestmark = pytest.mark.integration

ANA = "5511987600001@s.whatsapp.net"
BIA = "5511987600002@s.whatsapp.net"
TOKEN = "hook-token-123"


@asynccontextmanager
async def watching(
    stack: Stack, *, by_events: bool = False, **env: str
) -> AsyncIterator[tuple[Watchdog, Daemon]]:
    """A watchdog daemon, with every Evolution instance's webhook pointed at it (as a user would)."""
    settings = stack.settings(WATCHDOG_WEBHOOK_TOKEN=TOKEN, **env)
    async with http_client(settings) as http:
        watchdog = Watchdog(settings, clock=SystemClock(), registry=CollectorRegistry(), http=http)
        daemon = Daemon(watchdog)
        task = asyncio.create_task(daemon.run())
        try:
            for instance in stack.evolution.instances:
                hook = {
                    "enabled": True,
                    "url": f"{daemon.url}/webhook/evolution?token={TOKEN}",
                    "byEvents": by_events,
                    "events": ["MESSAGES_UPSERT", "SEND_MESSAGE", "CONNECTION_UPDATE"],
                }
                if by_events:  # by-events appends /messages-upsert to the URL: the token goes in a header
                    hook["url"] = f"{daemon.url}/webhook/evolution"
                    hook["headers"] = {"x-watchdog-token": TOKEN}
                stack.http.post(
                    f"{stack.evolution_url}/webhook/set/{instance}",
                    json={"webhook": hook},
                    headers={"apikey": "stack-evolution-key"},
                ).raise_for_status()
            yield watchdog, daemon
        finally:
            daemon.stop()
            await task


async def until(condition: Any, timeout: float = 15.0) -> float:
    started = time.monotonic()
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)
    return time.monotonic() - started


def sample(watchdog: Watchdog, name: str, **labels: str) -> float:
    return sample_total(watchdog.registry, name, **labels)


async def test_dify_delays_of_2s_and_8s_show_in_histogram_and_breaches_per_kind() -> None:
    with running_stack(EvolutionOptions(instances=("loja",), debounce_seconds=0)) as stack:
        async with watching(
            stack, WATCHDOG_TURNAROUND_THRESHOLD_SECONDS="5", WATCHDOG_STALL_SECONDS="20"
        ) as (watchdog, _):
            stack.fault("dify", "slow", seconds=2.0, kind="text")
            stack.inbound(ANA, "Oi")
            await until(
                lambda: sample(watchdog, "watchdog_turnaround_seconds_count", instance="loja", kind="text")
            )
            stack.fault("dify", "slow", seconds=8.0, kind="media")
            stack.inbound(BIA, "foto", kind="image")
            await until(
                lambda: sample(watchdog, "watchdog_turnaround_seconds_count", instance="loja", kind="media")
            )
    text_sum = sample(watchdog, "watchdog_turnaround_seconds_sum", instance="loja", kind="text")
    media_sum = sample(watchdog, "watchdog_turnaround_seconds_sum", instance="loja", kind="media")
    # The watchdog's clock starts when the inbound webhook lands, a little after Evolution calls Dify.
    assert 1.8 <= text_sum < 3.0 and 7.8 <= media_sum < 9.0
    bucket = "watchdog_turnaround_seconds_bucket"
    assert sample(watchdog, bucket, instance="loja", kind="text", le="1.0") == 0
    assert sample(watchdog, bucket, instance="loja", kind="text", le="3.0") == 1
    assert sample(watchdog, bucket, instance="loja", kind="media", le="7.0") == 0
    assert sample(watchdog, bucket, instance="loja", kind="media", le="10.0") == 1
    assert sample(watchdog, "watchdog_turnaround_breaches_total", instance="loja", kind="text") == 0
    assert sample(watchdog, "watchdog_turnaround_breaches_total", instance="loja", kind="media") == 1
    accepted = sample(watchdog, "watchdog_webhook_events_total", event="messages.upsert", outcome="accepted")
    assert accepted == 2


async def test_forgotten_conversation_raises_stalled_contact_within_stall_plus_one_second() -> None:
    with running_stack(EvolutionOptions(instances=("loja",), debounce_seconds=0)) as stack:
        async with watching(stack, WATCHDOG_STALL_SECONDS="2", WATCHDOG_TURNAROUND_THRESHOLD_SECONDS="1") as (
            watchdog,
            daemon,
        ):
            stack.fault("dify", "forget_after", messages=1)
            stack.inbound(ANA, "Oi")
            await until(
                lambda: sample(watchdog, "watchdog_turnaround_seconds_count", instance="loja", kind="text")
            )
            sent_at = time.monotonic()  # before the send: the watchdog may see the webhook before we return
            stack.inbound(ANA, "Alô?")
            await until(lambda: any(f.kind == "stalled_contact" for f in watchdog.board.findings))
            found_after = time.monotonic() - sent_at
            async with httpx.AsyncClient(base_url=daemon.url) as client:
                status = (await client.get("/api/status")).json()
    assert 2.0 <= found_after <= 3.0, found_after
    stalled = [f for f in status["findings"] if f["kind"] == "stalled_contact"]
    assert stalled[0]["evidence"]["contact"].startswith("c-") and "5511" not in str(status)
    assert status["conversations"]["loja"]["stalled"][0]["kind"] == "text"


async def test_by_events_urls_and_the_token_header_are_accepted() -> None:
    with running_stack(EvolutionOptions(instances=("loja",), debounce_seconds=0)) as stack:
        async with watching(stack, by_events=True) as (watchdog, _):
            stack.inbound(ANA, "Oi")
            await until(
                lambda: sample(watchdog, "watchdog_turnaround_seconds_count", instance="loja", kind="text")
            )
    assert sample(watchdog, "watchdog_webhook_events_total", event="send.message", outcome="accepted") == 1


async def test_refusals_are_4xx_with_a_counter_and_never_500() -> None:
    with running_stack(EvolutionOptions(instances=("loja",))) as stack:
        async with watching(stack) as (watchdog, daemon):
            url = f"{daemon.url}/webhook/evolution"
            good = {
                "event": "messages.upsert",
                "instance": "loja",
                "data": {},
                "apikey": "SECRET-APIKEY-VALUE",
            }
            async with httpx.AsyncClient() as client:
                no_token = await client.post(url, json=good)
                wrong = await client.post(url, json=good, headers={"x-watchdog-token": "nope"})
                bearer = await client.post(
                    url,
                    json={**good, "event": "presence.update"},
                    headers={"authorization": f"Bearer {TOKEN}"},
                )
                not_json = await client.post(f"{url}?token={TOKEN}", content=b"{not json")
                unknown = await client.post(f"{url}?token={TOKEN}", json={**good, "event": "pizza.ready"})
                no_key = await client.post(f"{url}?token={TOKEN}", json=good)
                huge = await client.post(f"{url}?token={TOKEN}", content=b"x" * (8 * 1024 * 1024 + 1))
                mismatch = await client.post(f"{url}/send-message?token={TOKEN}", json=good)
                metrics = (await client.get(f"{daemon.url}/metrics")).text
    assert [r.status_code for r in (no_token, wrong, bearer, not_json, unknown, no_key, huge, mismatch)] == [
        401,
        401,
        200,
        400,
        422,
        422,
        413,
        422,
    ]
    assert bearer.json() == {"status": "ignored"}
    assert sample(watchdog, "watchdog_webhook_events_total", event="unknown", outcome="rejected_token") == 2
    assert (
        sample(watchdog, "watchdog_webhook_events_total", event="unknown", outcome="rejected_too_large") == 1
    )
    assert (
        sample(watchdog, "watchdog_webhook_events_total", event="unknown", outcome="rejected_no_message_key")
        == 1
    )
    assert "SECRET-APIKEY-VALUE" not in metrics and TOKEN not in metrics
