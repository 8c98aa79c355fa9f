"""`doctor` over every bot integration: bots, settings and stuck sessions read per integration, each stuck
session's safe fix going through its own integration's changeStatus (against the emulator and its
emulated backends; the real Evolution's side is tests/contract/test_integrations_contract.py)."""

from __future__ import annotations

import asyncio
import io
import json
import time
from functools import partial
from typing import Any

import pytest

from tests.integration.bot_stack import BotStack, bot_stack
from tests.integration.stack import wait_until
from watchdog.doctor.command import run_doctor
from watchdog.integrations import INTEGRATIONS

pytestmark = pytest.mark.integration
OTHERS = [i.name for i in INTEGRATIONS if i.name != "dify"]
PAUSED, CLOSED, BUSY, FINE = (f"55119880{n:05d}@s.whatsapp.net" for n in range(4))


def answered(stack: BotStack, jid: str) -> bool:
    return stack.replies[jid] >= 1


def doctor(stack: BotStack, *, fix: bool = False) -> tuple[int, Any]:
    out, err = io.StringIO(), io.StringIO()
    settings = stack.settings(WATCHDOG_STALL_SECONDS="1")
    code = asyncio.run(
        run_doctor(settings, as_json=True, fix=fix, yes=True, stdin=io.StringIO(), stdout=out, stderr=err)
    )
    return code, json.loads(out.getvalue())


def test_doctor_reports_every_integrations_stuck_sessions_and_fixes_each_through_its_route() -> None:
    with bot_stack() as stack:
        for name in OTHERS:
            stack.add_bot(name, triggerType="keyword", triggerOperator="equals", triggerValue=name)
        for jid, name in ((PAUSED, "typebot"), (CLOSED, "evoai"), (FINE, "openai")):
            stack.inbound(jid, name)
            wait_until(partial(answered, stack, jid), what=f"{name} answering")
        stack.api("POST", "/typebot/changeStatus/loja", remoteJid=PAUSED, status="paused")
        stack.session(CLOSED).status = "closed"  # the finish keyword with keepOpen, or closed by hand
        stack.fault("hang", backend="webhook")
        stack.inbound(BUSY, "n8n")  # n8n's first turn never ends: opened, awaitUser false
        wait_until(lambda: stack.session(BUSY) is not None, what="the n8n session")
        time.sleep(1.2)  # past WATCHDOG_STALL_SECONDS
        code, report = doctor(stack)
        stack.clear_faults()
        fixed_code, fixed = doctor(stack, fix=True)
        left = {jid: stack.session(jid) for jid in (PAUSED, CLOSED, BUSY, FINE)}
    found = {(f["kind"], f["evidence"].get("integration")): f for f in report["findings"]}
    assert code == 3 and set(found) == {
        ("session_paused", "typebot"),
        ("session_closed", "evoai"),
        ("session_wedged", "n8n"),
    }
    for (_, name), finding in found.items():
        assert f"POST /{name}/changeStatus/loja status delete" in finding["fix"]
        assert finding["safe_fix"] == "delete_session"
    assert "the n8n bot has been on one turn" in found[("session_wedged", "n8n")]["summary"]
    on = report["integrations"]["loja"]["on"]
    assert set(OTHERS) <= set(on) and report["integrations"]["loja"]["off"] == []
    assert on["typebot"]["sessions"] == {"paused": 1} and on["openai"]["sessions"] == {"opened": 1}
    assert on["openai"]["settings"]["expire"] == 300  # OpenAI's own defaults (openai.controller.ts:176-188)
    assert fixed_code == 0 and fixed["findings"] == []
    assert [(f["action"], f["ok"]) for f in fixed["fixes"]] == [("delete_session", True)] * 3
    assert left[PAUSED] is None and left[CLOSED] is None and left[BUSY] is None
    assert left[FINE] is not None  # the healthy contact's session was not touched


def test_an_integration_disabled_on_evolution_is_off_not_unreadable() -> None:
    with bot_stack() as stack:
        stack.add_bot("typebot")
        stack.evolution.disabled_integrations.update({"n8n", "evoai"})
        code, report = doctor(stack)
    assert code == 0, report["findings"]
    assert report["integrations"]["loja"]["off"] == ["n8n", "evoai"]
    assert any("off on this Evolution" in note and "evoai, n8n" in note for note in report["not_checked"])
