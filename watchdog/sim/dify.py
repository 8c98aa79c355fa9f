"""Dify 1.12.1 service-API emulator over HTTP: its routes, each with upstream's checks in upstream's order.

The rest lives beside it: dify_apps.py (the apps behind the keys), dify_state.py (conversations, faults),
dify_run.py (one generation, blocking or SSE), dify_chatflow.py and dify_events.py (what a run emits, in
upstream's order and shapes), dify_wire.py (bodies, envelopes, HTML pages). Facts: ../shared/upstream/
README.md ("Dify"), checked against a running 1.12.1 by tests/contract/test_dify_contract.py. Routes follow
api/controllers/service_api/app/{completion,conversation,app}.py and controllers/service_api/wraps.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watchdog.sim.dify_apps import CHAT_MODES, DifyApp, parameters
from watchdog.sim.dify_run import generate, json_body, payload_checks, require_user
from watchdog.sim.dify_state import DIFY_FAULTS, DifySim, is_uuid, restarted
from watchdog.sim.dify_wire import (
    DifyError,
    error_response,
    html_not_found,
    html_redirect,
    invalid,
    json_response,
    method_not_allowed,
    not_found,
    validation_error,
    version_headers,
)
from watchdog.sim.faults import fault_routes

__all__ = ["DIFY_FAULTS", "DifyError", "DifySim", "create_dify_app", "restarted"]

Handler = Callable[[Request, str, DifyApp], Awaitable[Response]]
NOT_CHAT_APP = "Please check if your app mode matches the right API route."


def create_dify_app(sim: DifySim) -> Starlette:
    def route(handler: Handler, *, chat: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            sim.requests += 1
            try:
                await sim.before(chat=chat)
                key, app = sim.authorize(request.headers.get("authorization", ""))
                return await handler(request, key, app)
            except DifyError as exc:
                return error_response(exc, sim.version)

        return endpoint

    async def health(request: Request) -> Response:
        """ext_app_metrics.py: `json.dumps`, no dependency checked; never fails but for a wedged worker."""
        sim.requests += 1
        try:
            await sim.before(chat=False, can_fail=False)
        except DifyError as exc:
            return error_response(exc, sim.version)
        body = json.dumps({"pid": os.getpid(), "status": "ok", "version": sim.version})
        return Response(body, media_type="application/json", headers=version_headers(sim.version))

    async def redirect_v1(request: Request) -> Response:
        return html_redirect(str(request.base_url).rstrip("/") + "/v1/", sim.version)

    async def info(request: Request, key: str, app: DifyApp) -> Response:
        body = {"name": app.name, "description": app.description, "tags": [], "mode": app.mode}
        body["author_name"] = "ops"
        return json_response(body, sim.version)

    async def parameters_route(request: Request, key: str, app: DifyApp) -> Response:
        return json_response(parameters(app), sim.version)

    async def chat_messages(request: Request, key: str, app: DifyApp) -> Response:
        body = await json_body(request)
        user = require_user(body)
        if app.mode not in CHAT_MODES:
            raise DifyError(400, "not_chat_app", NOT_CHAT_APP)
        payload_checks("ChatRequestPayload", body, query_required=True)
        streaming = body.get("response_mode") == "streaming"
        if app.mode == "agent-chat" and not streaming:  # core/app/apps/agent_chat/app_generator.py:87
            raise invalid("Agent Chat App does not support blocking mode")
        if not body["query"]:
            raise invalid("query is required")
        conv, fresh = sim.conversation_for(body, user, key)
        return await generate(sim, app, body, user, conv, fresh=fresh)

    async def completion_messages(request: Request, key: str, app: DifyApp) -> Response:
        body = await json_body(request)
        user = require_user(body)
        if app.mode != "completion":
            raise DifyError(400, "app_unavailable", "App unavailable, please check your app configurations.")
        payload_checks("CompletionRequestPayload", body, query_required=False)
        return await generate(sim, app, body, user, None, fresh=True)

    async def stop(request: Request, key: str, app: DifyApp) -> Response:
        """`{"result": "success"}` for any task; only the task's own end user really stops it."""
        user = require_user(await json_body(request))
        if app.mode not in CHAT_MODES:
            raise DifyError(400, "not_chat_app", NOT_CHAT_APP)
        owner, flag = sim.stops.get(request.path_params["task_id"], ("", None))
        if flag is not None and owner == user:
            flag.set()
        return json_response({"result": "success"}, sim.version)

    async def list_conversations(request: Request, key: str, app: DifyApp) -> Response:
        if app.mode not in CHAT_MODES:
            raise DifyError(400, "not_chat_app", NOT_CHAT_APP)
        params = request.query_params
        raw_limit = params.get("limit", "20")
        model = "ConversationListQuery"
        try:
            limit = int(raw_limit)
        except ValueError:
            message = "Input should be a valid integer, unable to parse string as an integer"
            raise validation_error(model, "limit", "int_parsing", message, raw_limit) from None
        if limit < 1:
            message = "Input should be greater than or equal to 1"
            raise validation_error(model, "limit", "greater_than_equal", message, raw_limit)
        if limit > 100:
            message = "Input should be less than or equal to 100"
            raise validation_error(model, "limit", "less_than_equal", message, raw_limit)
        rows = sim.visible(params.get("user", ""), key)
        last_id = params.get("last_id", "")
        if last_id:
            if not is_uuid(last_id):
                raise validation_error(
                    model, "last_id", "value_error", "Value error, must be a valid UUID", last_id
                )
            ids = [c.id for c in rows]
            if last_id not in ids:
                raise not_found("Last Conversation Not Exists.", "/v1/conversations")
            rows = rows[ids.index(last_id) + 1 :]
        data = [
            {
                "id": c.id,
                "name": c.name,
                "inputs": c.inputs,
                "status": "normal",
                "introduction": "",
                "created_at": c.created_at,
                "updated_at": c.updated_at,
            }
            for c in rows[:limit]
        ]
        return json_response({"limit": limit, "has_more": len(rows) > limit, "data": data}, sim.version)

    async def delete_conversation(request: Request, key: str, app: DifyApp) -> Response:
        await json_body(request)  # `request.get_json().get("user")`; the user is optional here
        if app.mode not in CHAT_MODES:
            raise DifyError(400, "not_chat_app", NOT_CHAT_APP)
        sim.delete(str(request.path_params["conversation_id"]), app.name)
        headers = {
            **version_headers(sim.version, api=True),
            "Content-Type": "application/json",
        }  # flask-restx
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

    async def html_404(request: Request, exc: Exception) -> Response:
        return html_not_found(sim.version, api=request.url.path == "/v1/")

    async def json_405(request: Request, exc: Exception) -> Response:
        return method_not_allowed(sim.version)

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1", redirect_v1),
            Route("/v1/info", route(info), methods=["GET"]),
            Route("/v1/parameters", route(parameters_route), methods=["GET"]),
            Route("/v1/chat-messages", route(chat_messages, chat=True), methods=["POST"]),
            Route("/v1/completion-messages", route(completion_messages, chat=True), methods=["POST"]),
            Route("/v1/chat-messages/{task_id}/stop", route(stop), methods=["POST"]),
            Route("/v1/conversations", route(list_conversations), methods=["GET"]),
            Route("/v1/conversations/{conversation_id:uuid}", route(delete_conversation), methods=["DELETE"]),
            Route("/_sim/state", state, methods=["GET"]),
            *fault_routes(sim.faults),
        ],
        exception_handlers={404: html_404, 405: json_405},
    )
    app.router.redirect_slashes = False  # werkzeug's strict slashes: `/v1/info/` has no rule
    return app
