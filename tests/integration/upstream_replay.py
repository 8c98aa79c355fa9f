"""Loopback servers answering byte for byte as the real Dify 1.12.1 and Evolution API 2.3.6 were observed
to (shared/upstream/README.md, "Observed"), for the shapes the probes must read right.

Not an emulator: no state beyond what a test asks for, and every answer below was seen on the real thing
(spaced JSON error bodies, compact SSE payloads, `event: ping` with no data, werkzeug's 404 page).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from watchdog.sim.dify_wire import WERKZEUG_404

# werkzeug's redirect page: Dify's answer to `GET /v1` (308 to `/v1/`).
WERKZEUG_308 = (
    "<!doctype html>\n"
    "<html lang=en>\n"
    "<title>Redirecting...</title>\n"
    "<h1>Redirecting...</h1>\n"
    '<p>You should be redirected automatically to the target URL: <a href="{url}">{url}</a>. If not, '
    "click the link.\n"
)
# Not observed here: Dify's web front end (a separate service) answers its pages with 200 and HTML.
WEB_UI_PATH = "/apps"
WEB_UI_PAGE = (
    "<!DOCTYPE html><html><head><title>Dify</title><script>self.__next_f=[]</script></head>"
    "<body></body></html>"
)
ROUTE_HINT = (
    " You have requested this URI [/v1/chat-messages] but did you mean"
    " /v1/chat-messages/<string:task_id>/stop or /v1/chat-messages ?"
)
RUN_FAILED = "Run failed: Reached maximum retries (0) for URL http://127.0.0.1:18083/canary"

ECHO_KEY = "app-echo"  # advanced-chat app answering `echo: <query>`
FAIL_KEY = "app-midstream-fail"  # streams a first answer, then its HTTP node fails
STRICT_KEY = "app-strict"  # its form also requires `customer_id`, which Evolution never sends
COMPLETION_KEY = "app-completion"  # a completion app: not for /chat-messages
PINGS_KEY = "app-pings-only"  # a run that never produces an event; only pings flow
KEYS = {ECHO_KEY, FAIL_KEY, STRICT_KEY, COMPLETION_KEY, PINGS_KEY}
EVOLUTION_INPUTS = ("remoteJid", "pushName", "instanceName", "serverUrl", "apiKey")


def spaced(status: int, body: dict[str, Any]) -> Response:
    """Dify's error bodies: JSON with `, ` and `: ` separators, then a newline (flask's json output)."""
    return Response(json.dumps(body) + "\n", status_code=status, media_type="application/json")


def werkzeug_404() -> Response:
    return Response(WERKZEUG_404, status_code=404, media_type="text/html; charset=utf-8")


@dataclass
class DifyReplay:
    ping_seconds: float = 10.0  # Dify pings every 10 s of elapsed time
    paths: list[str] = field(default_factory=list)
    chats: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def app(self) -> ASGIApp:
        async def health(request: Request) -> Response:
            body = b'{"pid": 21310, "status": "ok", "version": "1.12.1"}\n'
            return Response(body, media_type="application/json")

        async def info(request: Request) -> Response:
            refused = self._refused(request)
            if refused is not None:
                return refused
            mode = "completion" if _key(request) == COMPLETION_KEY else "advanced-chat"
            body = {"name": "echo-chat", "description": "", "tags": [], "mode": mode, "author_name": "evo"}
            return spaced(200, body)

        async def chat(request: Request) -> Response:
            refused = self._refused(request)
            if refused is not None:
                return refused
            body = json.loads(await request.body())
            self.chats.append(body)
            key = _key(request)
            if body.get("conversation_id"):
                message = "Conversation Not Exists." + ROUTE_HINT
                return spaced(404, {"code": "not_found", "message": message, "status": 404})
            if key == COMPLETION_KEY:
                message = "Please check if your app mode matches the right API route."
                return spaced(400, {"code": "not_chat_app", "message": message, "status": 400})
            required = EVOLUTION_INPUTS + (("customer_id",) if key == STRICT_KEY else ())
            for name in required:
                if name not in body.get("inputs", {}):
                    message = f"{name} is required in input form"
                    return spaced(400, {"code": "invalid_param", "message": message, "status": 400})
            return StreamingResponse(self._stream(key, str(body["query"])), media_type="text/event-stream")

        async def delete(request: Request) -> Response:
            self.deleted.append(request.path_params["cid"])
            return Response(status_code=204)

        async def anything(request: Request) -> Response:
            return werkzeug_404()

        async def v1_without_slash(request: Request) -> Response:
            url = f"{request.base_url}v1/"
            page = WERKZEUG_308.format(url=url)
            return Response(page, 308, headers={"Location": url}, media_type="text/html; charset=utf-8")

        async def web_ui(request: Request) -> Response:
            return Response(WEB_UI_PAGE, media_type="text/html; charset=utf-8")

        app = Starlette(
            routes=[
                Route("/v1", v1_without_slash, methods=["GET"]),
                Route(WEB_UI_PATH, web_ui, methods=["GET"]),
                Route("/health", health),
                Route("/v1/info", info),
                Route("/v1/chat-messages", chat, methods=["POST"]),
                Route("/v1/conversations/{cid}", delete, methods=["DELETE"]),
                Route("/{path:path}", anything, methods=["GET", "POST", "DELETE"]),
            ]
        )

        async def recording(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                self.paths.append(f"{scope['method']} {scope['path']}")
            await app(scope, receive, send)

        return recording

    def _refused(self, request: Request) -> Response | None:
        header = request.headers.get("authorization")
        if header is None or " " not in header:
            message = "Authorization header must be provided and start with 'Bearer'"
            return spaced(401, {"code": "unauthorized", "message": message, "status": 401})
        if _key(request) not in KEYS:
            return spaced(401, {"code": "unauthorized", "message": "Access token is invalid", "status": 401})
        return None

    async def _stream(self, key: str, query: str) -> AsyncIterator[str]:
        ids = {"conversation_id": "7c3b3a4e-0f6e-4b0e-9a53-1f7d2b8e9c10", "message_id": "m-1"}

        def data(event: str, **fields: Any) -> str:  # compact JSON, no `event:` line
            return "data: " + json.dumps({"event": event, **ids, **fields}, separators=(",", ":")) + "\n\n"

        if key == PINGS_KEY:
            while True:
                await asyncio.sleep(self.ping_seconds)
                yield "event: ping\n\n"
        yield data("workflow_started", workflow_run_id="w-1", data={"id": "w-1"})
        yield "event: ping\n\n"
        yield data("message", answer="echo: ")
        if key == FAIL_KEY:
            yield data("node_finished", data={"status": "failed", "error": RUN_FAILED})
            yield data("workflow_finished", data={"status": "failed", "error": RUN_FAILED})
            error = {"event": "error", **ids, "code": "invalid_param", "status": 400, "message": RUN_FAILED}
            yield "data: " + json.dumps(error, separators=(",", ":")) + "\n\n"  # no task_id, no message_end
            return
        yield data("message", answer=query)
        yield data("workflow_finished", data={"status": "succeeded"})
        yield data("message_end", metadata={"usage": {"total_tokens": 0}})


def _key(request: Request) -> str:
    return request.headers.get("authorization", "").partition(" ")[2]


@dataclass
class EvolutionReplay:
    """`GET /` as since 2.3.1: it waits on web.whatsapp.com (here: `root_delay`) before answering."""

    api_key: str = "evo-key"
    root_delay: float = 0.0

    def app(self) -> Starlette:
        async def root(request: Request) -> Response:
            await asyncio.sleep(self.root_delay)
            body = {
                "status": 200,
                "message": "Welcome to the Evolution API, it is working!",
                "version": "2.3.6",
                "clientName": "evolution",
                "manager": f"{request.base_url}manager",
                "documentation": "https://doc.evolution-api.com",
                "whatsappWebVersion": "2.3000.1023204200",
            }
            return Response(json.dumps(body), media_type="application/json")

        async def fetch_instances(request: Request) -> Response:
            if request.headers.get("apikey") != self.api_key:
                body = {"status": 401, "error": "Unauthorized", "response": {"message": "Unauthorized"}}
                return Response(json.dumps(body), status_code=401, media_type="application/json")
            rows = [{"name": "loja", "connectionStatus": "close", "integration": "WHATSAPP-BAILEYS"}]
            return Response(json.dumps(rows), media_type="application/json")

        async def anything(request: Request) -> Response:  # Express's 404, with or without a key
            message = f"Cannot {request.method} {request.url.path}"
            body = {"status": 404, "error": "Not Found", "response": {"message": [message]}}
            return Response(json.dumps(body, separators=(",", ":")), 404, media_type="application/json")

        return Starlette(
            routes=[
                Route("/", root),
                Route("/instance/fetchInstances", fetch_instances),
                Route("/{path:path}", anything),
            ]
        )
