"""Every bot integration's routes (watchdog/integrations.py), the same assertions on the emulator and on the
real Evolution API 2.3.6: bot creation, `find`, `fetchSettings` before and after a bot, `fetchSessions` of a
fresh bot, `changeStatus` closed and delete, and the "All" trigger refusal that names the integration.
What needs WhatsApp (sessions being made, their `type`) is emulator-only: tests/integration/
test_integrations_l1.py. The real server runs with every integration enabled (scripts/upstreams/evolution.py).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.contract.conftest import EvolutionTarget
from watchdog.config import Settings
from watchdog.doctor.command import run_doctor
from watchdog.integrations import INTEGRATIONS, Integration

pytestmark = pytest.mark.integration

JID = "5511987600001@s.whatsapp.net"
# `fetchSettings` with no settings row (base-chatbot.controller.ts:399-413), for every integration.
DEFAULTS = {
    "expire": 300,
    "keywordFinish": "bye",
    "delayMessage": 1000,
    "unknownMessage": "Sorry, I dont understand",
    "listeningFromMe": True,
    "stopBotFromMe": True,
    "keepOpen": False,
    "debounceTime": 1,
    "ignoreJids": [],
    "splitMessages": False,
    "timePerChar": 0,
    "fallbackId": "",
    "fallback": None,
}
# OpenAI refuses a second chatCompletion bot with the same model and maxTokens on one instance
# (openai.controller.ts:145-165), so every body in this run draws its own maxTokens.
_MAX_TOKENS = itertools.count(100)


def _instance(target: EvolutionTarget) -> str:
    created: Any = target.create_instance()
    return str(created["instance"]["instanceName"])


def _body(target: EvolutionTarget, integ: Integration, instance: str) -> dict[str, Any]:
    """A valid create body: the required columns, a backend of its own (duplicates are refused)."""
    unique = uuid.uuid4().hex[:8]
    body: dict[str, Any] = {"enabled": True, "triggerType": "all"}
    if integ.name == "dify":
        body.update(botType="chatBot", apiUrl="http://127.0.0.1:9/v1", apiKey=f"app-{unique}")
    elif integ.name == "typebot":
        body.update(url="http://127.0.0.1:9", typebot=f"tb-{unique}")
    elif integ.name == "openai":
        creds = target.api(
            "POST", f"/openai/creds/{instance}", json={"name": unique, "apiKey": f"sk-{unique}"}
        )
        assert creds.status_code == 201, creds.text
        body.update(
            openaiCredsId=creds.json()["id"],
            botType="chatCompletion",
            model="gpt-4o",
            maxTokens=next(_MAX_TOKENS),
        )
    elif integ.name == "n8n":
        body.update(webhookUrl=f"http://127.0.0.1:9/webhook/{unique}")
    elif integ.name == "evoai":
        body.update(agentUrl=f"http://127.0.0.1:9/{unique}", apiKey=unique)
    else:
        body.update(apiUrl=f"http://127.0.0.1:9/{unique}", apiKey=unique)
    return body


@pytest.mark.parametrize("integ", INTEGRATIONS, ids=[i.name for i in INTEGRATIONS])
def test_create_find_settings_and_sessions(evolution_target: EvolutionTarget, integ: Integration) -> None:
    name = _instance(evolution_target)
    before = evolution_target.api("GET", integ.settings_path(name))
    created = evolution_target.api("POST", integ.create_path(name), json=_body(evolution_target, integ, name))
    found = evolution_target.api("GET", integ.find_path(name))
    after = evolution_target.api("GET", integ.settings_path(name)).json()
    assert (before.status_code, before.json()) == (200, DEFAULTS)
    assert created.status_code == 201, created.text
    bot = created.json()
    assert (bot["enabled"], bot["triggerType"], bot["instanceId"]) == (True, "all", after["instanceId"])
    assert set(integ.bot_columns) <= set(bot)  # the integration's own columns, as find answers them
    assert found.status_code == 200 and [b["id"] for b in found.json()] == [bot["id"]]
    assert set(integ.backend) <= set(found.json()[0])
    assert {"id", "expire", "keepOpen", "stopBotFromMe", integ.settings_fallback, "fallbackId"} <= set(after)
    assert (
        after["fallbackId"] is None and after[integ.settings_fallback] is None and after["fallback"] is None
    )
    sessions = evolution_target.api("GET", integ.sessions_path(bot["id"], name))
    assert (sessions.status_code, sessions.json()) == (200, [])


@pytest.mark.parametrize("integ", INTEGRATIONS, ids=[i.name for i in INTEGRATIONS])
def test_change_status_shapes_and_the_all_trigger_refusal(
    evolution_target: EvolutionTarget, integ: Integration
) -> None:
    name = _instance(evolution_target)
    first = evolution_target.api("POST", integ.create_path(name), json=_body(evolution_target, integ, name))
    second = evolution_target.api("POST", integ.create_path(name), json=_body(evolution_target, integ, name))
    path = integ.change_status_path(name)
    closed = evolution_target.api("POST", path, json={"remoteJid": JID, "status": "closed"})
    deleted = evolution_target.api("POST", path, json={"remoteJid": JID, "status": integ.unwedge_status})
    wrong = evolution_target.api("POST", path, json={"remoteJid": JID, "status": "gone"})
    assert first.status_code == 201, first.text
    assert second.status_code == 500
    refusal = f'You already have a {integ.label} with an "All" trigger, you cannot have more bots while it is active'  # noqa: E501
    assert second.json()["response"]["message"] == refusal
    assert closed.status_code == 200
    assert closed.json() == {"bot": {"instanceName": name, "bot": {"remoteJid": JID, "status": "closed"}}}
    assert (deleted.status_code, deleted.json()) == (200, {"bot": {"remoteJid": JID, "status": "delete"}})
    assert wrong.status_code == 400


def test_doctor_reads_one_bot_of_every_integration(evolution_target: EvolutionTarget, tmp_path: Path) -> None:
    """Issue 18 acceptance: doctor on Evolution 2.3.6 with a bot of each integration reads them all."""
    name = _instance(evolution_target)
    for integ in INTEGRATIONS:
        created = evolution_target.api(
            "POST", integ.create_path(name), json=_body(evolution_target, integ, name)
        )
        assert created.status_code == 201, created.text
    env = {
        "EVOLUTION_URL": evolution_target.url,
        "EVOLUTION_API_KEY": evolution_target.api_key,
        "EVOLUTION_INSTANCES": name,
        "WATCHDOG_STATE_PATH": str(tmp_path / "journal.db"),
    }
    out, err = io.StringIO(), io.StringIO()
    settings = Settings.from_env(env)
    run = run_doctor(
        settings, as_json=True, fix=False, yes=False, stdin=io.StringIO(), stdout=out, stderr=err
    )
    code = asyncio.run(run)
    report = json.loads(out.getvalue())
    seen = report["integrations"][name]
    assert report["exit_code"] == code and err.getvalue() == ""
    assert seen["off"] == [] and set(seen["on"]) == {i.name for i in INTEGRATIONS}
    assert all(len(seen["on"][i.name]["bots"]) == 1 and seen["on"][i.name]["settings"] for i in INTEGRATIONS)
    assert [f for f in report["findings"] if f["kind"] == "unreadable"] == []
    assert sum(len(i["bots"]) for i in report["instances"]) == len(INTEGRATIONS)
