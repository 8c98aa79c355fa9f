"""Dify probes: liveness (DIFY_HEALTH_URL, else GET /v1/info) and the authenticated app info.

Without DIFY_HEALTH_URL both read the same `GET /v1/info`: one request gives both results. A refused
key there is Dify answering (liveness ok) and a bad key (app_info fails with `auth`).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

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
            return True, live.detail, {"version": live.version}

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
        if self.client.has_health_url:
            return list(await asyncio.gather(self.liveness(), self.app_info()))
        info = await self.app_info()
        return [liveness_from_info(info), info]


def liveness_from_info(info: ProbeResult) -> ProbeResult:
    """The liveness result `GET /v1/info` gives: Dify's own refusal of the key still proves it answers."""
    if info.ok:
        return replace(info, probe="liveness", detail="answers GET /v1/info", data={"version": ""})
    if info.data.get("error") == "auth" and info.data.get("code"):
        status = info.data.get("status")
        detail = f"answers GET /v1/info (key refused: HTTP {status} {info.data['code']})"
        return replace(info, probe="liveness", ok=True, detail=detail, data={"version": ""})
    return replace(info, probe="liveness")
