"""Typed calls to the Evolution API endpoints the watchdog reads (facts in shared/reference/evolution-api.md).

Besides reads: session reset (changeStatus), instance restart and sendText. It never calls logout or
delete (they destroy sessions and the message processor).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from watchdog.clients.chatbots import ChatbotClient
from watchdog.clients.http import JsonClient, as_dict
from watchdog.config import Settings
from watchdog.errors import UpstreamProtocolError


@dataclass(frozen=True)
class EvolutionInfo:
    version: str
    whatsapp_web_version: str  # "" before 2.3.0
    client_name: str


@dataclass(frozen=True)
class InstanceRow:
    name: str
    stored_status: str  # connectionStatus as persisted: may say open while the live state differs
    integration: str
    owner_jid: str = ""  # the paired WhatsApp account (instance.wuid); empty before the first pairing


@dataclass(frozen=True)
class DifyBot:
    id: str
    enabled: bool
    bot_type: str
    api_url: str
    api_key: str  # secret: compared, never shown
    # None = not set on the bot: Evolution falls back to the instance's Dify settings.
    expire: int | None = None
    keyword_finish: str | None = None
    stop_bot_from_me: bool | None = None


@dataclass(frozen=True)
class DifySettings:
    """`dify/fetchSettings`: the instance-wide defaults a bot's unset options fall back to."""

    expire: int | None
    keyword_finish: str | None
    stop_bot_from_me: bool | None


@dataclass(frozen=True)
class BotSession:
    id: str
    remote_jid: str
    session_id: str  # = remoteJid until Dify returns a conversation_id
    status: str  # opened | paused | closed
    await_user: bool
    updated_at: str  # ISO 8601 as stored by Prisma

    @property
    def conversation_id(self) -> str | None:
        return None if self.session_id == self.remote_jid else self.session_id


@dataclass(frozen=True)
class InstanceWebhook:
    url: str  # may carry ?token=...: never shown whole
    enabled: bool
    by_events: bool
    events: tuple[str, ...]
    # secret (may carry tokens): kept only to write the webhook back unchanged, never shown
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    base64: bool = False


class EvolutionClient:
    def __init__(self, http: httpx.AsyncClient, base_url: str, api_key: str, *, timeout: float) -> None:
        self._api = JsonClient(http, "evolution", base_url, timeout=timeout, setting="EVOLUTION_URL")
        self._headers = {"apikey": api_key} if api_key else {}
        self.chatbots = ChatbotClient(self._api, self._headers)  # every bot integration's routes

    async def info(self, *, timeout: float | None = None) -> EvolutionInfo:
        """`GET /`: the version. Since 2.3.1 it also fetches web.whatsapp.com/sw.js with no timeout
        (index.router.ts `get('/')` -> fetchLatestWaWebVersion), so it may be slow while Evolution is fine:
        never a liveness signal (fetchInstances is)."""
        body = as_dict(await self._api.json("GET", "/", timeout=timeout), "evolution", "GET /")
        if "version" not in body:
            raise UpstreamProtocolError("evolution", "GET / has no version: is this Evolution API?")
        return EvolutionInfo(
            version=str(body["version"]),
            whatsapp_web_version=str(body.get("whatsappWebVersion") or ""),
            client_name=str(body.get("clientName") or ""),
        )

    async def instances(self) -> list[InstanceRow]:
        rows = await self._api.json("GET", "/instance/fetchInstances", headers=self._headers)
        if not isinstance(rows, list):
            raise UpstreamProtocolError("evolution", "fetchInstances did not return a list")
        return [
            InstanceRow(
                name=str(row["name"]),
                stored_status=str(row.get("connectionStatus") or ""),
                integration=str(row.get("integration") or ""),
                owner_jid=str(row.get("ownerJid") or ""),
            )
            for row in rows
            if isinstance(row, dict) and row.get("name")
        ]

    async def connection_state(self, instance: str) -> str | None:
        """Live state (open|connecting|close), or None when Evolution has the instance in its DB only."""
        body = as_dict(
            await self._api.json("GET", f"/instance/connectionState/{_seg(instance)}", headers=self._headers),
            "evolution",
            "connectionState",
        )
        inner = body.get("instance")
        if not isinstance(inner, dict):
            raise UpstreamProtocolError("evolution", "connectionState has no instance object")
        state = inner.get("state")
        return str(state) if state is not None else None

    async def restart(self, instance: str) -> dict[str, Any]:
        """`POST /instance/restart/{i}`. Check the body: failure comes as HTTP 200 `{"error": true}`."""
        body = await self._api.json("POST", f"/instance/restart/{_seg(instance)}", headers=self._headers)
        return body if isinstance(body, dict) else {}

    async def change_dify_status(self, instance: str, remote_jid: str, status: str) -> None:
        """`POST /dify/changeStatus/{i}`; status opened | paused | closed | delete."""
        await self._api.json(
            "POST",
            f"/dify/changeStatus/{_seg(instance)}",
            headers=self._headers,
            json_body={"remoteJid": remote_jid, "status": status},
        )

    async def send_text(self, instance: str, remote_jid: str, text: str) -> None:
        number = remote_jid.split("@", 1)[0] if remote_jid.endswith("@s.whatsapp.net") else remote_jid
        await self._api.json(
            "POST",
            f"/message/sendText/{_seg(instance)}",
            headers=self._headers,
            json_body={"number": number, "text": text},
        )

    async def webhook(self, instance: str) -> InstanceWebhook | None:
        """The instance's own webhook (`webhook/find`), or None when it has none."""
        body = await self._api.json("GET", f"/webhook/find/{_seg(instance)}", headers=self._headers)
        if not isinstance(body, dict) or not body.get("url"):
            return None
        return InstanceWebhook(
            url=str(body["url"]),
            enabled=bool(body.get("enabled", False)),
            by_events=bool(body.get("webhookByEvents", False)),
            events=tuple(str(e).upper() for e in body.get("events") or ()),
            headers={str(k): str(v) for k, v in (body.get("headers") or {}).items()},
            base64=bool(body.get("webhookBase64", False)),
        )

    async def set_webhook(self, instance: str, hook: InstanceWebhook) -> None:
        """`POST /webhook/set/{i}` with the whole config: fields left out would be reset upstream."""
        await self._api.json(
            "POST",
            f"/webhook/set/{_seg(instance)}",
            headers=self._headers,
            json_body={
                "webhook": {
                    "enabled": hook.enabled,
                    "url": hook.url,
                    "headers": dict(hook.headers),
                    "byEvents": hook.by_events,
                    "base64": hook.base64,
                    "events": list(hook.events),
                }
            },
        )

    async def dify_settings(self, instance: str) -> DifySettings:
        body = as_dict(
            await self._api.json("GET", f"/dify/fetchSettings/{_seg(instance)}", headers=self._headers),
            "evolution",
            "dify/fetchSettings",
        )
        return DifySettings(
            expire=_int_or_none(body.get("expire")),
            keyword_finish=_str_or_none(body.get("keywordFinish")),
            stop_bot_from_me=_bool_or_none(body.get("stopBotFromMe")),
        )

    async def dify_bots(self, instance: str) -> list[DifyBot]:
        rows = await self._api.json("GET", f"/dify/find/{_seg(instance)}", headers=self._headers)
        if rows is None:
            return []
        if not isinstance(rows, list):
            raise UpstreamProtocolError("evolution", "dify/find did not return a list")
        return [
            DifyBot(
                id=str(r["id"]),
                enabled=bool(r.get("enabled", True)),
                bot_type=str(r.get("botType") or ""),
                api_url=str(r.get("apiUrl") or ""),
                api_key=str(r.get("apiKey") or ""),
                expire=_int_or_none(r.get("expire")),
                keyword_finish=_str_or_none(r.get("keywordFinish")),
                stop_bot_from_me=_bool_or_none(r.get("stopBotFromMe")),
            )
            for r in rows
            if isinstance(r, dict) and r.get("id")
        ]

    async def dify_sessions(self, instance: str, bot_id: str) -> list[BotSession]:
        rows = await self._api.json(
            "GET", f"/dify/fetchSessions/{_seg(bot_id)}/{_seg(instance)}", headers=self._headers
        )
        if not isinstance(rows, list):
            raise UpstreamProtocolError("evolution", "dify/fetchSessions did not return a list")
        return [_session(r) for r in rows if isinstance(r, dict) and r.get("remoteJid")]


def evolution_client_for(http: httpx.AsyncClient, settings: Settings) -> EvolutionClient:
    return EvolutionClient(
        http, settings.evolution_url, settings.evolution_api_key, timeout=settings.probe_timeout_seconds
    )


def _session(row: dict[str, Any]) -> BotSession:
    return BotSession(
        id=str(row.get("id") or ""),
        remote_jid=str(row["remoteJid"]),
        session_id=str(row.get("sessionId") or row["remoteJid"]),
        status=str(row.get("status") or ""),
        await_user=bool(row.get("awaitUser")),
        updated_at=str(row.get("updatedAt") or ""),
    )


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _str_or_none(value: Any) -> str | None:
    return str(value) if isinstance(value, str) else None


def _bool_or_none(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _seg(value: str) -> str:
    return quote(value, safe="")
