"""Build every probe from Settings and run one cycle: Evolution and Dify side by side."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import httpx

from watchdog.clients.dify import dify_client_for
from watchdog.clients.evolution import evolution_client_for
from watchdog.clients.transport import SlotTransport
from watchdog.clock import Clock
from watchdog.config import Settings
from watchdog.model import ProbeResult
from watchdog.probes.base import ProbeRunner
from watchdog.probes.canary import DifyCanary
from watchdog.probes.dify import DifyProbes
from watchdog.probes.evolution import EvolutionProbes


def http_client(settings: Settings) -> httpx.AsyncClient:
    """One client for every probe; its WATCHDOG_PROBE_CONCURRENCY keep-alive slots bound open connections."""
    return httpx.AsyncClient(
        transport=SlotTransport(settings.probe_concurrency),
        timeout=settings.probe_timeout_seconds,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "evolution-watchdog"},
    )


class ProbeSuite:
    def __init__(
        self, settings: Settings, http: httpx.AsyncClient, clock: Clock, *, contact_key: bytes
    ) -> None:
        """`contact_key` (contactkey.resolve_contact_key) keys the contact ids of session probes."""
        timeout = settings.probe_timeout_seconds
        runner = ProbeRunner(clock, concurrency=settings.probe_concurrency, deadline=timeout)
        dify_client = dify_client_for(http, settings)
        self.evolution = EvolutionProbes(
            evolution_client_for(http, settings),
            runner,
            contact_key=contact_key,
            instances=settings.evolution_instances,
            dify=dify_client,
            dify_api_key=settings.dify_api_key,
            webhook_url=settings.webhook_url,
            slow_every=settings.slow_probe_every,
            exclude=[settings.e2e_from_instance] if settings.e2e_from_instance else [],
        )
        self.dify = DifyProbes(dify_client, runner) if dify_client is not None else None
        self.canary = (
            DifyCanary(
                http,
                runner,
                clock,
                base_url=settings.dify_url,
                api_key=settings.dify_api_key,
                threshold=settings.turnaround_threshold_seconds,
                patience=settings.stall_seconds,
                connect_timeout=timeout,
            )
            if settings.dify_url and settings.dify_api_key
            else None
        )

    async def run_cycle(self, *, canary: bool = False) -> list[ProbeResult]:
        """Every probe once; the canary too when asked and configured (it costs an LLM call)."""
        jobs = [self.evolution.run_all()]
        if self.dify is not None:
            jobs.append(self.dify.run_all())
        if canary and self.canary is not None:
            jobs.append(_one(self.canary.run()))
        return [result for batch in await asyncio.gather(*jobs) for result in batch]


async def _one(probe: Awaitable[ProbeResult]) -> list[ProbeResult]:
    return [await probe]
