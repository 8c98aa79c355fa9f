"""Reading the stack: unset bot options fall back to dify/fetchSettings; failed reads are recorded."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from watchdog.clients.dify import DifyClient
from watchdog.clients.evolution import EvolutionClient
from watchdog.doctor.checks import diagnose
from watchdog.doctor.fetch import take_snapshot
from watchdog.doctor.limits import not_checked
from watchdog.doctor.snapshot import KNOWN, UNKNOWN, UNVERIFIED

JIDS = ["5511900000001@s.whatsapp.net", "5511900000002@s.whatsapp.net", "5511900000003@s.whatsapp.net"]
CONV = {JIDS[0]: "11111111-1111-4111-8111-111111111111", JIDS[1]: "22222222-2222-4222-8222-222222222222"}


def evolution_routes(bot_key: str, settings_status: int = 200) -> dict[str, Any]:
    return {
        "/": {"version": "2.3.6", "whatsappWebVersion": "2.3000.5"},
        "/instance/fetchInstances": [{"name": "loja", "connectionStatus": "open"}],
        "/instance/connectionState/loja": {"instance": {"instanceName": "loja", "state": "connecting"}},
        "/dify/find/loja": [
            {
                "id": "b1",
                "enabled": True,
                "botType": "chatBot",
                "apiKey": bot_key,
                "expire": None,
                "keywordFinish": None,
                "stopBotFromMe": False,
            }
        ],
        "/dify/fetchSettings/loja": (
            settings_status,
            {"expire": 300, "keywordFinish": "bye", "stopBotFromMe": True},
        ),
        "/dify/fetchSessions/b1/loja": [
            {"id": "s1", "remoteJid": JIDS[0], "sessionId": CONV[JIDS[0]], "status": "opened"},
            {"id": "s2", "remoteJid": JIDS[1], "sessionId": CONV[JIDS[1]], "status": "opened"},
            {"id": "s3", "remoteJid": JIDS[2], "sessionId": JIDS[2], "status": "closed"},
        ],
        "/webhook/find/loja": None,
    }


def run(bot_key: str, *, settings_status: int = 200, dify_up: bool = True, root_hangs: bool = False) -> Any:
    routes = evolution_routes(bot_key, settings_status)

    def evolution(request: httpx.Request) -> httpx.Response:
        if root_hangs and request.url.path == "/":
            raise httpx.ReadTimeout("no answer", request=request)  # 2.3.1+ offline: sw.js fetch hangs
        if request.url.path not in routes:  # Express's answer to a route it lacks (another integration)
            message = [f"Cannot GET {request.url.path}"]
            return httpx.Response(
                404, json={"status": 404, "error": "Not Found", "response": {"message": message}}
            )
        body = routes[request.url.path]
        status, body = body if isinstance(body, tuple) else (200, body)
        if status != 200:
            return httpx.Response(
                status, json={"status": status, "error": "x", "response": {"message": "nope"}}
            )
        return httpx.Response(200, content=json.dumps(body).encode())

    def dify(request: httpx.Request) -> httpx.Response:
        if not dify_up:
            return httpx.Response(
                500, json={"code": "internal_server_error", "message": "boom", "status": 500}
            )
        user = request.url.params["user"]
        known = [{"id": CONV[user]}] if user == JIDS[0] else []  # JIDS[1]'s conversation is gone
        return httpx.Response(200, json={"data": known, "has_more": False, "limit": 100})

    async def go() -> Any:
        async with (
            httpx.AsyncClient(transport=httpx.MockTransport(evolution)) as evo_http,
            httpx.AsyncClient(transport=httpx.MockTransport(dify)) as dify_http,
        ):
            return await take_snapshot(
                EvolutionClient(evo_http, "http://evo", "k", timeout=1),
                DifyClient(dify_http, "http://dify/v1", "app-ours", timeout=1),
                dify_key="app-ours",
                contact_key=b"test-contact-key-0123",
            )

    return asyncio.run(go())


def test_unset_bot_options_fall_back_to_settings_and_conversations_are_verified() -> None:
    snap = run("app-ours")
    inst = snap.instances[0]
    bot = inst.bots[0]
    assert (bot.expire, bot.keyword_finish, bot.stop_bot_from_me, bot.key_held) == (300, "bye", False, True)
    assert inst.live_state == "connecting" and inst.stored_status == "open"
    assert [s.conversation for s in inst.sessions] == [KNOWN, UNKNOWN, "none"]
    assert inst.unread == () and inst.webhook is None
    assert snap.version == "2.3.6" and snap.whatsapp_web_version == "2.3000.5"


def test_another_apps_key_is_not_used_to_judge_conversations() -> None:
    inst = run("app-someone-else").instances[0]
    assert inst.bots[0].key_held is False
    assert [s.conversation for s in inst.sessions[:2]] == [UNVERIFIED, UNVERIFIED]


def test_failed_reads_are_recorded_not_raised() -> None:
    inst = run("app-ours", settings_status=500, dify_up=False).instances[0]
    assert inst.bots[0].expire is None  # no settings to fall back to
    assert any(u.startswith("Dify settings") for u in inst.unread)
    assert any(u.startswith("Dify conversations") for u in inst.unread)
    assert [s.conversation for s in inst.sessions[:2]] == [UNVERIFIED, UNVERIFIED]


def test_a_hanging_root_costs_only_the_version_checks() -> None:
    snap = run("app-ours", root_hangs=True)
    assert snap.unreachable is None and snap.version == ""
    assert [s.conversation for s in snap.instances[0].sessions] == [KNOWN, UNKNOWN, "none"]
    found = {(d.finding.kind, d.finding.target) for d in diagnose(snap)}
    assert ("stale_conversation", "evolution:loja") in found
    assert not [target for _, target in found if target == "evolution"]  # the stack is not at fault
    assert any(note.startswith("version checks: none, GET / did not answer (") for note in not_checked(snap))
