"""Dify probes: keyless liveness, then an authenticated cheap call that touches its database and Redis."""

from __future__ import annotations

import asyncio

from watchdog.clients.dify import DifyClient
from watchdog.model import ProbeResult
from watchdog.probes.base import Observation, ProbeRunner


class DifyProbes:
    def __init__(self, client: DifyClient, runner: ProbeRunner) -> None:
        self.client = client
        self.runner = runner

    async def liveness(self) -> ProbeResult:
        async def call() -> Observation:
            live = await self.client.liveness()
            return True, f"Dify {live.version}".strip(), {"version": live.version}

        return await self.runner.run("dify", "liveness", call)

    async def app_info(self) -> ProbeResult:
        async def call() -> Observation:
            info = await self.client.app_info()
            mode = str(info.get("mode") or "")
            return True, f"app {info.get('name', '?')!s} ({mode})", {"mode": mode}

        return await self.runner.run("dify", "app_info", call)

    async def run_all(self) -> list[ProbeResult]:
        if not self.client.has_key:
            return [await self.liveness()]
        return list(await asyncio.gather(self.liveness(), self.app_info()))
