"""What the customers' side sees: every webhook Evolution posts, recorded, then passed on to the watchdog
(when a trial has one). A trial points the emulator's webhooks here, so replies are timed the same way
for the watchdog's side and for the baseline's, which has no watchdog to ask."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Collection
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watchdog.serving import bind, make_server


@dataclass(frozen=True)
class Heard:
    at: float  # monotonic
    event: str
    instance: str
    jid: str
    from_me: bool


class WebhookEar:
    """An in-loop HTTP server (run it with `async with`); `forward` is where webhooks go next."""

    def __init__(self) -> None:
        self.heard: list[Heard] = []
        self.forward = ""
        self._sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/webhook/evolution"
        app = Starlette(routes=[Route("/webhook/evolution", self._hear, methods=["POST"])])
        self._server = make_server(app, handle_signals=False, graceful_seconds=0, log_level="critical")
        self._http = httpx.AsyncClient(timeout=10, trust_env=False)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> WebhookEar:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        await asyncio.sleep(0)  # the socket is bound and listening already: requests queue until it serves
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        await self._http.aclose()
        self._sock.close()

    async def _hear(self, request: Request) -> Response:
        body = await request.body()
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            payload = await request.json()
            key = (payload.get("data") or {}).get("key") or {}
            self.heard.append(
                Heard(
                    time.monotonic(),
                    str(payload.get("event", "")),
                    str(payload.get("instance", "")),
                    str(key.get("remoteJid", "")),
                    bool(key.get("fromMe")),
                )
            )
        if not self.forward:
            return JSONResponse({"heard": True})
        try:
            passed = await self._http.post(
                self.forward, content=body, headers={"content-type": "application/json"}
            )
        except httpx.HTTPError:
            return JSONResponse({"forwarded": False}, status_code=502)
        return Response(passed.content, status_code=passed.status_code, media_type="application/json")

    def answered_again(
        self, since: float, stall: float, until: float, *, not_customers: Collection[str] = ()
    ) -> float | str:
        """Seconds from `since` until the last customer who waited longer than `stall` for a reply got
        one; "not cut off" when nobody waited that long, "not by the end" when someone still waits.
        `not_customers`: instances and numbers whose traffic is not customers' (a heartbeat's prober)."""
        waiting: dict[tuple[str, str], float] = {}
        recovered = None
        for heard in self.heard:
            if heard.instance in not_customers or heard.jid.partition("@")[0] in not_customers:
                continue
            who = (heard.instance, heard.jid)
            if heard.event == "messages.upsert" and not heard.from_me and heard.at >= since:
                waiting.setdefault(who, heard.at)
            elif heard.event == "send.message" and who in waiting and heard.at - waiting.pop(who) > stall:
                recovered = heard.at - since
        if any(until - started > stall for started in waiting.values()):
            return "not by the end"
        return "not cut off" if recovered is None else recovered
