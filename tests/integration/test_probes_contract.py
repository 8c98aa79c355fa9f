"""Probe contract: the same assertions hold against the emulators and, when configured, a real stack.

Set WATCHDOG_CONTRACT_EVOLUTION_URL/_KEY and WATCHDOG_CONTRACT_DIFY_URL/_KEY (and _DIFY_HEALTH_URL, the
api's /health) to run them against real services as well; by default they run against the emulators
over real loopback HTTP.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.integration.stack import DIFY_KEY, EVOLUTION_KEY, running_stack
from watchdog.clients.dify import DifyClient
from watchdog.clients.evolution import EvolutionClient
from watchdog.errors import UpstreamAuthError, UpstreamHTTPError
from watchdog.integrations import DIFY

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Target:
    evolution_url: str
    evolution_key: str
    dify_url: str
    dify_key: str
    dify_health_url: str


def _targets() -> list[str]:
    real = all(os.environ.get(f"WATCHDOG_CONTRACT_{v}") for v in ("EVOLUTION_URL", "EVOLUTION_KEY"))
    return ["emulators", "real"] if real else ["emulators"]


@pytest.fixture(params=_targets())
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "real":
        env = os.environ
        yield Target(
            env["WATCHDOG_CONTRACT_EVOLUTION_URL"],
            env["WATCHDOG_CONTRACT_EVOLUTION_KEY"],
            env.get("WATCHDOG_CONTRACT_DIFY_URL", ""),
            env.get("WATCHDOG_CONTRACT_DIFY_KEY", ""),
            env.get("WATCHDOG_CONTRACT_DIFY_HEALTH_URL", ""),
        )
        return
    with running_stack() as stack:
        yield Target(
            stack.evolution_url, EVOLUTION_KEY, stack.dify_url, DIFY_KEY, stack.dify_root + "/health"
        )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_evolution_version_and_instances(target: Target, http: httpx.AsyncClient) -> None:
    client = EvolutionClient(http, target.evolution_url, target.evolution_key, timeout=5)
    info = await client.info()
    assert re.fullmatch(r"\d+\.\d+\.\d+", info.version)
    assert info.whatsapp_web_version == "" or re.fullmatch(r"2\.\d+\.\d+", info.whatsapp_web_version)
    rows = await client.instances()
    assert rows, "a stack under contract test has at least one instance"
    assert {row.stored_status for row in rows} <= {"open", "connecting", "close"}
    for row in rows:
        assert await client.connection_state(row.name) in {"open", "connecting", "close", None}


async def test_evolution_auth_and_unknown_instance_envelopes(target: Target, http: httpx.AsyncClient) -> None:
    bad = EvolutionClient(http, target.evolution_url, "not-the-key", timeout=5)
    with pytest.raises(UpstreamAuthError) as denied:
        await bad.instances()
    assert denied.value.status == 401 and denied.value.message == "HTTP 401: Unauthorized"
    with pytest.raises(UpstreamHTTPError) as missing:
        await bad.connection_state("evo-watchdog-no-such-instance")
    assert missing.value.status == 404
    assert 'The "evo-watchdog-no-such-instance" instance does not exist' in missing.value.message


async def test_evolution_dify_bots_and_sessions_parse(target: Target, http: httpx.AsyncClient) -> None:
    client = EvolutionClient(http, target.evolution_url, target.evolution_key, timeout=5)
    for row in await client.instances():
        for bot in await client.chatbots.bots(DIFY, row.name):
            assert bot.bot_type in {"chatBot", "textGenerator", "agent", "workflow"}
            for session in await client.chatbots.sessions(DIFY, row.name, bot.id):
                assert session.status in {"opened", "paused", "closed"}


async def test_dify_liveness_info_and_auth(target: Target, http: httpx.AsyncClient) -> None:
    if not target.dify_url:
        pytest.fail("the contract target has no Dify URL")
    client = DifyClient(http, target.dify_url, target.dify_key, timeout=5)
    assert (await client.liveness()).detail.startswith("answers GET /v1/info")  # never GET /v1/
    info = await client.app_info()
    assert info["mode"] in {"chat", "agent-chat", "advanced-chat", "completion", "workflow"}
    assert await client.conversation_ids("evo-watchdog-contract-nobody") == set()
    refused = DifyClient(http, target.dify_url, "app-not-the-key", timeout=5)
    with pytest.raises(UpstreamAuthError) as denied:
        await refused.app_info()
    assert denied.value.message == "HTTP 401: Access token is invalid" and denied.value.code == "unauthorized"
    # Dify refusing a key is Dify answering: liveness holds without DIFY_HEALTH_URL, with any key or none.
    assert (await refused.liveness()).detail == "answers GET /v1/info (key refused: HTTP 401 unauthorized)"
    assert (await DifyClient(http, target.dify_url, "", timeout=5).liveness()).version == ""


async def test_dify_health_url(target: Target, http: httpx.AsyncClient) -> None:
    if not target.dify_health_url:
        pytest.fail("the contract target has no Dify health URL")
    client = DifyClient(http, target.dify_url, "", health_url=target.dify_health_url, timeout=5)
    live = await client.liveness()
    assert re.fullmatch(r"\d+\.\d+\.\d+", live.version) and live.detail == f"Dify {live.version}"
