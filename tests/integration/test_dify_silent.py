"""dify_silent end to end: a real container goes quiet while Evolution's webhooks keep arriving."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from tests.integration import dockerkit
from tests.integration.stack import running_stack
from watchdog.app import Daemon, Watchdog
from watchdog.clock import SystemClock
from watchdog.probes.suite import http_client
from watchdog.sim.runner import EvolutionOptions

pytestmark = pytest.mark.integration
PRINTER = str(dockerkit.ROOT / "tests" / "containers" / "printer.py")


async def until(condition: Any, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def test_dify_silent_fires_while_customers_write_and_clears_when_dify_speaks(
    docker_engine: Any, tmp_path: Path
) -> None:
    name = "evo-watchdog-test-dify-api"
    quiet = tmp_path / "quiet"
    args = [PRINTER, "--state", str(tmp_path / "seq"), "--format", "dify", "--interval", "0.1"]
    dockerkit.run_python(docker_engine, name, [*args, "--quiet-file", str(quiet)], tmp_path)
    opts = EvolutionOptions(instances=("loja",), debounce_seconds=0, traffic_interval=0.2)
    with running_stack(opts) as stack:
        settings = stack.settings(
            DIFY_CONTAINERS=name, WATCHDOG_DIFY_SILENT_SECONDS="1.5", WATCHDOG_STALL_SECONDS="5"
        )
        async with http_client(settings) as http:
            watchdog = Watchdog(settings, clock=SystemClock(), registry=CollectorRegistry(), http=http)
            daemon = Daemon(watchdog)
            task = asyncio.create_task(daemon.run())
            try:
                hook = {
                    "enabled": True,
                    "url": f"{daemon.url}/webhook/evolution",
                    "events": ["MESSAGES_UPSERT"],
                }
                stack.http.post(
                    f"{stack.evolution_url}/webhook/set/loja",
                    json={"webhook": hook},
                    headers={"apikey": "stack-evolution-key"},
                ).raise_for_status()
                lines = "watchdog_log_lines_total"
                await until(lambda: (watchdog.registry.get_sample_value(lines, {"container": name}) or 0) > 5)
                assert not [f for f in watchdog.board.findings if f.kind == "dify_silent"]
                quiet.touch()
                went_quiet = time.monotonic()
                await until(lambda: any(f.kind == "dify_silent" for f in watchdog.board.findings))
                assert time.monotonic() - went_quiet >= 1.5
                quiet.unlink()
                await until(lambda: not any(f.kind == "dify_silent" for f in watchdog.board.findings))
                async with httpx.AsyncClient() as client:
                    metrics = (await client.get(f"{daemon.url}/metrics")).text
            finally:
                daemon.stop()
                await task
                dockerkit.remove(docker_engine, name)
    assert 'watchdog_findings{kind="dify_silent",severity="critical"} 0.0' in metrics
