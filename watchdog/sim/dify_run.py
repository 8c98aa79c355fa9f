"""One generation request in the Dify emulator: the body checks in upstream's order, then the blocking
answer or the SSE stream. Sources: controllers/service_api/wraps.py (`user`), completion.py (payload
models), core/app/apps/*/app_generator.py (generate), base_app_queue_manager.py (`listen`: pings, stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from watchdog.sim.dify_apps import DifyApp
from watchdog.sim.dify_chatflow import LOG, WAIT, script
from watchdog.sim.dify_events import Run
from watchdog.sim.dify_state import MODEL_ERROR, Conversation, DifySim, is_uuid
from watchdog.sim.dify_wire import PING, DifyError, invalid, spaced, sse, validation_error, version_headers

UNSUPPORTED_MEDIA = (
    "Did not attempt to load JSON data because the request Content-Type was not 'application/json'."
)
# Flask 3.1 outside debug mode: an unreadable JSON body is a bare BadRequest (Dify's rewrite to "Invalid
# JSON payload received..." only matches the debug-mode text), as observed.
BAD_REQUEST = "The browser (or proxy) sent a request that this server could not understand."


async def json_body(request: Request) -> dict[str, Any]:
    """Flask's `request.get_json()`: 415 without a JSON content type, 400 `bad_request` if unreadable."""
    if "application/json" not in request.headers.get("content-type", ""):
        raise DifyError(415, "unsupported_media_type", UNSUPPORTED_MEDIA)
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise DifyError(400, "bad_request", BAD_REQUEST) from None
    if not isinstance(body, dict):
        raise DifyError(400, "bad_request", BAD_REQUEST)
    return body


def require_user(body: dict[str, Any]) -> str:
    """`validate_app_token(fetch_user_arg=FetchUserArg(..., required=True))`."""
    user = body.get("user")
    if not user:
        raise invalid("Arg user must be provided.")
    return str(user)


def payload_checks(model: str, body: dict[str, Any], *, query_required: bool) -> None:
    """pydantic `ChatRequestPayload` / `CompletionRequestPayload`, field by field as declared."""
    if "inputs" not in body:
        raise validation_error(model, "inputs", "missing", "Field required", body)
    if not isinstance(body["inputs"], dict):
        message = "Input should be a valid dictionary"
        raise validation_error(model, "inputs", "dict_type", message, body["inputs"])
    if "query" not in body and query_required:
        raise validation_error(model, "query", "missing", "Field required", body)
    if not isinstance(body.get("query", ""), str):
        raise validation_error(model, "query", "string_type", "Input should be a valid string", body["query"])
    if body.get("response_mode") not in (None, "blocking", "streaming"):
        message = "Input should be 'blocking' or 'streaming'"
        raise validation_error(model, "response_mode", "literal_error", message, body["response_mode"])
    conversation_id = body.get("conversation_id")
    if (
        model == "ChatRequestPayload"
        and conversation_id not in (None, "")
        and not _uuid_text(conversation_id)
    ):
        message = "Value error, conversation_id must be a valid UUID"  # normalize_conversation_id
        raise validation_error(model, "conversation_id", "value_error", message, conversation_id)


def _uuid_text(value: Any) -> bool:
    return isinstance(value, str) and is_uuid(value.strip())


async def generate(
    sim: DifySim,
    app: DifyApp,
    body: dict[str, Any],
    user: str,
    conv: Conversation | None,
    *,
    fresh: bool,
) -> Response:
    """Run the app: a stream (errors after it began are events), or blocking (errors are HTTP 400s)."""
    for name in app.required_inputs:  # base_app_generator._validate_inputs
        if body["inputs"].get(name) in (None, ""):
            raise invalid(f"{name} is required in input form")
    turn = conv.answers + 1 if conv else 1
    run = Run(app, body.get("query", ""), user, conv.id if conv else None, dict(body["inputs"]), turn)
    model_error = MODEL_ERROR if "error_event" in sim.faults else ""
    if body.get("response_mode") == "streaming":
        stream = events(sim, run, conv, body.get("files"), model_error, fresh=fresh)
        return StreamingResponse(
            stream, media_type="text/event-stream", headers=version_headers(sim.version, api=True)
        )
    await sim.delay(run.query, body.get("files"), fresh=fresh)
    run.first_token = run.elapsed()
    metadata: Any = {}
    for payload in script(run, model_error):
        if payload["event"] == WAIT:
            await asyncio.sleep(payload["seconds"])
        elif payload["event"] == LOG:
            log_line(sim, run, payload)
        elif payload["event"] == "error":  # `_to_blocking_response` raises the run's error
            if run.app.mode == "advanced-chat":
                log_line(sim, run, blocking_failure(run, payload["message"]))
            raise DifyError(payload["status"], payload["code"], payload["message"])
        elif payload["event"] == "message_end":
            metadata = payload["metadata"]
    if conv is not None:
        sim.answered(conv, model=run.app.mode != "advanced-chat")
    reply: dict[str, Any] = {"event": "message", "task_id": run.task_id, "id": run.message_id}
    reply |= {"message_id": run.message_id, "conversation_id": run.conversation_id, "mode": app.mode}
    reply |= {"answer": run.answer, "metadata": metadata, "created_at": int(run.started)}
    if conv is None:
        reply.pop("conversation_id")
    return Response(  # libs/helper.compact_generate_response: json.dumps, no newline
        spaced(reply, newline=False),
        headers={**version_headers(sim.version, api=True), "Content-Type": "application/json; charset=utf-8"},
    )


async def events(
    sim: DifySim, run: Run, conv: Conversation | None, files: Any, model_error: str, *, fresh: bool
) -> AsyncIterator[str]:
    """`data: <compact json>` per payload, and `event: ping` whenever elapsed time crosses a multiple of
    the ping interval (`AppQueueManager.listen`: every 10 s, even while tokens flow)."""
    started = time.monotonic()
    pinged = 0
    stop = asyncio.Event()
    sim.stops[run.task_id] = (run.user, stop)

    def ping_due() -> bool:
        nonlocal pinged
        due = int((time.monotonic() - started) // sim.ping_seconds)
        if due > pinged:
            pinged = due
            return True
        return False

    async def waiting(pending: Awaitable[None]) -> AsyncIterator[str]:
        waiter = asyncio.ensure_future(pending)
        try:
            while not waiter.done():
                left = (pinged + 1) * sim.ping_seconds - (time.monotonic() - started)
                await asyncio.wait({waiter}, timeout=max(left, 0.0))
                if ping_due():
                    yield PING
        finally:
            waiter.cancel()

    try:
        async for ping in waiting(sim.delay(run.query, files, fresh=fresh)):
            yield ping
        run.first_token = run.elapsed()
        head = run.envelope()
        for payload in script(run, model_error):
            if payload["event"] == WAIT:
                async for ping in waiting(_sleep_unless(stop, payload["seconds"])):
                    yield ping
                continue
            if payload["event"] == LOG:
                log_line(sim, run, payload)
                continue
            if stop.is_set():  # the stop flag is read between queue messages
                for tail in run.stopped():
                    yield sse({"event": tail["event"], **head, **tail})
                break
            if ping_due():
                yield PING
            yield sse({"event": payload["event"], **head, **payload})
            if payload["event"] == "error":
                return
            if payload["event"] in ("message", "agent_message") and "truncate_stream" in sim.faults:
                return
            await asyncio.sleep(0)
        if conv is not None:
            sim.answered(conv, model=run.app.mode != "advanced-chat")
    finally:
        sim.stops.pop(run.task_id, None)


def blocking_failure(run: Run, message: str) -> dict[str, Any]:
    """advanced_chat/app_generator.py:615 `logger.exception` when a blocking run's pipeline raises."""
    text = f"Failed to process generate task pipeline, conversation_id: {run.conversation_id}"
    pipeline = "/app/api/core/app/apps/advanced_chat/generate_task_pipeline.py"
    where = f'  File "{pipeline}", line 172, in _to_blocking_response'
    lines = [
        "Traceback (most recent call last):",
        where,
        "    raise stream_response.err",
        f"ValueError: {message}",
    ]
    return {
        "level": "ERROR",
        "where": "app_generator.py:615",
        "message": text,
        "traceback": lines,
        "request": True,
    }


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    """Time passing inside a node; a stop ends it (listen() reads the flag at least every second)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def log_line(sim: DifySim, run: Run, marker: dict[str, Any]) -> None:
    """A line the run makes Dify write (a request greenlet's thread name, the request's trace id)."""
    where, message = marker["where"], marker["message"]
    trace_id = run.trace_id if marker["request"] else ""
    sim.log.dify(marker["level"], message, thread="Dummy-2", where=where, trace_id=trace_id)
    for line in marker["traceback"]:
        sim.log.raw(line)
