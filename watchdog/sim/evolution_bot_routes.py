"""The Evolution emulator's bot routes (every integration in watchdog/integrations.py), OpenAI's credentials
and the webhook routes, answered as 2.3.6 answers them.

Sources: src/api/integrations/chatbot/{name}/routes/{name}.router.ts (create 201, the rest 200; openai's
`creds` 201), {name}/validate/{name}.schema.ts (required properties and enums), base-chatbot.controller.ts
(`changeStatus` reply shapes; `{label} is disabled` for an integration that is off),
openai.controller.ts `createOpenaiCreds` (:223-275), src/api/integrations/event/webhook/ (`webhook/set`
201, webhook.schema.ts, events stored in full).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watchdog.integrations import INTEGRATIONS, Integration
from watchdog.sim import bots
from watchdog.sim.bot_rules import create_bot
from watchdog.sim.evolution import EvolutionSim
from watchdog.sim.evolution_rows import (
    bot_row,
    envelope,
    invalid,
    iso,
    read_json,
    session_row,
    settings_json,
    webhook_row,
)
from watchdog.sim.webhooks import ALL_EVENTS, WebhookConfig

STATUSES = ("opened", "closed", "paused", "delete")
BOT_TYPES = {"dify": bots.BOT_TYPES, "openai": ("assistant", "chatCompletion")}
# `{name}SettingSchema.required`: Typebot and the older ones do not ask for the newer columns.
SETTINGS_REQUIRED = {
    "typebot": (
        "expire",
        "keywordFinish",
        "delayMessage",
        "unknownMessage",
        "listeningFromMe",
        "stopBotFromMe",
    ),
    "openai": ("openaiCredsId", *tuple(bots.SETTING_COLUMNS)[:9]),
    "flowise": tuple(bots.SETTING_COLUMNS)[:9],
}


def bot_routes(sim: EvolutionSim, guarded: Callable[..., Any]) -> list[Route]:
    routes = [route for integ in INTEGRATIONS for route in integration_routes(sim, guarded, integ)]
    return routes + creds_routes(sim, guarded) + webhook_routes(sim, guarded)


def integration_routes(sim: EvolutionSim, guarded: Callable[..., Any], integ: Integration) -> list[Route]:
    def holder(request: Request) -> Any:
        return sim.instances[request.path_params["instance"]]

    def on(handler: Callable[[Request], Any]) -> Any:
        async def endpoint(request: Request) -> Response:
            if integ.name in sim.disabled_integrations:
                return envelope(400, [integ.disabled_message()])
            response: Response = await handler(request)
            return response

        return guarded(endpoint)

    async def create(request: Request) -> Response:
        body = await read_json(request) or {}
        problems = _required(body, *integ.create_required)
        if integ.name in BOT_TYPES:
            problems += _enum(body, "botType", BOT_TYPES[integ.name])
        problems += _enum(body, "triggerType", bots.TRIGGER_TYPES)
        problems += _enum(body, "triggerOperator", bots.TRIGGER_OPERATORS)
        if problems:
            return invalid(*problems)
        try:
            bot = create_bot(holder(request), body, integ)
        except bots.RowError as exc:
            return envelope(exc.status, exc.message)
        sim.persist()
        return JSONResponse(bot_row(bot), status_code=201)

    async def find(request: Request) -> Response:
        return JSONResponse([bot_row(b) for b in bots.bots_of(holder(request), integ)])

    async def fetch(request: Request) -> Response:
        bot = sim.bot_by_id(request.path_params["bot_id"], integ.name)
        return JSONResponse(bot_row(bot) if bot else None)

    def fallback_of(row: dict[str, Any]) -> Any:
        return sim.bot_by_id(str(row.get(integ.settings_fallback) or ""), integ.name)

    async def fetch_settings(request: Request) -> Response:
        row = bots.settings_of(holder(request), integ)
        if row is None:
            return JSONResponse(bots.SETTINGS_WHEN_NONE)
        return JSONResponse(settings_json(row, fallback_of(row), integ))

    async def save_settings(request: Request) -> Response:
        body = await read_json(request) or {}
        problems = _required(body, *SETTINGS_REQUIRED.get(integ.name, tuple(bots.SETTING_COLUMNS)))
        if problems:
            return invalid(*problems)
        row = bots.save_settings(holder(request), body, integ)
        sim.persist()
        answer = settings_json(row, fallback_of(row), integ)
        del answer["fallback"]  # `settings` answers the row and fallbackId only
        return JSONResponse(answer)

    async def change_status(request: Request) -> Response:
        body = await read_json(request) or {}
        problems = _required(body, "remoteJid", "status") + _enum(body, "status", STATUSES)
        if problems:
            return invalid(*problems)
        jid, status = str(body["remoteJid"]), str(body["status"])
        touched = sim.change_status(request.path_params["instance"], jid, status, integ)
        if status == "delete":
            return JSONResponse({"bot": {"remoteJid": jid, "status": status}})
        inner: dict[str, Any] = {"remoteJid": jid, "status": status}
        if status != "closed":
            inner["session"] = touched
        return JSONResponse({"bot": {"instanceName": request.path_params["instance"], "bot": inner}})

    async def fetch_sessions(request: Request) -> Response:
        inst = holder(request)
        try:
            rows = bots.fetch_sessions(inst, sim.instances.values(), request.path_params["bot_id"], integ)
        except bots.RowError as exc:
            return envelope(exc.status, exc.message)
        return JSONResponse([session_row(inst, s) for s in rows])

    base, inst = integ.prefix, "{instance}"
    return [
        Route(f"{base}/create/{inst}", on(create), methods=["POST"]),
        Route(f"{base}/find/{inst}", on(find), methods=["GET"]),
        Route(f"{base}/fetch/{{bot_id}}/{inst}", on(fetch), methods=["GET"]),
        Route(f"{base}/settings/{inst}", on(save_settings), methods=["POST"]),
        Route(f"{base}/fetchSettings/{inst}", on(fetch_settings), methods=["GET"]),
        Route(f"{base}/changeStatus/{inst}", on(change_status), methods=["POST"]),
        Route(f"{base}/fetchSessions/{{bot_id}}/{inst}", on(fetch_sessions), methods=["GET"]),
    ]


def creds_routes(sim: EvolutionSim, guarded: Callable[..., Any]) -> list[Route]:
    """`openai/creds`: an API key stored by name (name and key unique; 400 messages as a string array)."""

    async def create_creds(request: Request) -> Response:
        if "openai" in sim.disabled_integrations:
            return envelope(400, ["Openai is disabled"])
        body = await read_json(request) or {}
        problems = _required(body, "name", "apiKey")
        if problems:
            return invalid(*problems)
        inst = sim.instances[request.path_params["instance"]]
        every = [c for i in sim.instances.values() for c in i.openai_creds]
        if any(c["apiKey"] == body["apiKey"] for c in every):
            return envelope(400, ["This API key is already registered. Please use a different API key."])
        if any(c["name"] == body["name"] for c in inst.openai_creds):
            return envelope(400, ["This credential name is already in use. Please choose a different name."])
        now = iso(time.time())
        row = {
            "id": bots.cuid(),
            "name": body["name"],
            "apiKey": body["apiKey"],
            "createdAt": now,
            "updatedAt": now,
            "instanceId": inst.id,
        }
        inst.openai_creds.append(row)
        sim.persist()
        return JSONResponse(row, status_code=201)

    async def find_creds(request: Request) -> Response:
        inst = sim.instances[request.path_params["instance"]]
        openai = bots.bots_of(inst, next(i for i in INTEGRATIONS if i.name == "openai"))
        return JSONResponse(
            [
                {
                    **c,
                    "OpenaiAssistant": [
                        bot_row(b) for b in openai if b.extra.get("openaiCredsId") == c["id"]
                    ],
                }
                for c in inst.openai_creds
            ]
        )

    return [
        Route("/openai/creds/{instance}", guarded(create_creds), methods=["POST"]),
        Route("/openai/creds/{instance}", guarded(find_creds), methods=["GET"]),
    ]


def webhook_routes(sim: EvolutionSim, guarded: Callable[..., Any]) -> list[Route]:
    def holder(request: Request) -> Any:
        return sim.instances[request.path_params["instance"]]

    async def webhook_set(request: Request) -> Response:
        body = await read_json(request) or {}
        hook = body.get("webhook")
        if not isinstance(hook, dict):
            return invalid('instance requires property "webhook"')
        problems = _required(hook, "enabled", "url", prefix="webhook")
        events = hook.get("events")
        if isinstance(events, list):
            problems += [
                f"webhook.events[{n}] is not one of enum values: {','.join(ALL_EVENTS)}"
                for n, e in enumerate(events)
                if e not in ALL_EVENTS
            ]
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
