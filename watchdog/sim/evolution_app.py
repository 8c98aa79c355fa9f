"""HTTP surface of the Evolution emulator: upstream's instance routes, guards, envelopes; /_sim controls.

Guards in upstream's order (src/api/routes/index.router.ts:41, guards/): the instance must exist in memory
or in the database (404, even with a bad key), `instance/create` refuses a name in use (403, before the
key), then the key: the global one, or the instance's own token (401 otherwise). Routes that do not
exist answer 404 `Cannot <METHOD> <url>` (src/main.ts), a known path with another method too.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Lifespan

from watchdog.sim.evolution import EvolutionSim, Instance
from watchdog.sim.evolution_bot_routes import bot_routes
from watchdog.sim.evolution_rows import NEW_SETTINGS, envelope, instance_row, invalid
from watchdog.sim.evolution_rows import read_json as _json
from watchdog.sim.faults import fault_routes
from watchdog.sim.messages import KINDS

Handler = Callable[[Request], Awaitable[Response]]
Guard = Callable[..., Handler]
CONNECT_WAIT_SECONDS = 2.0  # instance.controller.ts:315 `await delay(2000)` before answering the QR
CREATE_QR_WAIT_SECONDS = 5.0  # instance.controller.ts:147, with qrcode:true


def create_evolution_app(sim: EvolutionSim, *, lifespan: Lifespan[Starlette] | None = None) -> Starlette:
    def guarded(
        handler: Handler, *, auth: bool = True, per_instance: bool = True, create: bool = False
    ) -> Handler:
        async def endpoint(request: Request) -> Response:
            if "hang" in sim.faults:
                await sim.faults.hold_while("hang")
                return envelope(502, "the process restarted while this request hung")
            slow = sim.faults.get("slow")
            if slow:
                await asyncio.sleep(float(slow["seconds"]))
            inst: Instance | None = None
            if per_instance:
                name = request.path_params["instance"]
                inst = sim.instances.get(name)
                if inst is None:
                    return envelope(404, [f'The "{name}" instance does not exist'])
            if create:
                given = ((await _json(request)) or {}).get("instanceName")
                # instance.guard.ts:46: an undefined name matches every row (`findMany({name: undefined})`)
                if given in sim.instances or (given is None and sim.instances):
                    name = "undefined" if given is None else str(given)
                    return envelope(403, [f'This name "{name}" is already in use.'])
            key = request.headers.get("apikey", "")
            if auth and not _same(key, sim.api_key):
                tokens = [inst] if inst is not None else [] if create else list(sim.instances.values())
                if not any(_same(key, i.token) for i in tokens):
                    return envelope(401, "Unauthorized")
            if auth and "api_500" in sim.faults:
                message = "Cannot read properties of undefined (reading 'textMessage')"
                sim.log.evolution("ERROR", "ErrorMiddleware", {"status": 500, "message": message})
                return envelope(500, message)
            return await handler(request)

        return endpoint

    def instance_of(request: Request) -> Instance:
        return sim.instances[request.path_params["instance"]]

    async def root(request: Request) -> Response:
        slow_root = sim.faults.get("slow_root")
        if slow_root:
            await asyncio.sleep(float(slow_root["seconds"]))
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
        rows = [i for i in sim.instances.values() if not only or i.name == only]
        if not _same(key, sim.api_key):
            rows = [i for i in rows if _same(key, i.token)]
            if not rows:
                return envelope(401, "Unauthorized")
        if only and not any(i.loaded for i in rows):
            return envelope(404, [f'Instance "{only}" not found'])
        return JSONResponse([instance_row(i) for i in rows])

    async def create(request: Request) -> Response:
        body = await _json(request) or {}
        name = body.get("instanceName")
        if not isinstance(name, str) or not name:
            return invalid('instance requires property "instanceName"')
        if body.get("integration", "WHATSAPP-BAILEYS") != "WHATSAPP-BAILEYS":
            return envelope(400, ["Invalid integration"])
        token = body.get("token") if isinstance(body.get("token"), str) else None
        inst = sim.create_instance(name, token=token)
        answer: dict[str, Any] = {}
        if body.get("qrcode") is True:
            sim.connect(name)
            await asyncio.sleep(CREATE_QR_WAIT_SECONDS * sim.time_scale)
            answer["qrcode"] = {"count": 0}
        given = body.get("webhook")
        hook: dict[str, Any] = given if isinstance(given, dict) else {}
        webhook = {
            "webhookUrl": hook.get("url"),
            "webhookHeaders": hook.get("headers"),
            "webhookByEvents": hook.get("byEvents"),
            "webhookBase64": hook.get("base64"),
        }
        result = {
            "instance": {
                "instanceName": name,
                "instanceId": inst.id,
                "integration": "WHATSAPP-BAILEYS",
                "webhookWaBusiness": None,
                "accessTokenWaBusiness": "",
                "status": inst.state,
            },
            "hash": inst.token,
            "webhook": {k: v for k, v in webhook.items() if v is not None},
            "websocket": {},
            "rabbitmq": {},
            "nats": {},
            "sqs": {},
            "settings": NEW_SETTINGS,
            **answer,
        }
        return JSONResponse(result, status_code=201)

    async def connection_state(request: Request) -> Response:
        inst = instance_of(request)
        state: dict[str, Any] = {"instanceName": inst.name}
        if inst.loaded:
            state["state"] = inst.state
        return JSONResponse({"instance": state})

    async def connect(request: Request) -> Response:
        inst = instance_of(request)
        if not inst.loaded:
            return JSONResponse(_ERROR_BODY)  # caught and answered with HTTP 200
        if inst.state == "open":
            return JSONResponse({"instance": {"instanceName": inst.name, "state": "open"}})
        if inst.state == "close":
            sim.connect(inst.name)
            await asyncio.sleep(CONNECT_WAIT_SECONDS * sim.time_scale)
        return JSONResponse({"count": 0})  # qrCode: no QR ever arrives without WhatsApp

    async def restart(request: Request) -> Response:
        inst = instance_of(request)
        state = inst.state
        if not sim.restart(inst.name):
            return JSONResponse(_ERROR_BODY)  # the error, caught, stringified, with HTTP 200
        if state == "open":  # connectToWhatsapp sees the old socket still open: the restart race
            return JSONResponse({"instance": {"instanceName": inst.name, "state": "open"}})
        return JSONResponse({"count": 0})

    async def logout(request: Request) -> Response:
        inst = instance_of(request)
        if inst.loaded and inst.state == "close":
            return envelope(400, [f'The "{inst.name}" instance is not connected'])
        if inst.loaded:
            sim.logout(inst.name)
        return JSONResponse(
            {"status": "SUCCESS", "error": False, "response": {"message": "Instance logged out"}}
        )

    async def delete(request: Request) -> Response:
        sim.delete(instance_of(request).name)
        return JSONResponse(
            {"status": "SUCCESS", "error": False, "response": {"message": "Instance deleted"}}
        )

    async def send_text(request: Request) -> Response:
        inst = instance_of(request)
        body = await _json(request)
        if body is None or not isinstance(body.get("number"), str) or not isinstance(body.get("text"), str):
            return invalid('instance requires property "number"', 'instance requires property "text"')
        if not inst.loaded:
            return envelope(500, "Cannot read properties of undefined (reading 'textMessage')")
        if inst.state != "open":
            return envelope(500, "Connection Closed")
        return JSONResponse(sim.send_text(inst.name, body["number"], body["text"]), status_code=201)

    async def not_found(request: Request, exc: Exception) -> Response:
        url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if isinstance(exc, HTTPException) and exc.status_code not in (404, 405):
            return JSONResponse({"error": exc.detail}, status_code=exc.status_code)
        return envelope(404, [f"Cannot {request.method.upper()} {url}"])

    inst = "{instance}"
    routes = [
        Route("/", guarded(root, auth=False, per_instance=False), methods=["GET"]),
        Route("/instance/fetchInstances", guarded(fetch_instances, per_instance=False), methods=["GET"]),
        Route("/instance/create", guarded(create, per_instance=False, create=True), methods=["POST"]),
        Route(f"/instance/connectionState/{inst}", guarded(connection_state), methods=["GET"]),
        Route(f"/instance/connect/{inst}", guarded(connect), methods=["GET"]),
        Route(f"/instance/restart/{inst}", guarded(restart), methods=["POST"]),
        Route(f"/instance/logout/{inst}", guarded(logout), methods=["DELETE"]),
        Route(f"/instance/delete/{inst}", guarded(delete), methods=["DELETE"]),
        Route(f"/message/sendText/{inst}", guarded(send_text), methods=["POST"]),
        *bot_routes(sim, guarded),
        *sim_routes(sim),
        *fault_routes(sim.faults, on_set=sim.apply_fault),
    ]
    handlers = {404: not_found, 405: not_found}
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)


def sim_routes(sim: EvolutionSim) -> list[Route]:
    """`/_sim/*`: a customer writes, the owner replies from the phone, the simulated customers go quiet or
    write again, the emulator's state."""

    async def inbound(request: Request) -> Response:
        """A contact writes to an instance, named, or found by its number (another emulator's instance
        writing to one of ours, sim/network.py: 404 when none has it)."""
        body = await _json(request) or {}
        name, jid, kind = body.get("instance"), body.get("remoteJid"), body.get("kind", "text")
        if name is None and isinstance(body.get("number"), str):
            owner = sim.network.owner(body["number"])
            if owner is None:
                return JSONResponse({"error": "no instance here has that number"}, status_code=404)
            name = owner.name
        if name not in sim.instances or not isinstance(jid, str) or kind not in KINDS:
            return JSONResponse(
                {"error": f"need instance (one of {sorted(sim.instances)}), remoteJid, kind in {KINDS}"},
                status_code=400,
            )
        text, push_name = str(body.get("text", "")), str(body.get("pushName", ""))
        outcome = sim.receive(str(name), jid, kind=str(kind), text=text, push_name=push_name)
        return JSONResponse({"outcome": outcome})

    async def phone_reply(request: Request) -> Response:
        body = await _json(request) or {}
        name, jid = body.get("instance"), body.get("remoteJid")
        if name not in sim.instances or not isinstance(jid, str):
            return JSONResponse({"error": "need instance and remoteJid"}, status_code=400)
        return JSONResponse({"outcome": sim.phone_reply(str(name), jid, str(body.get("text", "")))})

    async def customers(request: Request) -> Response:
        """`{"writing": false}`: the simulated customers stop writing (a quiet night); not an upstream
        behaviour, the emulator's own input. A restarted emulator's customers write again."""
        body = await _json(request) or {}
        if not isinstance(body.get("writing"), bool):
            return JSONResponse({"error": "need writing: true or false"}, status_code=400)
        sim.customers_writing = body["writing"]
        return JSONResponse({"writing": sim.customers_writing})

    async def state(request: Request) -> Response:
        instances = {
            i.name: {
                "state": i.state if i.loaded else None,
                "loaded": i.loaded,
                "messages": i.message_count,
                "sessions": len(i.sessions),
                "wedged": len(i.wedged),
                "queued": len(i.offline),
            }
            for i in sim.instances.values()
        }
        webhooks = {"delivered": sim.webhooks.delivered, "failed": sim.webhooks.failed}
        return JSONResponse(
            {
                "faults": sim.faults.active(),
                "customers_writing": sim.customers_writing,
                "dify_calls": sim.dify_calls,
                "webhooks": webhooks,
                "instances": instances,
            }
        )

    return [
        Route("/_sim/inbound", inbound, methods=["POST"]),
        Route("/_sim/phone-reply", phone_reply, methods=["POST"]),
        Route("/_sim/customers", customers, methods=["POST"]),
        Route("/_sim/state", state, methods=["GET"]),
    ]


_ERROR_BODY = {"error": True, "message": "[object Object]"}


def _same(given: str, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())
