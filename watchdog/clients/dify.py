"""Typed calls to the Dify service API (facts in shared/reference/dify-api.md and shared/upstream/README.md).

Liveness never reads `GET /v1/`: Dify 1.12.1 answers it with a 404 HTML page (a framework route shadows
the welcome handler), so it says nothing about whether Dify is up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from watchdog.clients.http import JsonClient, as_dict
from watchdog.config import Settings
from watchdog.errors import UpstreamAuthError, UpstreamProtocolError


@dataclass(frozen=True)
class DifyLiveness:
    version: str  # "" when the answer does not say (GET /v1/info has no version)
    detail: str


class DifyClient:
    def __init__(
        self, http: httpx.AsyncClient, base_url: str, api_key: str, *, health_url: str = "", timeout: float
    ) -> None:
        self._api = JsonClient(http, "dify", base_url, timeout=timeout, setting="DIFY_URL")
        self._health = (
            JsonClient(http, "dify", health_url, timeout=timeout, setting="DIFY_HEALTH_URL")
            if health_url
            else None
        )
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.has_key = bool(api_key)
        self.has_health_url = self._health is not None

    async def liveness(self) -> DifyLiveness:
        """`GET DIFY_HEALTH_URL` (the api's `/health`: `{"pid": N, "status": "ok", "version": "1.12.1"}`)
        when configured, else `GET /v1/info`, where a refused key still proves the API answers."""
        if self._health is not None:
            body = as_dict(await self._health.json("GET", ""), "dify", "health")
            if body.get("status") != "ok":
                raise UpstreamProtocolError("dify", f"health status is {body.get('status')!r}, not 'ok'")
            version = str(body.get("version") or "")
            return DifyLiveness(version, f"Dify {version}".strip())
        try:
            info = await self.app_info()
        except UpstreamAuthError as exc:
            return DifyLiveness("", refused_but_answering(exc))
        return DifyLiveness("", f"answers GET /v1/info (app {info.get('name', '?')!s})")

    async def app_info(self) -> dict[str, Any]:
        """`GET /v1/info`: app name and mode; proves the key, Dify's database and Redis in one cheap call."""
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


def refused_but_answering(exc: UpstreamAuthError) -> str:
    """Dify's own 401/403 envelope (`{"code": "unauthorized", ...}`: "Access token is invalid", or no key)
    comes from its API after a database lookup: Dify is up. Anything else refusing (a proxy) is re-raised."""
    if not exc.code:
        raise exc
    return f"answers GET /v1/info (key refused: HTTP {exc.status} {exc.code})"


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
