"""`evo-watchdog run`: scheduler and server in one loop; metrics, health, status; clean SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.stack import DIFY_KEY, EVOLUTION_KEY, Stack, running_stack
from watchdog.app import Daemon, Watchdog
from watchdog.clock import SystemClock
from watchdog.probes.suite import http_client
from watchdog.sim.runner import EvolutionOptions

pytestmark = pytest.mark.integration


@asynccontextmanager
async def serving(stack: Stack, **env: str) -> AsyncIterator[tuple[Watchdog, Daemon]]:
    """The daemon in this test's loop; stopped and its client closed on the way out."""
    settings = stack.settings(**env)
    async with http_client(settings) as http:
        watchdog = Watchdog(settings, clock=SystemClock(), registry=CollectorRegistry(), http=http)
        daemon = Daemon(watchdog)
        task = asyncio.create_task(daemon.run())
        try:
            yield watchdog, daemon
        finally:
            daemon.stop()
            await task


async def _until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_daemon_serves_metrics_health_and_status_without_secrets() -> None:
    with running_stack() as stack:
        stack.fault("evolution", "socket_closed", instance="suporte")
        async with serving(stack) as (watchdog, daemon):
            await _until(lambda: watchdog.board.cycles >= 2)
            async with httpx.AsyncClient(base_url=daemon.url) as client:
                metrics = (await client.get("/metrics")).text
                health = await client.get("/healthz")
                status = (await client.get("/api/status")).json()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
    }
    assert samples[("watchdog_probe_success", (("probe", "version"), ("target", "evolution")))] == 1
    state = ("watchdog_instance_connection_state", (("instance", "suporte"), ("state", "connecting")))
    assert samples[state] == 1
    assert samples[("watchdog_findings", (("kind", "instance_disconnected"), ("severity", "critical")))] == 1
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert status["healthy"] is False and status["cycles"] >= 2
    assert status["instances"]["suporte"]["state"] == "connecting"
    assert status["settings"]["evolution_api_key"] == "set"
    everything = metrics + str(status)
    assert EVOLUTION_KEY not in everything and DIFY_KEY not in everything


async def test_a_failing_job_is_counted_and_the_daemon_keeps_going() -> None:
    with running_stack() as stack:
        async with serving(stack) as (watchdog, _daemon):
            real_cycle = watchdog.suite.run_cycle
            calls = 0

            async def flaky(*, canary: bool = False):  # type: ignore[no-untyped-def]
                nonlocal calls
                calls += 1
                if calls == 1:
                    raise RuntimeError("boom")
                return await real_cycle(canary=canary)

            watchdog.suite.run_cycle = flaky  # type: ignore[method-assign]
            await _until(lambda: watchdog.board.cycles >= 1)
    value = watchdog.registry.get_sample_value("watchdog_job_failures_total", {"job": "probes"})
    assert value == 1 and calls >= 2


async def test_a_job_cut_off_by_shutdown_is_neither_a_failure_nor_an_error_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import io

    from loguru import logger

    errors = io.StringIO()
    sink = logger.add(errors, level="ERROR")
    try:
        with running_stack() as stack:
            async with serving(stack) as (watchdog, _daemon):
                started = asyncio.Event()

                async def endless(*, canary: bool = False):  # type: ignore[no-untyped-def]
                    started.set()
                    await asyncio.Event().wait()

                watchdog.suite.run_cycle = endless  # type: ignore[method-assign]
                await asyncio.wait_for(started.wait(), 30)
            await asyncio.sleep(0.2)  # the cancelled job runs to its end
    finally:
        logger.remove(sink)
    assert watchdog.registry.get_sample_value("watchdog_job_failures_total", {"job": "probes"}) is None
    assert errors.getvalue() == ""
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []  # APScheduler's


async def test_healthz_turns_503_when_cycles_stop() -> None:
    with running_stack() as stack:
        async with serving(stack) as (watchdog, daemon):
            await _until(lambda: watchdog.board.cycles >= 1)
            daemon.scheduler.pause()
            watchdog.board.last_cycle_at = time.monotonic() - 60  # as if the last cycle were a minute old
            async with httpx.AsyncClient(base_url=daemon.url) as client:
                health = await client.get("/healthz")
    assert health.status_code == 503 and health.json()["status"] == "stale"


def test_sigterm_shuts_the_daemon_down_cleanly() -> None:
    with running_stack() as stack:
        process = subprocess.Popen(
            [sys.executable, "-m", "watchdog", "run"],
            env={**os.environ, **stack.env(WATCHDOG_LOG_FORMAT="json")},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 20
            assert process.stderr is not None
            lines = []
            while time.monotonic() < deadline:
                line = process.stderr.readline()
                lines.append(line)
                if "watchdog listening on" in line:
                    break
            time.sleep(1.5)  # at least one probe cycle
            process.send_signal(signal.SIGTERM)
            _, rest = process.communicate(timeout=20)
        finally:
            process.kill() if process.poll() is None else None
    log = "".join(lines) + rest
    assert process.returncode == 0, log
    assert "received SIGTERM, shutting down" in log and "watchdog stopped" in log
    assert EVOLUTION_KEY not in log and DIFY_KEY not in log
    assert '"level": {"icon"' in log or '"record"' in log  # json log format


async def test_daemon_runs_the_canary_on_its_own_schedule() -> None:
    with running_stack() as stack:
        stack.fault("dify", "truncate_stream")
        async with serving(stack, WATCHDOG_CANARY_INTERVAL_SECONDS="1") as (watchdog, _daemon):
            await _until(lambda: any(f.kind == "dify_canary_failed" for f in watchdog.board.findings))
            failed = next(f for f in watchdog.board.findings if f.kind == "dify_canary_failed")
            stack.http.delete(f"{stack.dify_root}/_sim/faults/truncate_stream").raise_for_status()
            await _until(lambda: not any(f.kind == "dify_canary_failed" for f in watchdog.board.findings))
    assert "without message_end" in failed.summary
    labels = {"target": "dify", "probe": "canary"}
    assert watchdog.registry.get_sample_value("watchdog_probe_success", labels) == 1


async def test_slow_probes_run_every_nth_cycle_and_at_once_on_an_instance_with_a_finding() -> None:
    with running_stack(EvolutionOptions(instances=("loja", "suporte"))) as stack:
        settings = stack.settings(WATCHDOG_SLOW_PROBE_EVERY="10")
        registry = CollectorRegistry()
        async with http_client(settings) as http:
            watchdog = Watchdog(settings, clock=SystemClock(), registry=registry, http=http)
            cadence = watchdog.suite.evolution.cadence

            def fresh_sessions() -> set[str]:
                rows = watchdog.board.results
                return {r.target for r in rows if r.probe == "sessions" and not cadence.carried(r)}

            def observed(instance: str) -> float | None:
                labels = {"target": f"evolution:{instance}", "probe": "sessions"}
                return registry.get_sample_value("watchdog_probe_duration_seconds_count", labels)

            await watchdog.probe_cycle()
            assert fresh_sessions() == {"evolution:loja", "evolution:suporte"}  # all new: all probed
            stack.fault("evolution", "socket_closed", instance="loja")
            await watchdog.probe_cycle()
            assert fresh_sessions() == {"evolution:suporte"}  # its turn; loja's results carried over
            assert {r.target for r in watchdog.board.results if r.probe == "sessions"} == {
                "evolution:loja",
                "evolution:suporte",
            }
            assert observed("loja") == 1  # a carried result is not counted again
            assert any(f.kind == "instance_disconnected" for f in watchdog.board.findings)
            await watchdog.probe_cycle()
            assert fresh_sessions() == {"evolution:loja"}  # a finding on it: probed in full at once
            assert observed("loja") == 2 and observed("suporte") == 2
