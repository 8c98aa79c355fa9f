"""ProbeRunner: failures become results; the deadline holds; concurrency is bounded."""

from __future__ import annotations

import asyncio

from watchdog.clock import FakeClock
from watchdog.errors import UpstreamAuthError, UpstreamHTTPError, UpstreamUnreachable
from watchdog.probes.base import Observation, ProbeRunner


async def test_success_is_timed_on_the_injected_clock(clock: FakeClock) -> None:
    runner = ProbeRunner(clock, concurrency=2, deadline=1)

    async def call() -> Observation:
        clock.advance(0.25)
        return True, "fine", {"x": 1}

    result = await runner.run("evolution", "version", call)
    assert (result.ok, result.detail, dict(result.data), result.duration) == (True, "fine", {"x": 1}, 0.25)
    assert result.checked_at == clock.time() - 0.25


async def test_upstream_errors_become_failed_results(clock: FakeClock) -> None:
    runner = ProbeRunner(clock, concurrency=2, deadline=1)

    async def refused() -> Observation:
        raise UpstreamUnreachable("dify", "GET /: connection refused")

    async def denied() -> Observation:
        raise UpstreamAuthError("dify", 401, "Access token is invalid")

    a = await runner.run("dify", "liveness", refused)
    b = await runner.run("dify", "app_info", denied)
    assert (a.ok, a.data["error"]) == (False, "unreachable")
    assert (b.ok, b.data["error"], b.data["status"]) == (False, "auth", 401)
    assert b.detail == "HTTP 401: Access token is invalid"


async def test_every_detail_is_one_short_line_and_the_error_code_is_kept(clock: FakeClock) -> None:
    runner = ProbeRunner(clock, concurrency=1, deadline=1)
    page = "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Oops</h1>\n"

    async def html_error() -> Observation:
        raise UpstreamHTTPError("dify", 500, page + "<p>" + "details " * 60 + "</p>", code="")

    async def chatty() -> Observation:
        return True, "line one\nline two\t" + "x" * 300, {}

    async def dify_envelope() -> Observation:
        raise UpstreamHTTPError("dify", 400, "remoteJid is required in input form", code="invalid_param")

    failed = await runner.run("dify", "liveness", html_error)
    passed = await runner.run("dify", "liveness", chatty)
    refused = await runner.run("dify", "canary", dify_envelope)
    for result in (failed, passed):
        assert len(result.detail) <= 200 and "\n" not in result.detail and "<" not in result.detail
    assert failed.detail.startswith("HTTP 500: Oops details details")
    assert failed.detail.endswith("…") and passed.detail.startswith("line one line two x")
    assert dict(refused.data) == {"error": "http", "status": 400, "code": "invalid_param"}


async def test_deadline_turns_a_hang_into_a_timeout_result(clock: FakeClock) -> None:
    runner = ProbeRunner(clock, concurrency=1, deadline=0.05)

    async def hang() -> Observation:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    result = await runner.run("evolution", "version", hang)
    assert not result.ok and result.data["error"] == "timeout" and "0.05s" in result.detail


async def test_concurrency_limit_is_respected(clock: FakeClock) -> None:
    runner = ProbeRunner(clock, concurrency=3, deadline=5)
    running = 0
    peak = 0
    release = asyncio.Event()

    three_running = asyncio.Event()

    async def call() -> Observation:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        if running == 3:
            three_running.set()
        await release.wait()
        running -= 1
        return True, "", {}

    tasks = [asyncio.create_task(runner.run("t", "p", call)) for _ in range(10)]
    await three_running.wait()
    await asyncio.sleep(0.01)  # give the other seven every chance to exceed the limit
    assert peak == 3
    release.set()
    results = await asyncio.gather(*tasks)
    assert all(r.ok for r in results) and peak == 3
