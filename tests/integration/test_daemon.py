"""`evo-watchdog run`: scheduler and server in one loop; metrics, health, status; clean SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.stack import DIFY_KEY, EVOLUTION_KEY, Stack, running_stack
from watchdog.app import Daemon, Watchdog
from watchdog.clock import SystemClock
from watchdog.probes.suite import http_client

pytestmark = pytest.mark.integration


async def _serve(stack: Stack, **env: str) -> tuple[Watchdog, Daemon, asyncio.Task[None]]:
    settings = stack.settings(**env)
    http = http_client(settings)
    watchdog = Watchdog(settings, clock=SystemClock(), registry=CollectorRegistry(), http=http)
    daemon = Daemon(watchdog)
    return watchdog, daemon, asyncio.create_task(daemon.run())


async def _until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def test_daemon_serves_metrics_health_and_status_without_secrets() -> None:
    with running_stack() as stack:
        stack.fault("evolution", "socket_closed", instance="suporte")
        watchdog, daemon, task = await _serve(stack)
        try:
            await _until(lambda: watchdog.board.cycles >= 2)
            async with httpx.AsyncClient(base_url=daemon.url) as client:
                metrics = (await client.get("/metrics")).text
                health = await client.get("/healthz")
                status = (await client.get("/api/status")).json()
        finally:
            daemon.stop()
            await task
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
        watchdog, daemon, task = await _serve(stack)
        real_cycle = watchdog.suite.run_cycle
        calls = 0

        async def flaky(*, canary: bool = False):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("boom")
            return await real_cycle(canary=canary)

        watchdog.suite.run_cycle = flaky  # type: ignore[method-assign]
        try:
            await _until(lambda: watchdog.board.cycles >= 1)
        finally:
            daemon.stop()
            await task
    value = watchdog.registry.get_sample_value("watchdog_job_failures_total", {"job": "probes"})
    assert value == 1 and calls >= 2


async def test_healthz_turns_503_when_cycles_stop() -> None:
    with running_stack() as stack:
        watchdog, daemon, task = await _serve(stack)
        try:
            await _until(lambda: watchdog.board.cycles >= 1)
            daemon.scheduler.pause()
            watchdog.board.last_cycle_at = time.monotonic() - 60  # as if the last cycle were a minute old
            async with httpx.AsyncClient(base_url=daemon.url) as client:
                health = await client.get("/healthz")
        finally:
            daemon.stop()
            await task
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
