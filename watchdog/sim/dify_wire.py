"""How Dify 1.12.1 writes its answers on the wire: spaced JSON bodies, compact SSE, werkzeug's HTML pages.

Sources (api/ of dify 1.12.1 unless named): `libs/external_api.py` (error envelopes), flask-restx 1.3.2
`Api.handle_error`/`_help_on_404` (the "did you mean" hint) and `representations.output_json` (spaced
`json.dumps` plus a newline), `libs/helper.compact_generate_response` (blocking answers: `json.dumps`),
`core/app/apps/base_app_generator.convert_to_event_stream` (SSE: `orjson_dumps`, `event: ping`).
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

from starlette.responses import Response

PING = "event: ping\n\n"
NOT_FOUND_TEXT = (
    "The requested URL was not found on the server. If you entered the URL manually please check your "
    "spelling and try again."
)
# werkzeug 3.1.5 NotFound.get_body, as Dify 1.12.1 answers `GET /v1/`, `GET /` and unknown paths (observed)
WERKZEUG_404 = (
    "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n"
    f"<p>{NOT_FOUND_TEXT}</p>\n"
)
PYDANTIC_DOCS = "https://errors.pydantic.dev/2.11/v/"  # api/uv.lock pins pydantic 2.11.10
# flask-restx `_help_on_404` picks difflib's 3 closest url rules (converters stripped) to the path; these
# are the picks for the paths that raise NotFound, worked out from 1.12.1's rule table.
HINTS = {
    "/v1/chat-messages": (
        "/v1/chat-messages",
        "/api/chat-messages",
        "/v1/chat-messages/<string:task_id>/stop",
    ),
    "/v1/completion-messages": (
        "/v1/completion-messages",
        "/api/completion-messages",
        "/v1/completion-messages/<string:task_id>/stop",
    ),
    "/v1/conversations": (
        "/v1/conversations",
        "/v1/conversations/<uuid:c_id>/variables/<uuid:variable_id>",
        "/api/conversations",
    ),
}


class DifyError(Exception):
    """An error answered with Dify's envelope `{"code", "message", "status"}`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def invalid(message: str) -> DifyError:
    """A `ValueError` in Dify: `handle_value_error` answers 400 `invalid_param` with `str(e)`."""
    return DifyError(400, "invalid_param", message)


def not_found(message: str, path: str) -> DifyError:
    """werkzeug `NotFound` raised in a flask-restx resource: the message gets the 404 hint appended."""
    rules = HINTS.get(path)
    if rules:
        message = f"{message.rstrip('.')}. You have requested this URI [{path}] but did you mean "
        message += " or ".join(rules) + " ?"
    return DifyError(404, "not_found", message)


def validation_error(model: str, field: str, kind: str, message: str, value: Any) -> DifyError:
    """A pydantic 2.11 `ValidationError` (a `ValueError`): 400 `invalid_param` with its multi-line text."""
    shown = repr(value)
    if len(shown) > 50:  # pydantic-core shortens long input reprs
        shown = shown[:25] + "..." + shown[-24:]
    text = (
        f"1 validation error for {model}\n{field}\n  {message} [type={kind}, input_value={shown}, "
        f"input_type={type(value).__name__}]\n    For further information visit {PYDANTIC_DOCS}{kind}"
    )
    return invalid(text)


def version_headers(version: str, *, api: bool = False) -> dict[str, str]:
    """`ext_app_metrics.after_request`: on every answer, errors and HTML pages included; `api`: an answer
    of a service-API route, which also gets the blueprint's CORS headers (ext_blueprints.py)."""
    headers = {"X-Version": version, "X-Env": "PRODUCTION"}
    if api:
        expose = "X-Env, X-Trace-Id, X-Version"
        headers = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": expose, **headers}
    return headers


def spaced(body: Any, *, newline: bool = True) -> str:
    """`json.dumps` with its default separators (and ASCII escapes); flask-restx adds a newline."""
    return json.dumps(body) + ("\n" if newline else "")


def json_response(body: Any, version: str, status: int = 200, *, api: bool = True) -> Response:
    return Response(
        spaced(body),
        status_code=status,
        media_type="application/json",
        headers=version_headers(version, api=api),
    )


def error_response(exc: DifyError, version: str) -> Response:
    response = json_response(
        {"code": exc.code, "message": exc.message, "status": exc.status}, version, exc.status
    )
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def sse(payload: dict[str, Any]) -> str:
    """One data event: compact orjson (UTF-8 as is, no ASCII escapes), no `event:` or `id:` line."""
    return "data: " + json.dumps(payload, separators=(",", ":"), ensure_ascii=False) + "\n\n"


def html_not_found(version: str, *, api: bool = False) -> Response:
    """werkzeug's 404 page: what a path with no rule gets (flask-restx does not catch all 404s); `/v1/`
    gets it from a route of the service-API blueprint (so with its CORS headers), as observed."""
    return Response(WERKZEUG_404, 404, media_type="text/html", headers=version_headers(version, api=api))


def html_redirect(location: str, version: str) -> Response:
    """werkzeug's `RequestRedirect` (strict slashes): 308 to the absolute URL with the slash."""
    safe = escape(location)
    body = (
        "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n"
        "<p>You should be redirected automatically to the target URL: "
        f'<a href="{safe}">{safe}</a>. If not, click the link.\n'
    )
    headers = {**version_headers(version), "Location": location}
    return Response(body, 308, media_type="text/html", headers=headers)


def method_not_allowed(version: str) -> Response:
    """A known path with the wrong method: flask-restx owns the route, so the JSON envelope."""
    message = "The method is not allowed for the requested URL."
    body = {"code": "method_not_allowed", "message": message, "status": 405}
    return json_response(body, version, 405, api=False)
