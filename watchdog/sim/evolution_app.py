"""HTTP surface of the Evolution emulator: upstream routes, auth and error envelopes, plus /_sim controls."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Lifespan

from watchdog.sim.evolution import EvolutionSim, Instance
from watchdog.sim.faults import fault_routes
from watchdog.sim.messages import KINDS
from watchdog.sim.webhooks import WebhookConfig

Handler = Callable[[Request], Awaitable[Response]]


def envelope(status: int, error: str, message: Any) -> JSONResponse:
    """Evolution's error envelope: `{"status", "error", "response": {"message"}}`."""
    return JSONResponse(
        {"status": status, "error": error, "response": {"message": message}}, status_code=status
    )


def create_evolution_app(sim: EvolutionSim, *, lifespan: Lifespan[Starlette] | None = None) -> Starlette:
    def guarded(handler: Handler, *, auth: bool = True, per_instance: bool = True) -> Handler:
        """Upstream order: unknown instance -> 404 (even with a bad key), then apikey -> 401."""

        async def endpoint(request: Request) -> Response:
            if "hang" in sim.faults:
                await sim.faults.hold_while("hang")
                return envelope(502, "Bad Gateway", "the process restarted while this request hung")
            slow = sim.faults.get("slow")
            if slow:
                await asyncio.sleep(float(slow["seconds"]))
            inst: Instance | None = None
            if per_instance:
                name = request.path_params["instance"]
                inst = sim.instances.get(name)
                if inst is None:
                    return envelope(404, "Not Found", [f'The "{name}" instance does not exist'])
            scope = [inst] if inst is not None else list(sim.instances.values())
            if auth and not _authorized(request.headers.get("apikey", ""), sim.api_key, scope):
                return envelope(401, "Unauthorized", "Unauthorized")
            if auth and "api_500" in sim.faults:
                message = "Cannot read properties of undefined (reading 'textMessage')"
                sim.log.evolution("ERROR", "ErrorMiddleware", {"status": 500, "message": message})
                return envelope(500, "Internal Server Error", message)
            return await handler(request)

        return endpoint

    async def root(request: Request) -> Response:
        host = request.headers.get("host", "localhost")
        body: dict[str, Any] = {
            "status": 200,
            "message": "Welcome to the Evolution API, it is working!",
            "version": sim.version,
            "clientName": "evolution_exchange",
            "manager": f"http://{host}/manager",
            "documentation": "https://doc.evolution-api.com",
        }
        if sim.whatsapp_web_version:
            body["whatsappWebVersion"] = sim.whatsapp_web_version
        return JSONResponse(body)

    async def fetch_instances(request: Request) -> Response:
        only = request.query_params.get("instanceName")
        key = request.headers.get("apikey", "")
        rows = [
            _instance_row(i)
            for i in sim.instances.values()
            if (not only or i.name == only) and (_same(key, sim.api_key) or _same(key, i.token))
        ]
        return JSONResponse(rows)

    async def connection_state(request: Request) -> Response:
        inst = sim.instances[request.path_params["instance"]]
        state: dict[str, Any] = {"instanceName": inst.name}
        if inst.loaded:
            state["state"] = inst.state
        return JSONResponse({"instance": state})

    async def restart(request: Request) -> Response:
        inst = sim.instances[request.path_params["instance"]]
        if not sim.restart(inst.name):
            # Upstream catches the error and answers HTTP 200 with the error stringified.
            return JSONResponse({"error": True, "message": "[object Object]"})
        return JSONResponse({"instance": {"instanceName": inst.name, "state": inst.state}})

    async def send_text(request: Request) -> Response:
        inst = sim.instances[request.path_params["instance"]]
        body = await _json(request)
        if body is None or not isinstance(body.get("number"), str) or not isinstance(body.get("text"), str):
            return envelope(
                400,
                "Bad Request",
                ['instance requires property "number"', 'instance requires property "text"'],
            )
        if inst.state != "open" or not inst.loaded:
            return envelope(500, "Internal Server Error", "Connection Closed")
        return JSONResponse(sim.send_text(inst.name, body["number"], body["text"]), status_code=201)

    async def dify_find(request: Request) -> Response:
        inst = sim.instances[request.path_params["instance"]]
        return JSONResponse([_bot_row(inst, b) for b in inst.bots])

    async def dify_sessions(request: Request) -> Response:
        inst = sim.instances[request.path_params["instance"]]
        bot_id = request.path_params["bot_id"]
        if not any(b.id == bot_id for b in inst.bots):
            return envelope(400, "Bad Request", "Dify not found")
        rows = [_session_row(inst, s) for s in inst.sessions.values() if s.bot_id == bot_id]
        return JSONResponse(rows)

    async def dify_fetch_settings(request: Request) -> Response:
        return JSONResponse(sim.dify_settings(request.path_params["instance"]))

    async def dify_save_settings(request: Request) -> Response:
        body = await _json(request)
        if body is None:
            return envelope(400, "Bad Request", ["instance requires a JSON body"])
        return JSONResponse(sim.save_dify_settings(request.path_params["instance"], body), status_code=201)

    async def dify_change_status(request: Request) -> Response:
        inst = sim.instances[request.path_params["instance"]]
        body = await _json(request)
        status = body.get("status") if body else None
        if (
            body is None
            or not isinstance(body.get("remoteJid"), str)
            or status not in ("opened", "paused", "closed", "delete")
        ):
            return envelope(400, "Bad Request", ['"status" must be one of opened, paused, closed, delete'])
        sim.change_status(inst.name, body["remoteJid"], str(status))
        return JSONResponse({"bot": {"remoteJid": body["remoteJid"], "status": status}}, status_code=201)

    async def webhook_set(request: Request) -> Response:
        inst = sim.instances[request.path_params["instance"]]
        body = await _json(request)
        hook = body.get("webhook") if body else None
        if not isinstance(hook, dict) or not isinstance(hook.get("url"), str):
            return envelope(400, "Bad Request", ['webhook requires property "url"'])
        config = WebhookConfig(
            url=hook["url"],
            enabled=bool(hook.get("enabled", True)),
            by_events=bool(hook.get("byEvents", False)),
            base64=bool(hook.get("base64", False)),
            headers={str(k): str(v) for k, v in (hook.get("headers") or {}).items()},
            events=[str(e).upper() for e in hook.get("events") or []],
        )
        sim.set_webhook(inst.name, config)
        return JSONResponse(_webhook_row(inst), status_code=201)

    async def webhook_find(request: Request) -> Response:
        inst = sim.instances[request.path_params["instance"]]
        return JSONResponse(_webhook_row(inst) if inst.webhook else None)

    async def sim_inbound(request: Request) -> Response:
        body = await _json(request) or {}
        name, jid, kind = body.get("instance"), body.get("remoteJid"), body.get("kind", "text")
        if name not in sim.instances or not isinstance(jid, str) or kind not in KINDS:
            return JSONResponse(
                {"error": f"need instance (one of {sorted(sim.instances)}), remoteJid, kind in {KINDS}"},
                status_code=400,
            )
        outcome = sim.receive(
            str(name),
            jid,
            kind=str(kind),
            text=str(body.get("text", "")),
            push_name=str(body.get("pushName", "")),
        )
        return JSONResponse({"outcome": outcome})

    async def sim_phone_reply(request: Request) -> Response:
        body = await _json(request) or {}
        name, jid = body.get("instance"), body.get("remoteJid")
        if name not in sim.instances or not isinstance(jid, str):
            return JSONResponse({"error": "need instance and remoteJid"}, status_code=400)
        sim.phone_reply(str(name), jid, str(body.get("text", "")))
        return JSONResponse({"outcome": "sent"})

    async def sim_state(request: Request) -> Response:
        return JSONResponse(
            {
                "faults": sim.faults.active(),
                "dify_calls": sim.dify_calls,
                "webhooks": {"delivered": sim.webhooks.delivered, "failed": sim.webhooks.failed},
                "instances": {
                    i.name: {
                        "state": i.state if i.loaded else None,
                        "loaded": i.loaded,
                        "messages": i.message_count,
                        "sessions": len(i.sessions),
                        "wedged": len(i.wedged),
                        "queued": len(i.offline),
                    }
                    for i in sim.instances.values()
                },
            }
        )

    inst = "{instance}"
    routes = [
        Route("/", guarded(root, auth=False, per_instance=False), methods=["GET"]),
        Route("/instance/fetchInstances", guarded(fetch_instances, per_instance=False), methods=["GET"]),
        Route(f"/instance/connectionState/{inst}", guarded(connection_state), methods=["GET"]),
        Route(f"/instance/restart/{inst}", guarded(restart), methods=["POST"]),
        Route(f"/message/sendText/{inst}", guarded(send_text), methods=["POST"]),
        Route(f"/dify/find/{inst}", guarded(dify_find), methods=["GET"]),
        Route(f"/dify/fetchSessions/{{bot_id}}/{inst}", guarded(dify_sessions), methods=["GET"]),
        Route(f"/dify/changeStatus/{inst}", guarded(dify_change_status), methods=["POST"]),
        Route(f"/dify/fetchSettings/{inst}", guarded(dify_fetch_settings), methods=["GET"]),
        Route(f"/dify/settings/{inst}", guarded(dify_save_settings), methods=["POST"]),
        Route(f"/webhook/set/{inst}", guarded(webhook_set), methods=["POST"]),
        Route(f"/webhook/find/{inst}", guarded(webhook_find), methods=["GET"]),
        Route("/_sim/inbound", sim_inbound, methods=["POST"]),
        Route("/_sim/phone-reply", sim_phone_reply, methods=["POST"]),
        Route("/_sim/state", sim_state, methods=["GET"]),
        *fault_routes(sim.faults, on_set=sim.apply_fault),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _same(given: str, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def _authorized(key: str, global_key: str, instances: list[Instance]) -> bool:
    """The global key opens everything; an instance token opens only its instance."""
    return _same(key, global_key) or any(_same(key, i.token) for i in instances)


async def _json(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _instance_row(inst: Instance) -> dict[str, Any]:
    return {
        "id": inst.id,
        "name": inst.name,
        "connectionStatus": inst.stored_status,
        "ownerJid": inst.owner_jid,
        "profileName": inst.profile_name,
        "profilePicUrl": None,
        "integration": "WHATSAPP-BAILEYS",
        "number": inst.owner_jid.split("@")[0],
        "businessId": None,
        "token": inst.token,
        "clientName": "evolution_exchange",
        "disconnectionReasonCode": None,
        "disconnectionObject": None,
        "disconnectionAt": None,
        "createdAt": _iso(inst.created_at),
        "updatedAt": _iso(inst.created_at),
        "Setting": {
            "rejectCall": False,
            "groupsIgnore": True,
            "alwaysOnline": False,
            "readMessages": False,
            "readStatus": False,
            "syncFullHistory": False,
        },
        "_count": {"Message": inst.message_count, "Contact": len(inst.sessions), "Chat": len(inst.sessions)},
    }


def _bot_row(inst: Instance, bot: Any) -> dict[str, Any]:
    return {
        "id": bot.id,
        "enabled": bot.enabled,
        "description": "bot",
        "botType": bot.bot_type,
        "apiUrl": bot.api_url,
        "apiKey": bot.api_key,
        "expire": bot.expire,
        "keywordFinish": bot.keyword_finish,
        "delayMessage": bot.delay_message_ms,
        "unknownMessage": "",
        "listeningFromMe": False,
        "stopBotFromMe": bot.stop_bot_from_me,
        "keepOpen": False,
        "debounceTime": bot.debounce_time,
        "ignoreJids": [],
        "splitMessages": False,
        "timePerChar": 50,
        "triggerType": bot.trigger_type,
        "triggerOperator": None,
        "triggerValue": None,
        "createdAt": _iso(inst.created_at),
        "updatedAt": _iso(inst.created_at),
        "instanceId": inst.id,
    }


def _session_row(inst: Instance, s: Any) -> dict[str, Any]:
    return {
        "id": s.id,
        "sessionId": s.session_id,
        "remoteJid": s.remote_jid,
        "pushName": s.push_name,
        "status": s.status,
        "awaitUser": s.await_user,
        "context": None,
        "type": "dify",
        "botId": s.bot_id,
        "instanceId": inst.id,
        "parameters": None,
        "createdAt": _iso(s.created_at),
        "updatedAt": _iso(s.updated_at),
    }


def _webhook_row(inst: Instance) -> dict[str, Any]:
    hook = inst.webhook
    assert hook is not None
    return {
        "id": "wh" + inst.id.replace("-", "")[:20],
        "url": hook.url,
        "headers": hook.headers,
        "enabled": hook.enabled,
        "events": hook.events,
        "webhookByEvents": hook.by_events,
        "webhookBase64": hook.base64,
        "createdAt": _iso(inst.created_at),
        "updatedAt": _iso(inst.created_at),
        "instanceId": inst.id,
    }
