"""The single boundary where httpx exceptions become watchdog errors (see errors.py)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from watchdog.errors import (
    UpstreamAuthError,
    UpstreamHTTPError,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamUnreachable,
)

_MAX_DETAIL = 200


class JsonClient:
    """JSON over an injected httpx.AsyncClient, with a per-call deadline and typed failures."""

    def __init__(self, http: httpx.AsyncClient, target: str, base_url: str, *, timeout: float) -> None:
        self.http = http
        self.target = target
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._timeout = httpx.Timeout(timeout)

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> httpx.Response:
        # Only what the call needs: empty params/headers still cost a URL rebuild and a header merge,
        # and this runs thousands of times per probe cycle.
        try:
            response = await self.http.request(
                method,
                self.base_url + path,
                headers=headers or None,
                json=json_body,
                params=params or None,
                timeout=self._timeout if timeout is None else timeout,
            )
        except httpx.TimeoutException:
            raise UpstreamTimeout(self.target, f"{method} {path} timed out") from None
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise UpstreamUnreachable(self.target, f"{method} {path}: {_reason(exc)}") from None
        except httpx.HTTPError as exc:
            raise UpstreamUnreachable(self.target, f"{method} {path}: {_reason(exc)}") from None
        if response.status_code in (401, 403):
            raise UpstreamAuthError(self.target, response.status_code, error_message(response))
        if response.status_code >= 400:
            raise UpstreamHTTPError(self.target, response.status_code, error_message(response))
        return response

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.request(method, path, **kwargs)
        try:
            return json.loads(response.content)  # bytes straight in: no text decoding pass first
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UpstreamProtocolError(self.target, f"{method} {path}: answer is not JSON") from None


def as_dict(body: Any, target: str, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise UpstreamProtocolError(target, f"{what} did not return an object")
    return body


def error_message(response: httpx.Response) -> str:
    """The human part of an upstream error envelope (Evolution `response.message`, Dify `message`)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return response.text[:_MAX_DETAIL] or response.reason_phrase
    message: Any = body
    if isinstance(body, dict):
        inner = body.get("response")
        if isinstance(inner, dict) and "message" in inner:
            message = inner["message"]
        elif "message" in body:
            message = body["message"]
    if isinstance(message, list):
        message = "; ".join(str(m) for m in message)
    return str(message)[:_MAX_DETAIL]


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text[:_MAX_DETAIL]
