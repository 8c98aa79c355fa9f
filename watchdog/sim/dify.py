"""Dify service-API emulator (facts in shared/reference/dify-api.md): blocking and SSE chat, the real
error envelopes, conversations per end user, its log format, and the faults users meet in practice.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from watchdog.sim.faults import FaultSet, FaultType, fault_routes
from watchdog.sim.logfmt import SimLog

DIFY_FAULTS = [
    FaultType(
        "hang",
        "requests never answer (scope chat: chat/completion only; all: every route)",
        {"scope": "chat"},
    ),
    FaultType(
        "forget_after",
        "a conversation is forgotten after this many answers (404 afterwards)",
        {"messages": 3},
    ),
    FaultType(
        "error_500", "answers 500 internal_server_error (scope chat or all; /health never)", {"scope": "chat"}
    ),
    FaultType("truncate_stream", "streams stop after the first message event, without message_end"),
    FaultType("error_event", "streams carry an error event; blocking answers 400 completion_request_error"),
    FaultType("slow", "answers late (kind all|text|media)", {"seconds": 2.0, "kind": "all"}),
    FaultType("worker_timeout", "gunicorn worker wedged: every route hangs, WORKER TIMEOUT logged"),
]
MEDIA_PREFIXES = ("imageMessage|", "audioMessage|", "videoMessage|", "documentMessage|", "stickerMessage|")
CHUNK_WORDS = 3


@dataclass
class Conversation:
    id: str
    user: str
    created_at: int
    updated_at: int
    answers: int = 0
    forgotten: bool = False


class DifyError(Exception):
    """An error answered with Dify's envelope `{"code", "message", "status"}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# What a request that hung sees when Dify is restarted under it (nginx answers for the dead upstream).
def restarted() -> DifyError:
    return DifyError(502, "bad_gateway", "upstream connection closed: the api worker restarted")


def _error(status: int, code: str, message: str, version: str) -> JSONResponse:
    headers = {"X-Version": version, "X-Env": "PRODUCTION"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return JSONResponse(
        {"code": code, "message": message, "status": status}, status_code=status, headers=headers
    )


class DifySim:
    def __init__(
        self,
        *,
        api_keys: Sequence[str],
        version: str = "1.13.3",
        mode: str = "chat",
        faults: FaultSet | None = None,
        log: SimLog | None = None,
        ping_seconds: float = 10.0,
        state_file: Path | None = None,
    ) -> None:
        self.api_keys = tuple(api_keys)
        self.version = version
        self.mode = mode
        self.faults = faults or FaultSet(DIFY_FAULTS)
        self.log = log or SimLog()
        self.ping_seconds = ping_seconds
        self.state_file = state_file
        self.conversations: dict[str, Conversation] = {}
        self.requests = 0
        self._worker_timeout_logged = False

    # ---- checks shared by routes -------------------------------------------------------------

    def authorize(self, header: str) -> None:
        """The three 401s of `validate_app_token`, in upstream's order."""
        if " " not in header:
            message = "Authorization header must be provided and start with 'Bearer'"
            raise DifyError(401, "unauthorized", message)
        scheme, _, token = header.partition(" ")
        if scheme != "Bearer":
            raise DifyError(401, "unauthorized", "Authorization scheme must be 'Bearer'")
        if token not in self.api_keys:
            raise DifyError(401, "unauthorized", "Access token is invalid")

    async def before(self, *, chat: bool, can_fail: bool = True) -> None:
        """Faults that act before any work: hangs, wedged workers, 500s (never on /health)."""
        if "worker_timeout" in self.faults:
            if not self._worker_timeout_logged:
                self._worker_timeout_logged = True
                self.log.gunicorn("CRITICAL", "WORKER TIMEOUT (pid:35)")
                self.log.gunicorn("ERROR", "Worker (pid:35) was sent SIGKILL! Perhaps out of memory?")
                self.log.gunicorn("INFO", "Booting worker with pid: 39")
            await self.faults.hold_while("worker_timeout")
            raise restarted()
        hang = self.faults.get("hang")
        if hang and (chat or hang["scope"] == "all"):
            await self.faults.hold_while("hang")
            raise restarted()
        failing = self.faults.get("error_500")
        if failing and can_fail and (chat or failing["scope"] == "all"):
            self.log.dify(
                "ERROR", "internal server error.", where="completion.py:140", trace_id=secrets.token_hex(16)
            )
            self.log.raw("Traceback (most recent call last):")
            self.log.raw('  File "/app/api/controllers/service_api/app/completion.py", line 128, in post')
            self.log.raw("RuntimeError: simulated failure")
            raise DifyError(500, "internal_server_error", "Internal Server Error, please contact support.")

    async def delay(self, query: str, files: Any) -> None:
        slow = self.faults.get("slow")
        if not slow:
            return
        media = bool(files) or query.startswith(MEDIA_PREFIXES)
        if slow["kind"] == "all" or (slow["kind"] == "media") == media:
            await asyncio.sleep(float(slow["seconds"]))

    # ---- conversations -------------------------------------------------------------------------

    def conversation_for(self, conversation_id: Any, user: str) -> Conversation:
        now = int(time.time())
        if conversation_id in (None, ""):
            fresh = Conversation(str(uuid.uuid4()), user, now, now)
            self.conversations[fresh.id] = fresh
            self.persist()
            return fresh
        if not isinstance(conversation_id, str) or not _is_uuid(conversation_id):
            raise DifyError(400, "invalid_param", "conversation_id must be a valid UUID")
        conv = self.conversations.get(conversation_id)
        if conv is None or conv.forgotten or conv.user != user:
            raise DifyError(404, "not_found", "Conversation Not Exists.")
        return conv

    def answered(self, conv: Conversation) -> None:
        conv.answers += 1
        conv.updated_at = int(time.time())
        limit = self.faults.get("forget_after")
        if limit and conv.answers >= int(limit["messages"]):
            conv.forgotten = True
        self.persist()
        self.log.dify(
            "INFO",
            'HTTP Request: POST http://plugin_daemon:5002/plugin/9a1b/dispatch/llm/invoke "HTTP/1.1 200 OK"',
            thread="Dummy-2",
            where="_client.py:1025",
            trace_id=secrets.token_hex(16),
        )

    def persist(self) -> None:
        """Conversations live in Dify's Postgres: with a state file they survive a restart, as upstream."""
        if self.state_file is None:
            return
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(c) for c in self.conversations.values()]))
        os.replace(tmp, self.state_file)

    def load(self) -> None:
        if self.state_file is not None and self.state_file.exists():
            for row in json.loads(self.state_file.read_text()):
                self.conversations[row["id"]] = Conversation(**row)

    def visible(self, user: str) -> list[Conversation]:
        rows = [c for c in self.conversations.values() if c.user == user and not c.forgotten]
        return sorted(rows, key=lambda c: (c.updated_at, c.created_at), reverse=True)


def answer_for(query: str) -> str:
    if query.startswith(MEDIA_PREFIXES):
        return f"Recebi seu {query.split('Message|', 1)[0]}. Como posso ajudar?"
    return f"Echo: {query}"


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _usage() -> dict[str, Any]:
    return {
        "prompt_tokens": 12,
        "prompt_unit_price": "0.001",
        "prompt_price_unit": "0.001",
        "prompt_price": "0.000012",
        "completion_tokens": 8,
        "completion_unit_price": "0.002",
        "completion_price_unit": "0.001",
        "completion_price": "0.000016",
        "total_tokens": 20,
        "total_price": "0.000028",
        "currency": "USD",
        "latency": 0.42,
    }


Handler = Callable[[Request], Awaitable[Response]]


def create_dify_app(sim: DifySim) -> Starlette:
    headers = {"X-Version": sim.version, "X-Env": "PRODUCTION"}

    def ok(body: Any, status: int = 200) -> JSONResponse:
        return JSONResponse(body, status_code=status, headers=headers)

    def route(handler: Handler, *, auth: bool = True, chat: bool = False, can_fail: bool = True) -> Handler:
        async def endpoint(request: Request) -> Response:
            sim.requests += 1
            try:
                await sim.before(chat=chat, can_fail=can_fail)
                if auth:
                    sim.authorize(request.headers.get("authorization", ""))
                return await handler(request)
            except DifyError as exc:
                return _error(exc.status, exc.code, exc.message, sim.version)

        return endpoint

    async def health(request: Request) -> Response:
        body = json.dumps({"pid": os.getpid(), "status": "ok", "version": sim.version})
        return Response(body, media_type="application/json", headers=headers)

    async def welcome(request: Request) -> Response:
        return ok({"welcome": "Dify OpenAPI", "api_version": "v1", "server_version": sim.version})

    async def info(request: Request) -> Response:
        return ok(
            {"name": "Atendimento", "description": "", "tags": [], "mode": sim.mode, "author_name": "ops"}
        )

    async def parameters(request: Request) -> Response:
        return ok(
            {
                "opening_statement": "",
                "suggested_questions": [],
                "suggested_questions_after_answer": {"enabled": False},
                "speech_to_text": {"enabled": False},
                "text_to_speech": {"enabled": False},
                "retriever_resource": {"enabled": False},
                "annotation_reply": {"enabled": False},
                "more_like_this": {"enabled": False},
                "user_input_form": [],
                "sensitive_word_avoidance": {"enabled": False},
                "file_upload": {"image": {"enabled": True}},
                "system_parameters": {"file_size_limit": 15, "image_file_size_limit": 10},
            }
        )

    async def body_of(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body:
            raise DifyError(400, "invalid_param", "Invalid JSON payload received or JSON payload is empty.")
        return body

    async def chat_messages(request: Request) -> Response:
        return await _generate(request, chat=True)

    async def completion_messages(request: Request) -> Response:
        return await _generate(request, chat=False)

    async def _generate(request: Request, *, chat: bool) -> Response:
        body = await body_of(request)
        if not isinstance(body.get("inputs"), dict):
            raise DifyError(400, "invalid_param", "inputs is required")
        query = body.get("query", None if chat else "")
        if not isinstance(query, str):
            raise DifyError(400, "invalid_param", "query is required")
        user = body.get("user")
        if not isinstance(user, str) or not user:
            raise DifyError(400, "invalid_param", "Arg user must be provided.")
        conv = sim.conversation_for(body.get("conversation_id") if chat else None, user)
        if not chat:
            sim.conversations.pop(conv.id, None)
            sim.persist()
        streaming = body.get("response_mode") == "streaming"
        task_id, message_id = str(uuid.uuid4()), str(uuid.uuid4())
        answer = answer_for(query)
        mode = sim.mode if chat else "completion"
        if not streaming:
            await sim.delay(query, body.get("files"))
            if "error_event" in sim.faults:
                raise DifyError(400, "completion_request_error", "[openai] Error: simulated provider failure")
            sim.answered(conv)
            reply: dict[str, Any] = {
                "event": "message",
                "task_id": task_id,
                "id": message_id,
                "message_id": message_id,
                "mode": mode,
                "answer": answer,
                "metadata": {"usage": _usage()},
                "created_at": int(time.time()),
            }
            if chat:
                reply["conversation_id"] = conv.id
            return Response(json.dumps(reply), media_type="application/json", headers=headers)
        stream = _events(sim, conv, query, body.get("files"), answer, task_id, message_id, chat=chat)
        return StreamingResponse(stream, media_type="text/event-stream", headers=headers)

    async def stop(request: Request) -> Response:
        body = await body_of(request)
        if not isinstance(body.get("user"), str):
            raise DifyError(400, "invalid_param", "Arg user must be provided.")
        return ok({"result": "success"})

    async def list_conversations(request: Request) -> Response:
        user = request.query_params.get("user", "")
        try:
            limit = int(request.query_params.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            raise DifyError(400, "invalid_param", "limit must be between 1 and 100")
        rows = sim.visible(user)
        last_id = request.query_params.get("last_id")
        if last_id:
            ids = [c.id for c in rows]
            if last_id not in ids:
                raise DifyError(404, "not_found", "Last Conversation Not Exists.")
            rows = rows[ids.index(last_id) + 1 :]
        page = rows[:limit]
        data = [
            {
                "id": c.id,
                "name": "New conversation",
                "inputs": {},
                "status": "normal",
                "introduction": "",
                "created_at": c.created_at,
                "updated_at": c.updated_at,
            }
            for c in page
        ]
        return ok({"limit": limit, "has_more": len(rows) > limit, "data": data})

    async def delete_conversation(request: Request) -> Response:
        conversation_id = request.path_params["conversation_id"]
        body = await body_of(request)
        user = body.get("user")
        if not isinstance(user, str):
            raise DifyError(400, "invalid_param", "Arg user must be provided.")
        if not _is_uuid(conversation_id):
            raise DifyError(404, "not_found", "The requested URL was not found on the server.")
        conv = sim.conversations.get(conversation_id)
        if conv is None or conv.forgotten or conv.user != user:
            raise DifyError(404, "not_found", "Conversation Not Exists.")
        del sim.conversations[conversation_id]
        sim.persist()
        return Response(status_code=204, headers=headers)

    async def state(request: Request) -> Response:
        return JSONResponse(
            {
                "conversations": len(sim.conversations),
                "answers": {c.id: c.answers for c in sim.conversations.values()},
                "forgotten": sum(1 for c in sim.conversations.values() if c.forgotten),
                "faults": sim.faults.active(),
                "requests": sim.requests,
            }
        )

    return Starlette(
        routes=[
            Route("/health", route(health, auth=False, can_fail=False), methods=["GET"]),
            Route("/v1/", route(welcome, auth=False), methods=["GET"]),
            Route("/v1/info", route(info), methods=["GET"]),
            Route("/v1/parameters", route(parameters), methods=["GET"]),
            Route("/v1/chat-messages", route(chat_messages, chat=True), methods=["POST"]),
            Route("/v1/completion-messages", route(completion_messages, chat=True), methods=["POST"]),
            Route("/v1/chat-messages/{task_id}/stop", route(stop), methods=["POST"]),
            Route("/v1/conversations", route(list_conversations), methods=["GET"]),
            Route("/v1/conversations/{conversation_id}", route(delete_conversation), methods=["DELETE"]),
            Route("/_sim/state", state, methods=["GET"]),
            *fault_routes(sim.faults),
        ]
    )


async def _events(
    sim: DifySim,
    conv: Conversation,
    query: str,
    files: Any,
    answer: str,
    task_id: str,
    message_id: str,
    *,
    chat: bool,
) -> AsyncIterator[str]:
    """`data: <json>\\n\\n` per event, `event: ping\\n\\n` while waiting, as Dify 1.x writes them."""
    waiter = asyncio.ensure_future(sim.delay(query, files))
    try:
        while not waiter.done():
            done, _ = await asyncio.wait({waiter}, timeout=sim.ping_seconds)
            if not done:
                yield "event: ping\n\n"
    finally:
        waiter.cancel()
    base = {
        "conversation_id": conv.id if chat else None,
        "message_id": message_id,
        "created_at": int(time.time()),
    }

    def data(event: str, **fields: Any) -> str:
        return "data: " + json.dumps({"event": event, **base, **fields}, separators=(",", ":")) + "\n\n"

    if "error_event" in sim.faults:
        yield data("error", code="completion_request_error", status=400, message="[openai] Error: simulated")
        return
    words = answer.split(" ")
    chunks = [" ".join(words[i : i + CHUNK_WORDS]) + " " for i in range(0, len(words), CHUNK_WORDS)]
    chunks[-1] = chunks[-1].rstrip()
    agent = sim.mode == "agent-chat"
    if agent:
        yield data(
            "agent_thought",
            task_id=task_id,
            id=str(uuid.uuid4()),
            position=1,
            thought="",
            observation="",
            tool="",
            tool_labels={},
            tool_input="",
            message_files=[],
        )
    for chunk in chunks:
        yield data("agent_message" if agent else "message", task_id=task_id, id=message_id, answer=chunk)
        if "truncate_stream" in sim.faults:
            return
        await asyncio.sleep(0)
    sim.answered(conv)
    yield data("message_end", task_id=task_id, id=message_id, metadata={"usage": _usage()})
