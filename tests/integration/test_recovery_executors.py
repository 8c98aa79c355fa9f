"""EvolutionExecutor against a scripted Evolution on loopback, for the upstream behaviours the emulator
may not show: the restart race, the HTTP 200 error body, and `changeStatus delete` clearing the
contact's sessions on every instance (Evolution 2.3.6 sources cited in watchdog/recovery/)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watchdog.clients.evolution import EvolutionClient
from watchdog.clock import SystemClock
from watchdog.recovery.executors import EvolutionExecutor
from watchdog.serving import ThreadedServer

pytestmark = pytest.mark.integration
ANA = "5511987600001@s.whatsapp.net"
BRUNO = "5511987600002@s.whatsapp.net"


@dataclass
class Scripted:
    """States after a restart call as (seconds since the call, state) steps; sessions as upstream rows."""

    after_restart: list[tuple[float, str]] = field(default_factory=lambda: [(0.0, "open")])
    restart_body: dict[str, Any] = field(default_factory=lambda: {"instance": {"state": "open"}})
    restarted_at: float | None = None
    before_restart: str = "connecting"
    flicker: bool = False
    refusals: int = 0  # the first restart calls refused while the state flickers (a retrying instance)
    calls: int = 0
    reads: list[str] = field(default_factory=list)
    bots: dict[str, list[str]] = field(default_factory=dict)  # instance -> Dify bot ids
    sessions: list[dict[str, Any]] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)  # instances whose dify/find answers 500

    def state(self) -> str:
        if self.restarted_at is None:
            if self.flicker:  # a retrying instance as 2.3.6 shows it: close and connecting in turn
                return ("close", "connecting")[len(self.reads) % 2]
            return self.before_restart
        since = time.monotonic() - self.restarted_at
        return [state for at, state in self.after_restart if at <= since][-1]

    def app(self) -> Starlette:
        async def restart(request: Request) -> Response:
            self.calls += 1
            if self.calls <= self.refusals:
                return JSONResponse({"error": True, "message": "[object Object]"})
            if self.restart_body.get("error") is not True:  # a refused restart changes nothing
                self.restarted_at = time.monotonic()
            return JSONResponse(self.restart_body)

        async def connection_state(request: Request) -> Response:
            self.reads.append(self.state())
            return JSONResponse(
                {"instance": {"instanceName": request.path_params["i"], "state": self.reads[-1]}}
            )

        async def find(request: Request) -> Response:
            if request.path_params["i"] in self.broken:
                return JSONResponse({"status": 500, "response": {"message": "boom"}}, 500)
            bots = self.bots.get(request.path_params["i"], [])
            return JSONResponse([{"id": b, "enabled": True, "botType": "chatBot"} for b in bots])

        async def fetch_sessions(request: Request) -> Response:
            bot, instance = request.path_params["bot"], request.path_params["i"]
            return JSONResponse([s for s in self.sessions if s["botId"] == bot and s["instance"] == instance])

        async def change_status(request: Request) -> Response:
            body = await request.json()
            # base-chatbot.controller.ts changeStatus: deleteMany({remoteJid, botId: {not: null}})
            self.sessions = [s for s in self.sessions if s["remoteJid"] != body["remoteJid"]]
            return JSONResponse({"bot": {"remoteJid": body["remoteJid"], "status": body["status"]}}, 201)

        async def send_text(request: Request) -> Response:
            self.sent.append(request.path_params["i"])
            return JSONResponse({}, 201)

        return Starlette(
            routes=[
                Route("/instance/restart/{i}", restart, methods=["POST"]),
                Route("/instance/connectionState/{i}", connection_state),
                Route("/dify/find/{i}", find),
                Route("/dify/fetchSessions/{bot}/{i}", fetch_sessions),
                Route("/dify/changeStatus/{i}", change_status, methods=["POST"]),
                Route("/message/sendText/{i}", send_text, methods=["POST"]),
            ]
        )


def session(row: str, instance: str, bot: str, jid: str, status: str = "opened") -> dict[str, Any]:
    return {
        "id": row,
        "remoteJid": jid,
        "sessionId": jid,
        "status": status,
        "botId": bot,
        "instance": instance,
    }


@pytest.fixture
def scripted() -> Iterator[tuple[Scripted, str]]:
    script = Scripted()
    with ThreadedServer(script.app()) as server:
        yield script, server.url


async def executor_for(url: str, http: httpx.AsyncClient, *, open_deadline: float = 3.0) -> EvolutionExecutor:
    client = EvolutionClient(http, url, "key", timeout=2.0)
    return EvolutionExecutor(
        client, SystemClock(), open_deadline=open_deadline, fallback_message="", request_timeout=2.0
    )


async def test_open_read_right_after_the_restart_is_not_proof(scripted: tuple[Scripted, str]) -> None:
    """Still `open` for a moment (the old socket), then `connecting` for good: a failed restart, although
    the answer and the first reads say open."""
    script, url = scripted
    script.after_restart = [(0.0, "open"), (0.4, "connecting")]
    async with httpx.AsyncClient() as http:
        outcome = await (await executor_for(url, http, open_deadline=2.0)).restart_instance("loja")
    assert script.reads[0] == "open" and "connecting" in script.reads
    assert outcome.result == "failed" and outcome.detail == "still connecting 2s after the restart"


async def test_open_after_a_non_open_state_proves_the_restart(scripted: tuple[Scripted, str]) -> None:
    script, url = scripted
    script.after_restart = [(0.0, "open"), (0.3, "connecting"), (0.8, "open")]
    async with httpx.AsyncClient() as http:
        outcome = await (await executor_for(url, http)).restart_instance("loja")
    assert (outcome.result, outcome.detail) == (
        "ok",
        "restarted; connection state went connecting, then open",
    )
    assert script.reads[0] == "open"  # the stale read came first and was not taken as proof


async def test_open_throughout_is_accepted_only_after_the_settle_delay(
    scripted: tuple[Scripted, str],
) -> None:
    """A reconnect quicker than the poll shows no non-open state: `open` counts once the stale state
    must be gone (2 s after the call)."""
    script, url = scripted
    async with httpx.AsyncClient() as http:
        outcome = await (await executor_for(url, http, open_deadline=10.0)).restart_instance("loja")
    assert outcome.result == "ok" and outcome.detail.startswith("restarted; connection state open 2.")
    assert len(script.reads) > 2 and set(script.reads) == {"open"}


async def test_http_200_error_body_is_a_failure(scripted: tuple[Scripted, str]) -> None:
    script, url = scripted
    script.restart_body = {"error": True, "message": "[object Object]"}  # 2.3.6 on a closed instance
    script.before_restart = "close"
    async with httpx.AsyncClient() as http:
        outcome = await (await executor_for(url, http)).restart_instance("loja")
    assert outcome.result == "failed" and outcome.detail.startswith(
        "restart refused: HTTP 200 with an error body"
    )
    assert "close or not loaded" in outcome.detail
    # refused, and the state never reads connecting (not retrying, no flicker): not asked again
    assert script.calls == 1 and set(script.reads) == {"close"} and len(script.reads) == 8


async def test_a_refusal_while_the_instance_retries_is_the_state_flicker_and_is_asked_again(
    scripted: tuple[Scripted, str],
) -> None:
    """2.3.6 refuses a restart while a retrying instance reads `close` between two tries."""
    script, url = scripted
    script.refusals = 2
    script.flicker = True  # the first read after each refusal says close, the next connecting
    script.after_restart = [(0.0, "connecting"), (0.3, "open")]
    async with httpx.AsyncClient() as http:
        outcome = await (await executor_for(url, http, open_deadline=10.0)).restart_instance("loja")
    assert outcome.result == "ok" and script.calls == 3, outcome.detail
    assert script.reads[:4] == ["close", "connecting", "close", "connecting"]


async def test_session_reset_names_what_it_removed_on_every_watched_instance(
    scripted: tuple[Scripted, str],
) -> None:
    script, url = scripted
    script.bots = {"loja": ["b-loja"], "outra": ["b-outra"], "vazia": []}
    script.sessions = [
        session("s1", "loja", "b-loja", ANA),
        session("s2", "outra", "b-outra", ANA, "paused"),
        session("s3", "loja", "b-loja", BRUNO),
    ]
    async with httpx.AsyncClient() as http:
        executor = await executor_for(url, http)
        outcome = await executor.reset_session(
            "loja", ANA, instances={"loja", "outra", "vazia"}, send_fallback=True
        )
    assert outcome.result == "ok"
    assert outcome.detail == (
        "removed 2 sessions of this contact: loja/dify opened, outra/dify paused "
        "(changeStatus delete clears every instance and bot integration)"
    )
    assert [s["id"] for s in script.sessions] == ["s3"]  # the other contact kept its session
    assert "5511" not in outcome.detail and script.sent == []  # no fallback message configured


async def test_session_reset_deletes_nothing_it_could_not_read_first(scripted: tuple[Scripted, str]) -> None:
    script, url = scripted
    script.bots = {"loja": ["b-loja"], "outra": ["b-outra"]}
    script.sessions = [session("s1", "loja", "b-loja", ANA), session("s2", "outra", "b-outra", ANA)]
    async with httpx.AsyncClient() as http:
        executor = await executor_for(url, http)
        script.broken = {"loja"}
        refused = await executor.reset_session("loja", ANA, instances={"outra"}, send_fallback=False)
        kept = [s["id"] for s in script.sessions]
        script.broken = {"outra"}  # another instance unreadable: deleted, and the result says so
        done = await executor.reset_session("loja", ANA, instances={"outra"}, send_fallback=False)
    assert refused.result == "failed" and refused.detail.startswith("nothing deleted: loja's sessions")
    assert kept == ["s1", "s2"]
    assert done.result == "ok" and done.detail.startswith(
        "removed 1 session of this contact: loja/dify opened; not read: outra (HTTP 500"
    )
    assert script.sessions == []
