"""Build every probe from Settings and run one cycle: Evolution and Dify side by side."""

from __future__ import annotations

import asyncio

import httpx

from watchdog.clients.dify import DifyClient
from watchdog.clients.evolution import EvolutionClient
from watchdog.clock import Clock
from watchdog.config import Settings
from watchdog.model import ProbeResult
from watchdog.probes.base import ProbeRunner
from watchdog.probes.dify import DifyProbes
from watchdog.probes.evolution import EvolutionProbes


def http_client(settings: Settings) -> httpx.AsyncClient:
    """One pooled client for every probe; the pool bounds open connections."""
    return httpx.AsyncClient(
        limits=httpx.Limits(
            max_connections=settings.probe_concurrency, max_keepalive_connections=settings.probe_concurrency
        ),
        timeout=settings.probe_timeout_seconds,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "evolution-watchdog"},
    )


class ProbeSuite:
    def __init__(self, settings: Settings, http: httpx.AsyncClient, clock: Clock) -> None:
        timeout = settings.probe_timeout_seconds
        runner = ProbeRunner(clock, concurrency=settings.probe_concurrency, deadline=timeout)
        dify_client = (
            DifyClient(
                http,
                settings.dify_url,
                settings.dify_api_key,
                health_url=settings.dify_health_url,
                timeout=timeout,
            )
            if settings.dify_url
            else None
        )
        self.evolution = EvolutionProbes(
            EvolutionClient(http, settings.evolution_url, settings.evolution_api_key, timeout=timeout),
            runner,
            instances=settings.evolution_instances,
            dify=dify_client,
            dify_api_key=settings.dify_api_key,
        )
        self.dify = DifyProbes(dify_client, runner) if dify_client is not None else None

    async def run_cycle(self) -> list[ProbeResult]:
        if self.dify is None:
            return await self.evolution.run_all()
        evolution, dify = await asyncio.gather(self.evolution.run_all(), self.dify.run_all())
        return evolution + dify
