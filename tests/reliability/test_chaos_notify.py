"""Chaos: the notification targets are down, one answering 500 and one accepting but never answering."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.integration.stack import running_stack
from tests.reliability.harness import MuteServer, running, until
from watchdog.notify import Notifier
from watchdog.serving import ThreadedServer
from watchdog.sim.runner import EvolutionOptions

pytestmark = pytest.mark.integration
ATTEMPTS = 3


@pytest.fixture
def broken_target() -> Iterator[tuple[str, Counter[str]]]:
    """A notify receiver that counts every POST by title and answers each with HTTP 500."""
    titles: Counter[str] = Counter()

    async def fail(request: Request) -> JSONResponse:
        body: Any = await request.json()
        titles[str(body.get("title"))] += 1
        return JSONResponse({"error": "down"}, status_code=500)

    with ThreadedServer(Starlette(routes=[Route("/{p:path}", fail, methods=["POST"])])) as server:
        yield server.url.replace("http://", "json://") + "/alerts", titles


async def test_dead_notify_targets_are_retried_with_a_bound_and_never_block_detection(
    broken_target: tuple[str, Counter[str]],
) -> None:
    """Expected: each notification is tried exactly 3 times per target (no more), the silent target
    costs at most its timeout per try, failures are counted, probe cycles keep finishing every interval
    while the sends are failing (/healthz ok), and the repair itself still happens."""
    failing_url, titles = broken_target
    one_instance = EvolutionOptions(instances=("loja",), debounce_seconds=0)
    with MuteServer() as mute, running_stack(one_instance) as stack:
        silent_url = mute.url.replace("http://", "json://") + "/alerts"
        settings = stack.settings(
            WATCHDOG_RECOVERY_MODE="auto",
            WATCHDOG_RECOVERY_HOLD_SECONDS="1",
            WATCHDOG_NOTIFY_URLS=f"{failing_url} {silent_url}",
        )
        async with running(settings) as (watchdog, _daemon):
            # the shipped timeout is 10 s a try; 1 s keeps this test short, the bound is the same code
            notifier = Notifier(
                settings.notify_urls, watchdog.clock, timeout=1.0, attempts=ATTEMPTS, retry_delay=0.2
            )
            watchdog.recovery.notifier = notifier
            await until(lambda: watchdog.board.cycles >= 1, 30, "a first probe cycle")
            stack.fault("evolution", "socket_closed", instance="loja")
            await until(lambda: titles["Incident: instance:loja"] >= 1, 30, "the first try")
            cycles_at_first_try = watchdog.board.cycles
            await until(lambda: notifier.failed >= 1, 30, "the notification to be given up")
            cycles_while_sending = watchdog.board.cycles - cycles_at_first_try
            alive, detail = watchdog.liveness()
            loja = stack.evolution.instances["loja"]
            await until(lambda: loja.state == "open", 60, "the repair, notifications failing or not")
    assert titles["Incident: instance:loja"] == ATTEMPTS
    assert all(count <= ATTEMPTS for count in titles.values()), titles
    assert mute.accepted >= ATTEMPTS
    assert notifier.sent == 0 and notifier.failed >= 1
    assert cycles_while_sending >= 1  # three tries take over 3 s; cycles come every second meanwhile
    assert alive, detail


async def test_a_silent_notify_target_does_not_hold_up_the_repair() -> None:
    """Expected: with the only target accepting and never answering (each try held for 30 s), the
    incident's news is still in flight when the instance has been restarted and verified open: news is
    posted in the background and only a page waits for delivery. At shutdown the send is abandoned."""
    one_instance = EvolutionOptions(instances=("loja",), debounce_seconds=0)
    with MuteServer() as mute, running_stack(one_instance) as stack:
        settings = stack.settings(
            WATCHDOG_RECOVERY_MODE="auto",
            WATCHDOG_NOTIFY_URLS=mute.url.replace("http://", "json://") + "/alerts",
        )
        async with running(settings) as (watchdog, _daemon):
            notifier = Notifier(settings.notify_urls, watchdog.clock, timeout=30.0, attempts=1)
            watchdog.recovery.notifier = notifier
            await until(lambda: watchdog.board.cycles >= 1, 30, "a first probe cycle")
            stack.fault("evolution", "socket_closed", instance="loja")

            def repaired() -> bool:
                history = watchdog.recovery.journal.history()
                return (
                    any(
                        a["kind"] == "restart_instance" and a["result"] == "ok" for a in history[0]["actions"]
                    )
                    if history
                    else False
                )

            await until(repaired, 20, "the restart, verified")
            in_flight_at_repair, given_up = notifier.in_flight, notifier.failed
            await notifier.drain(timeout=0.1)
    assert in_flight_at_repair >= 1 and given_up == 0  # the news was still on its way: nobody waited
    assert notifier.in_flight == 0  # drained (abandoned) at shutdown
