"""What the Evolution emulator answers with: upstream's error envelopes and its database rows as JSON.

Envelopes from src/main.ts (the error middleware and the not-found handler) and src/exceptions/: a 401
carries its message as a string, 400/403/404 as an array (a schema failure as an array inside the
array: `BadRequestException(messages)` spreads its arguments), a plain `Error` becomes 500 with a string.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from watchdog.integrations import BY_NAME, DIFY, Integration
from watchdog.sim.bots import BOT_COLUMNS, Bot, Session

if TYPE_CHECKING:
    from watchdog.sim.evolution import Instance

# A new instance's Setting row (its defaults in instance.controller.ts createInstance)
NEW_SETTINGS = {
    "rejectCall": False,
    "msgCall": "",
    "groupsIgnore": False,
    "alwaysOnline": False,
    "readMessages": False,
    "readStatus": False,
    "syncFullHistory": False,
    "wavoipToken": "",
}

ERRORS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    500: "Internal Server Error",
    502: "Bad Gateway",  # not Evolution's: what a client sees when the process dies under a hung request
}


def envelope(status: int, message: Any) -> JSONResponse:
    """Evolution's error envelope: `{"status", "error", "response": {"message"}}`."""
    body = {"status": status, "error": ERRORS[status], "response": {"message": message}}
    return JSONResponse(body, status_code=status)


def invalid(*messages: str) -> JSONResponse:
    """A JSON-schema failure (abstract.router.ts `dataValidate`): 400 with the messages nested once more."""
    return envelope(400, [list(messages)])


async def read_json(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def instance_row(inst: Instance) -> dict[str, Any]:
    return {
        "id": inst.id,
        "name": inst.name,
        "connectionStatus": inst.stored_status,
        "ownerJid": inst.owner_jid,
        "profileName": inst.profile_name,
        "profilePicUrl": None,
        "integration": "WHATSAPP-BAILEYS",
        "number": None,
        "businessId": None,
        "token": inst.token,
        "clientName": "evolution_exchange",
        "disconnectionReasonCode": None,
        "disconnectionObject": None,
        "disconnectionAt": None,
        "createdAt": iso(inst.created_at),
        "updatedAt": iso(inst.created_at),
        "Chatwoot": None,
        "Proxy": None,
        "Rabbitmq": None,
        "Nats": None,
        "Sqs": None,
        "Websocket": None,
        "Setting": {**NEW_SETTINGS, "instanceId": inst.id},
        "_count": {"Message": inst.message_count, "Contact": len(inst.sessions), "Chat": len(inst.sessions)},
    }


def bot_row(bot: Bot) -> dict[str, Any]:
    """A bot row of its integration's table: Dify's columns are Bot attributes, another's are in `extra`."""
    row: dict[str, Any] = {"id": bot.id}
    row.update({column: getattr(bot, attribute) for column, attribute in BOT_COLUMNS.items()})
    if bot.integration != DIFY.name:
        for column in ("botType", "apiUrl", "apiKey"):
            del row[column]
        row.update({column: bot.extra.get(column) for column in BY_NAME[bot.integration].bot_columns})
    row.update(createdAt=iso(bot.created_at), updatedAt=iso(bot.created_at), instanceId=bot.instance_id)
    return row


def session_row(inst: Instance, s: Session) -> dict[str, Any]:
    return {
        "id": s.id,
        "sessionId": s.session_id,
        "remoteJid": s.remote_jid,
        "pushName": s.push_name,
        "status": s.status,
        "awaitUser": s.await_user,
        "context": s.context,
        "type": s.type,
        "createdAt": iso(s.created_at),
        "updatedAt": iso(s.updated_at),
        "instanceId": inst.id,
        "parameters": None,
        "botId": s.bot_id,
    }


def settings_json(row: dict[str, Any], fallback: Bot | None, integ: Integration = DIFY) -> dict[str, Any]:
    """A settings row as `fetchSettings` and `settings` answer it (fallbackId mirrors the integration's
    fallback column, difyIdFallback for Dify)."""
    out = {k: v for k, v in row.items() if k not in ("createdAt", "updatedAt")}
    out.update(
        createdAt=iso(row["createdAt"]),
        updatedAt=iso(row["updatedAt"]),
        fallbackId=row.get(integ.settings_fallback),
    )
    out["fallback"] = bot_row(fallback) if fallback else None
    return out


def webhook_row(inst: Instance) -> dict[str, Any]:
    hook = inst.webhook
    assert hook is not None
    return {
        "id": "wh" + inst.id.replace("-", "")[:20],
        "url": hook.url,
        "headers": hook.headers or None,
        "enabled": hook.enabled,
        "events": hook.events or [],
        "webhookByEvents": hook.by_events,
        "webhookBase64": hook.base64,
        "createdAt": iso(inst.created_at),
        "updatedAt": iso(inst.created_at),
        "instanceId": inst.id,
    }
