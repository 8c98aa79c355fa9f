"""Every bot integration besides Dify (whose L1 is tests/integration/test_recovery.py): a stuck session is
found and repaired at L1 through its own changeStatus route, journaled with what it removed; healthy
sessions of every integration are left alone. The Evolution emulator calls the emulated backends as
Evolution 2.3.6's services do (watchdog/sim/bot_services.py and beside it)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from tests.integration.bot_stack import BACKEND_OF, BotStack, bot_stack
from tests.integration.test_recovery import AUTO, actions, daemon_for, until
from watchdog.integrations import INTEGRATIONS
from watchdog.metrics import Metrics

pytestmark = pytest.mark.integration
ANA = "5511987600001@s.whatsapp.net"
BIA = "5511987600002@s.whatsapp.net"
OTHERS = [i.name for i in INTEGRATIONS if i.name != "dify"]


async def replied(stack: BotStack, jid: str, count: int) -> None:
    await until(lambda: stack.replies[jid] >= count, timeout=15)


@pytest.mark.parametrize("name", OTHERS)
async def test_a_stuck_session_is_found_and_repaired_at_l1_through_its_integration(name: str) -> None:
    """Typebot forgets its sessions (continueChat 404 on every later message: upstream #1654, #2343); the
    others' backends hang. Either way the contact gets no answer until its session is deleted."""
    seen: set[tuple[str, str]] = set()
    with bot_stack() as stack:
        stack.add_bot(name)
        async with daemon_for(stack.settings(**AUTO)) as watchdog:

            def repaired() -> bool:
                seen.update((f.kind, str(f.evidence.get("integration"))) for f in watchdog.board.findings)
                return ("reset_session", "ok") in actions(watchdog)

            stack.inbound(BIA, "Oi")
            await replied(stack, BIA, 1)
            stack.inbound(ANA, "Oi")
            await replied(stack, ANA, 1)
            healthy = stack.session(BIA)
            if name == "typebot":
                stack.fault("forget_sessions", backend="typebot")
            else:
                stack.fault("hang", backend=BACKEND_OF.get(name, "webhook"))
            stack.inbound(ANA, "Alô?")
            await until(repaired, timeout=30)
            stack.clear_faults()
            await until(lambda: not watchdog.recovery.journal.open_incidents(), timeout=30)
            stack.inbound(ANA, "Voltou?")
            await replied(stack, ANA, 2)  # a fresh session answers
            detail = watchdog.recovery.journal.history()[0]["actions"][0]["detail"]
            done = actions(watchdog)
    assert {kind for kind, _ in done} == {"reset_session"}  # never a restart
    assert detail.startswith(f"removed 1 session of this contact: loja/{name} ")
    assert f"({name}/changeStatus delete clears every instance and bot integration)" in detail
    assert "5511" not in detail
    assert stack.session(BIA) is healthy and healthy.status == "opened"  # the healthy contact kept its own
    assert ("stalled_contact", name) in seen  # turnaround saw the contact wait, held by this integration
    if name == "typebot":  # awaitUser false before continueChat (typebot.service.ts:905-914): busy shows
        assert ("session_wedged", "typebot") in seen


async def test_healthy_sessions_of_every_integration_are_left_alone() -> None:
    """One keyword bot per integration and two contacts each, one answered once, one twice: no finding, no
    action, and the sessions gauge counts two opened sessions per integration. (The answered first turns
    of Flowise, EvolutionBot and EvoAI keep awaitUser false: not busy, watchdog/integrations.py.)"""
    once = {name: f"55119876{n:05d}@s.whatsapp.net" for n, name in enumerate(OTHERS)}
    twice = {name: f"55119877{n:05d}@s.whatsapp.net" for n, name in enumerate(OTHERS)}
    with bot_stack() as stack:
        for name in OTHERS:
            stack.add_bot(name, triggerType="keyword", triggerOperator="equals", triggerValue=name)
        registry = CollectorRegistry()
        async with daemon_for(stack.settings(**AUTO)) as watchdog:
            for name in OTHERS:
                stack.inbound(once[name], name)
                stack.inbound(twice[name], name)
                await replied(stack, once[name], 1)
                await replied(stack, twice[name], 1)
                stack.inbound(twice[name], "tudo bem?")
                await replied(stack, twice[name], 2)
            first_turns = {name: stack.session(jid).await_user for name, jid in once.items()}
            await asyncio.sleep(4)  # several probe cycles past the stall limit
            findings = [f.as_dict() for f in watchdog.board.findings]
            done = actions(watchdog)
            sessions = next(
                r for r in watchdog.board.results if r.probe == "sessions" and r.target == "evolution:loja"
            )
            Metrics(registry).observe_probes([sessions])
    assert findings == [] and done == []
    assert {name for name, waiting in first_turns.items() if not waiting} == {
        "flowise",
        "evolutionBot",
        "evoai",
    }
    held = [(s["integration"], s["status"]) for s in sessions.data["sessions"]]
    assert sorted(held) == sorted((name, "opened") for name in OTHERS for _ in range(2))
    assert {b["integration"] for b in sessions.data["bots"]} == set(OTHERS)
    for name in OTHERS:
        labels = {"instance": "loja", "integration": name, "status": "opened"}
        assert registry.get_sample_value("watchdog_sessions", labels) == 2
        assert registry.get_sample_value("watchdog_sessions", {**labels, "status": "paused"}) == 0
