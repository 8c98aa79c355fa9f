"""Typed calls to the Dify service API (facts in shared/reference/dify-api.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from watchdog.clients.http import JsonClient, as_dict
from watchdog.config import Settings
from watchdog.errors import UpstreamProtocolError


@dataclass(frozen=True)
class DifyLiveness:
    version: str


class DifyClient:
    def __init__(
        self, http: httpx.AsyncClient, base_url: str, api_key: str, *, health_url: str = "", timeout: float
    ) -> None:
        self._api = JsonClient(http, "dify", base_url, timeout=timeout)
        self._health = JsonClient(http, "dify", health_url, timeout=timeout) if health_url else None
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.has_key = bool(api_key)

    async def liveness(self) -> DifyLiveness:
        """`GET /health` on the api container when configured, else the keyless `GET /v1/`."""
        if self._health is not None:
            body = as_dict(await self._health.json("GET", ""), "dify", "health")
            if body.get("status") != "ok":
                raise UpstreamProtocolError("dify", f"health status is {body.get('status')!r}, not 'ok'")
            return DifyLiveness(version=str(body.get("version") or ""))
        body = as_dict(await self._api.json("GET", "/"), "dify", "GET /v1/")
        if "welcome" not in body:
            raise UpstreamProtocolError("dify", "GET /v1/ is not Dify's welcome document")
        return DifyLiveness(version=str(body.get("server_version") or ""))

    async def app_info(self) -> dict[str, Any]:
        """`GET /v1/info`: proves the key, Dify's database and Redis in one cheap call."""
        return as_dict(await self._api.json("GET", "/info", headers=self._headers), "dify", "info")

    async def conversation_ids(self, user: str, *, limit: int = 100) -> set[str]:
        """Ids of the conversations Dify still knows for one end user (Evolution uses the remoteJid)."""
        body = as_dict(
            await self._api.json(
                "GET", "/conversations", headers=self._headers, params={"user": user, "limit": str(limit)}
            ),
            "dify",
            "conversations",
        )
        data = body.get("data")
        if not isinstance(data, list):
            raise UpstreamProtocolError("dify", "conversations has no data list")
        return {str(c["id"]) for c in data if isinstance(c, dict) and "id" in c}


def dify_client_for(http: httpx.AsyncClient, settings: Settings) -> DifyClient | None:
    """The Dify client the settings describe, or None when DIFY_URL is empty."""
    if not settings.dify_url:
        return None
    return DifyClient(
        http,
        settings.dify_url,
        settings.dify_api_key,
        health_url=settings.dify_health_url,
        timeout=settings.probe_timeout_seconds,
    )
