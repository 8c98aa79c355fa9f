"""Bot backends for the Evolution emulator's other integrations, on one loopback server:

* Typebot-like: `POST /api/v1/typebots/{typebot}/startChat` and `/api/v1/sessions/{id}/continueChat`, in
  the shapes Evolution 2.3.6 reads (typebot.service.ts: `sessionId`, `messages[].content.richText`, `input`).
  Sessions expire after `session_ttl` seconds idle (0: never) and can be lost (`forget_sessions`): then
  continueChat answers 404. The 404 body is a guess at Typebot's; Evolution only sees the status.
* OpenAI-compatible: `POST /v1/chat/completions` (point Evolution's OPENAI_BASE_URL at `.../v1`).
* Webhook bots, n8n/Flowise style: `POST /webhook/{n8n|flowise|evolutionBot|evoai}/{name}`, each answering
  in the field its Evolution service reads (output, text, message, a JSON-RPC result). They remember a
  turn count per session id; `forget_sessions` resets that memory (the bot starts over, no error).
Faults (`/_sim/faults`, param `backend`: typebot, openai, webhook or empty for all): hang, error_500,
forget_sessions (an event: applied once when set), slow. Replies echo the message, so tests can tell turns.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watchdog.sim.faults import FaultSet, FaultType, fault_routes

BACKEND_FAULTS = [
    FaultType(
        "hang", "requests never answer (backend: typebot, openai, webhook; empty: all)", {"backend": ""}
    ),
    FaultType("error_500", "answers HTTP 500", {"backend": ""}),
    FaultType(
        "forget_sessions",
        "the sessions it knows are lost, once (Typebot: continueChat 404; webhook bots start over)",
        {"backend": ""},
    ),
    FaultType("slow", "answers late", {"seconds": 2.0, "backend": ""}),
]
WEBHOOK_KINDS = ("n8n", "flowise", "evolutionBot", "evoai")


class BackendSim:
    def __init__(self, *, session_ttl: float = 0.0) -> None:
        self.faults = FaultSet(BACKEND_FAULTS)
        self.session_ttl = session_ttl
        self.typebot_sessions: dict[str, float] = {}  # Typebot session id -> last used (time.time)
        self.memory: Counter[str] = Counter()  # webhook bots: turns seen per session id
        self.calls: Counter[str] = Counter()  # backend -> requests

    def apply_fault(self, name: str) -> None:
        """`forget_sessions` is an event: the sessions go now, and the fault is done."""
        if name != "forget_sessions":
            return
        backend = str((self.faults.get(name) or {}).get("backend") or "")
        self.faults.clear(name)
        if backend in ("", "typebot"):
            self.typebot_sessions.clear()
        if backend in ("", "webhook"):
            self.memory.clear()

    async def before(self, backend: str) -> Response | None:
        """Faults that act before any work; a response to answer instead, or None."""
        self.calls[backend] += 1
        hang = self.faults.get("hang")
        if hang is not None and hang["backend"] in ("", backend):
            await self.faults.hold_while("hang")
            return JSONResponse({"message": "the backend restarted while this request hung"}, status_code=502)
        slow = self.faults.get("slow")
        if slow is not None and slow["backend"] in ("", backend):
            await asyncio.sleep(float(slow["seconds"]))
        failing = self.faults.get("error_500")
        if failing is not None and failing["backend"] in ("", backend):
            body = (
                {
                    "error": {
                        "message": "The server had an error while processing your request.",
                        "type": "server_error",
                    }
                }
                if backend == "openai"
                else {"message": "Internal error"}
            )
            return JSONResponse(body, status_code=500)
        return None

    def typebot_session(self, session_id: str) -> bool:
        """Known and not expired; using it keeps it alive."""
        used = self.typebot_sessions.get(session_id)
        now = time.time()
        if used is None or (self.session_ttl > 0 and now - used > self.session_ttl):
            self.typebot_sessions.pop(session_id, None)
            return False
        self.typebot_sessions[session_id] = now
        return True


def create_backends_app(sim: BackendSim) -> Starlette:
    async def start_chat(request: Request) -> Response:
        if (early := await sim.before("typebot")) is not None:
            return early
        session_id = "s" + secrets.token_hex(10)  # no "-": Evolution splits its row's sessionId on it
        sim.typebot_sessions[session_id] = time.time()
        body = {"sessionId": session_id, "resultId": "r" + secrets.token_hex(8), "typebot": {"id": "tb"}}
        return JSONResponse({**body, **_turn("Olá! Em que posso ajudar?", more=True)})

    async def continue_chat(request: Request) -> Response:
        if (early := await sim.before("typebot")) is not None:
            return early
        if not sim.typebot_session(request.path_params["session"]):
            return JSONResponse({"message": "Session not found.", "code": "NOT_FOUND"}, status_code=404)
        text = str((await _json(request)).get("message") or "")
        ended = text.strip().lower() == "fim"  # a flow that ends: no input, Evolution ends the session
        return JSONResponse(_turn("Até logo!" if ended else f"typebot: {text}", more=not ended))

    async def completions(request: Request) -> Response:
        if (early := await sim.before("openai")) is not None:
            return early
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return JSONResponse({"error": {"message": "You didn't provide an API key."}}, status_code=401)
        body = await _json(request)
        asked = (body.get("messages") or [{}])[-1].get("content")
        if isinstance(asked, list):
            asked = " ".join(str(p.get("text") or "") for p in asked if isinstance(p, dict))
        answer = {"role": "assistant", "content": f"openai: {asked}"}
        return JSONResponse(
            {
                "id": "chatcmpl-" + secrets.token_hex(8),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [{"index": 0, "message": answer, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    async def webhook_bot(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in WEBHOOK_KINDS:
            return JSONResponse({"message": f"no {kind} bot here"}, status_code=404)
        if (early := await sim.before("webhook")) is not None:
            return early
        body = await _json(request)
        text, session = _asked(kind, body)
        sim.memory[f"{kind}:{session}"] += 1
        answer = f"{kind} ({sim.memory[f'{kind}:{session}']}): {text}"
        if kind == "n8n":
            return JSONResponse({"output": answer})
        if kind == "flowise":
            return JSONResponse({"text": answer, "question": text, "chatId": session, "sessionId": session})
        if kind == "evolutionBot":
            return JSONResponse({"message": answer})
        part = {"type": "text", "text": answer}
        result = {
            "id": "t" + secrets.token_hex(6),
            "contextId": session,
            "status": {"state": "completed"},
            "artifacts": [{"artifactId": "a1", "parts": [part]}],
        }
        return JSONResponse({"jsonrpc": "2.0", "id": body.get("id"), "result": result})

    routes = [
        Route("/api/v1/typebots/{typebot}/startChat", start_chat, methods=["POST"]),
        Route("/api/v1/sessions/{session}/continueChat", continue_chat, methods=["POST"]),
        Route("/v1/chat/completions", completions, methods=["POST"]),
        Route("/webhook/{kind}/{name}", webhook_bot, methods=["POST"]),
        *fault_routes(sim.faults, on_set=sim.apply_fault),
    ]
    return Starlette(routes=routes)


def _turn(text: str, *, more: bool) -> dict[str, Any]:
    bubble = {
        "id": "m" + secrets.token_hex(6),
        "type": "text",
        "content": {"type": "richText", "richText": [{"type": "p", "children": [{"text": text}]}]},
    }
    turn: dict[str, Any] = {"messages": [bubble]}
    if more:
        turn["input"] = {"id": "i" + secrets.token_hex(6), "type": "text input", "options": {}}
    return turn


def _asked(kind: str, body: dict[str, Any]) -> tuple[str, str]:
    """(the user's text, the session id) from each Evolution service's body."""
    if kind == "n8n":
        return str(body.get("chatInput") or ""), str(body.get("sessionId") or "")
    if kind == "flowise":
        return str(body.get("question") or ""), str((body.get("overrideConfig") or {}).get("sessionId") or "")
    if kind == "evolutionBot":
        return str(body.get("query") or ""), str(body.get("user") or "")
    params = body.get("params") or {}
    parts = (params.get("message") or {}).get("parts") or []
    text = " ".join(str(p.get("text") or "") for p in parts if isinstance(p, dict))
    return text, str(params.get("contextId") or "")


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
