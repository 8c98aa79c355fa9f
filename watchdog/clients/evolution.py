"""Typed calls to the Evolution API endpoints the watchdog reads (facts in shared/reference/evolution-api.md).

Besides reads: instance restart, sendText and the webhook config; every bot integration's routes (the
session reset through changeStatus among them) are `chatbots` (clients/chatbots.py). It never calls logout
or delete (they destroy sessions and the message processor).
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


def evolution_client_for(http: httpx.AsyncClient, settings: Settings) -> EvolutionClient:
    return EvolutionClient(
        http, settings.evolution_url, settings.evolution_api_key, timeout=settings.probe_timeout_seconds
    )


def _seg(value: str) -> str:
    return quote(value, safe="")
