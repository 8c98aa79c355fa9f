"""The session probe stops asking integrations that Evolution has off (`<Label> is disabled`), still lists
them as off, and asks again after the recheck time: an integration turned on is read then (the emulator
over real HTTP, a fake clock)."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from tests.integration.stack import running_stack
from watchdog.clients.evolution import evolution_client_for
from watchdog.clock import FakeClock
from watchdog.integrations import INTEGRATIONS
from watchdog.model import ProbeResult
from watchdog.probes.base import ProbeRunner
from watchdog.probes.evolution import EvolutionProbes
from watchdog.probes.offhere import OFF_RECHECK_SECONDS

pytestmark = pytest.mark.integration
OFF = ["typebot", "openai", "flowise", "n8n", "evoai"]  # upstream's default: *_ENABLED false


async def test_integrations_off_here_are_skipped_listed_and_asked_again_after_the_recheck() -> None:
    finds: Counter[str] = Counter()

    async def count(request: httpx.Request) -> None:
        if "/find/" in request.url.path:
            finds[request.url.path.split("/")[1]] += 1

    with running_stack() as stack:
        stack.evolution.disabled_integrations.update(OFF)
        clock = FakeClock()
        settings = stack.settings()
        async with httpx.AsyncClient(trust_env=False, event_hooks={"request": [count]}) as http:
            probes = EvolutionProbes(
                evolution_client_for(http, settings),
                ProbeRunner(clock, concurrency=4, deadline=2.0),
                contact_key=b"test-contact-key-0123",
            )

            async def read() -> tuple[ProbeResult, Counter[str]]:
                finds.clear()
                result = await probes.sessions("loja")
                return result, Counter(finds)

            first, asked_first = await read()
            clock.advance(OFF_RECHECK_SECONDS - 1)
            second, asked_second = await read()
            stack.evolution.disabled_integrations.discard("typebot")  # turned on, Evolution restarted
            clock.advance(1)
            third, asked_third = await read()
            fourth, asked_fourth = await read()
    everything = {i.name for i in INTEGRATIONS}
    assert set(asked_first) == everything and first.ok
    assert set(asked_second) == {"dify", "evolutionBot"}, asked_second  # the off ones are not asked
    assert second.ok and second.data["off"] == first.data["off"] == OFF
    assert "off here: typebot, openai, flowise, n8n, evoai" in second.detail
    assert set(asked_third) == everything and third.data["off"] == OFF[1:]
    assert set(asked_fourth) == {"dify", "evolutionBot", "typebot"} and fourth.data["off"] == OFF[1:]
