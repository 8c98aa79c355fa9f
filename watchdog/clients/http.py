"""The single boundary where httpx exceptions and error answers become watchdog errors (see errors.py).

Every message made here is one bounded line (errortext.one_line): an HTML error page is summarised,
never pasted. A 404 page (Dify 1.12.1 answers `GET /v1/` with werkzeug's), Express's "Cannot GET /path",
a redirect or a web page where JSON was due all say the URL setting is not the API: a configuration,
which no restart fixes (UpstreamMisconfigured).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from watchdog.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamMisconfigured,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from watchdog.errortext import exception_text, one_line, without_route_hint


class JsonClient:
    """JSON over an injected httpx.AsyncClient, with a per-call deadline and typed failures."""

    def __init__(
        self, http: httpx.AsyncClient, target: str, base_url: str, *, timeout: float, setting: str = ""
    ) -> None:
        self.http = http
        self.target = target
        self.setting = setting  # the variable holding base_url, named when it looks wrong
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
            limit = self.timeout if timeout is None else timeout
            raise UpstreamTimeout(self.target, f"{method} {path} timed out after {limit:g}s") from None
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise UpstreamUnreachable(self.target, f"{method} {path}: {_reason(exc)}") from None
        except httpx.HTTPError as exc:
            raise UpstreamUnreachable(self.target, f"{method} {path}: {_reason(exc)}") from None
        if response.status_code >= 400:
            what = f"{method} {urlsplit(self.base_url + path).path or '/'}"
            raise http_error(self.target, response, what, setting=self.setting)
        return response

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.request(method, path, **kwargs)
        try:
            return json.loads(response.content)  # bytes straight in: no text decoding pass first
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise self._not_json(response, method, path) from None

    def _not_json(self, response: httpx.Response, method: str, path: str) -> UpstreamError:
        """A redirect or a web page where JSON was due: the URL setting is not the API (Dify answers
        `GET /v1` with 308 to `/v1/`, its web UI with HTML). Anything else not JSON is a broken answer."""
        what = f"{method} {urlsplit(self.base_url + path).path or '/'}"
        where = f"; check {self.setting}" if self.setting else ""
        if response.is_redirect:
            location = response.headers.get("location", "?")
            return UpstreamMisconfigured(
                self.target, response.status_code, f"{what} redirects to {location}{where}"
            )
        if "html" in response.headers.get("content-type", ""):
            page = one_line(response.content)
            return UpstreamMisconfigured(
                self.target, response.status_code, f"{what} answers a web page, not the API{where}: {page}"
            )
        return UpstreamProtocolError(self.target, f"{what}: answer is not JSON")


def as_dict(body: Any, target: str, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise UpstreamProtocolError(target, f"{what} did not return an object")
    return body


# Express's answer to a route it does not have (Evolution 2.3.6, observed: 404 with
# `{"response": {"message": ["Cannot GET /path"]}}`); an unknown *instance* says "... does not exist".
_UNKNOWN_ROUTE = re.compile(r"Cannot (GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) /")


def http_error(target: str, response: httpx.Response, what: str, *, setting: str = "") -> UpstreamHTTPError:
    """The error an answer with status >= 400 stands for; its body must have been read."""
    status = response.status_code
    message, code, is_json = _envelope(response)
    if status in (401, 403):
        return UpstreamAuthError(target, status, message, code=code)
    if status == 404 and (not is_json or _UNKNOWN_ROUTE.match(message)):
        where = f"; check {setting}" if setting else ""
        return UpstreamMisconfigured(target, status, f"{what} is not an API endpoint{where}: {message}")
    return UpstreamHTTPError(target, status, message, code=code)


def _envelope(response: httpx.Response) -> tuple[str, str, bool]:
    """(message, code, is JSON) of an error answer: Evolution's `response.message` (a string for 401, a
    list otherwise), Dify's spaced `{"code": ..., "message": ..., "status": ...}`, else the body summed up."""
    try:
        body = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return one_line(response.content) or response.reason_phrase, "", False
    message: Any = body
    code = ""
    if isinstance(body, dict):
        code = str(body.get("code") or "")
        inner = body.get("response")
        if isinstance(inner, dict) and "message" in inner:
            message = inner["message"]
        elif "message" in body:
            message = body["message"]
    if isinstance(message, list):
        message = "; ".join(str(m) for m in message)
    return one_line(without_route_hint(str(message))) or response.reason_phrase, code, True


def _reason(exc: Exception) -> str:
    return exception_text(exc)
