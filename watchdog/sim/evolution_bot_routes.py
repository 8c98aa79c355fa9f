"""The Evolution emulator's Dify and webhook routes, answered as 2.3.6 answers them.

Sources: src/api/integrations/chatbot/dify/routes/dify.router.ts (create 201, the rest 200),
dify/validate/dify.schema.ts, base-chatbot.controller.ts (`changeStatus` reply shapes),
src/api/integrations/event/webhook/ (`webhook/set` 201, webhook.schema.ts, events stored in full).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watchdog.sim import bots
from watchdog.sim.evolution import EvolutionSim
from watchdog.sim.evolution_rows import (
    bot_row,
    envelope,
    invalid,
    read_json,
    session_row,
    settings_json,
    webhook_row,
)
from watchdog.sim.webhooks import ALL_EVENTS, WebhookConfig

STATUSES = ("opened", "closed", "paused", "delete")


def bot_routes(sim: EvolutionSim, guarded: Callable[..., Any]) -> list[Route]:
    def holder(request: Request) -> Any:
        return sim.instances[request.path_params["instance"]]

    async def create(request: Request) -> Response:
        body = await read_json(request) or {}
        problems = _required(body, "enabled", "botType", "triggerType")
        problems += _enum(body, "botType", bots.BOT_TYPES) + _enum(body, "triggerType", bots.TRIGGER_TYPES)
        problems += _enum(body, "triggerOperator", bots.TRIGGER_OPERATORS)
        if problems:
            return invalid(*problems)
        try:
            bot = bots.create_bot(holder(request), body)
        except bots.RowError as exc:
            return envelope(exc.status, exc.message)
        sim.persist()
        return JSONResponse(bot_row(bot), status_code=201)

    async def find(request: Request) -> Response:
        return JSONResponse([bot_row(b) for b in holder(request).bots])

    async def fetch(request: Request) -> Response:
        bot = sim.bot_by_id(request.path_params["bot_id"])
        return JSONResponse(bot_row(bot) if bot else None)

    async def fetch_settings(request: Request) -> Response:
        row = holder(request).dify_settings
        if row is None:
            return JSONResponse(bots.SETTINGS_WHEN_NONE)
        return JSONResponse(settings_json(row, sim.bot_by_id(str(row.get("difyIdFallback") or ""))))

    async def save_settings(request: Request) -> Response:
        body = await read_json(request) or {}
        problems = _required(body, *bots.SETTING_COLUMNS)
        if problems:
            return invalid(*problems)
        row = bots.save_settings(holder(request), body)
        sim.persist()
        fallback = sim.bot_by_id(str(row.get("difyIdFallback") or ""))
        answer = settings_json(row, fallback)
        del answer["fallback"]  # `settings` answers the row and fallbackId only
        return JSONResponse(answer)

    async def change_status(request: Request) -> Response:
        body = await read_json(request) or {}
        problems = _required(body, "remoteJid", "status") + _enum(body, "status", STATUSES)
        if problems:
            return invalid(*problems)
        jid, status = str(body["remoteJid"]), str(body["status"])
        touched = sim.change_status(request.path_params["instance"], jid, status)
        if status == "delete":
            return JSONResponse({"bot": {"remoteJid": jid, "status": status}})
        inner: dict[str, Any] = {"remoteJid": jid, "status": status}
        if status != "closed":
            inner["session"] = touched
        return JSONResponse({"bot": {"instanceName": request.path_params["instance"], "bot": inner}})

    async def fetch_sessions(request: Request) -> Response:
        inst = holder(request)
        try:
            rows = bots.fetch_sessions(inst, sim.instances.values(), request.path_params["bot_id"])
        except bots.RowError as exc:
            return envelope(exc.status, exc.message)
        return JSONResponse([session_row(inst, s) for s in rows])

    async def webhook_set(request: Request) -> Response:
        body = await read_json(request) or {}
        hook = body.get("webhook")
        if not isinstance(hook, dict):
            return invalid('instance requires property "webhook"')
        problems = _required(hook, "enabled", "url", prefix="webhook")
        events = hook.get("events")
        if isinstance(events, list):
            problems += [f"webhook.events[{n}] is not one of enum values: {','.join(ALL_EVENTS)}"
                         for n, e in enumerate(events) if e not in ALL_EVENTS]  # fmt: skip
        if problems:
            return invalid(*problems)
        inst = holder(request)
        if not inst.loaded:
            return envelope(500, "Cannot read properties of undefined (reading 'instanceId')")
        if hook["enabled"] and not isinstance(events, list):
            return envelope(500, "Cannot read properties of undefined (reading 'length')")
        stored = (list(events) or list(ALL_EVENTS)) if hook["enabled"] and isinstance(events, list) else []
        given = hook.get("headers")
        headers: dict[str, Any] = given if isinstance(given, dict) else {}
        config = WebhookConfig(
            url=str(hook["url"]),
            enabled=bool(hook["enabled"]),
            by_events=bool(hook.get("byEvents", False)),
            base64=bool(hook.get("base64", False)),
            headers={str(k): str(v) for k, v in headers.items()},
            events=stored,
        )
        sim.set_webhook(inst.name, config)
        return JSONResponse(webhook_row(inst), status_code=201)

    async def webhook_find(request: Request) -> Response:
        inst = holder(request)
        return JSONResponse(webhook_row(inst) if inst.webhook and inst.loaded else None)

    inst = "{instance}"
    return [
        Route(f"/dify/create/{inst}", guarded(create), methods=["POST"]),
        Route(f"/dify/find/{inst}", guarded(find), methods=["GET"]),
        Route(f"/dify/fetch/{{bot_id}}/{inst}", guarded(fetch), methods=["GET"]),
        Route(f"/dify/settings/{inst}", guarded(save_settings), methods=["POST"]),
        Route(f"/dify/fetchSettings/{inst}", guarded(fetch_settings), methods=["GET"]),
        Route(f"/dify/changeStatus/{inst}", guarded(change_status), methods=["POST"]),
        Route(f"/dify/fetchSessions/{{bot_id}}/{inst}", guarded(fetch_sessions), methods=["GET"]),
        Route(f"/webhook/set/{inst}", guarded(webhook_set), methods=["POST"]),
        Route(f"/webhook/find/{inst}", guarded(webhook_find), methods=["GET"]),
    ]


def _required(body: dict[str, Any], *names: str, prefix: str = "instance") -> list[str]:
    """jsonschema's messages for missing properties (`instance.` is stripped from nested paths)."""
    where = "instance" if prefix == "instance" else prefix
    return [f'{where} requires property "{n}"' for n in names if n not in body]


def _enum(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> list[str]:
    if name in body and body[name] not in allowed:
        return [f"{name} is not one of enum values: {','.join(allowed)}"]
    return []
