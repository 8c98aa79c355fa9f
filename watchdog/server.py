"""The watchdog's HTTP surface: Evolution webhooks, /metrics, /healthz, /api/status, the status page."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watchdog.errors import NotLeader
from watchdog.metrics import Metrics
from watchdog.recovery.ack import NotPaged, UnknownIncident, describe
from watchdog.recovery.journal import JournalError
from watchdog.recovery.planner import Incident
from watchdog.signals.webhook import (
    KNOWN_EVENTS,
    Envelope,
    WebhookRejected,
    normalise_event,
    parse_envelope,
)
from watchdog.status import StatusBoard
from watchdog.statuspage import status_page

# Evolution can inline media as base64 (webhookBase64); bodies beyond this are refused with 413.
MAX_WEBHOOK_BYTES = 8 * 1024 * 1024
TOKEN_HEADER = "x-watchdog-token"
# Label values for refusals: a URL's event segment is the sender's text, so only known names are kept.
_EVENT_LABELS = frozenset(normalise_event(e) for e in KNOWN_EVENTS)


def create_app(
    board: StatusBoard,
    registry: CollectorRegistry,
    *,
    settings_view: dict[str, Any],
    liveness: Callable[[], tuple[bool, str]],
    ingest: Callable[[Envelope], str],
    metrics: Metrics,
    webhook_token: str = "",
    conversations: Callable[[], dict[str, Any]] = dict,
    incidents: Callable[[], list[dict[str, Any]]] = list,
    maintenance: Callable[[float], None] | None = None,
    admin_token: str = "",
    now: Callable[[], float] = time.time,
    recovery: Callable[[], dict[str, Any]] = dict,
    turnaround: Callable[[], dict[str, Any]] = dict,
    acknowledge: Callable[[str], Awaitable[Incident]] | None = None,
) -> Starlette:
    """`liveness` says whether the daemon's own loop is making progress (for /healthz)."""

    def refuse(status: int, reason: str, detail: str, event: str = "unknown") -> JSONResponse:
        metrics.webhook_events.labels(event=event, outcome=f"rejected_{reason}").inc()
        return JSONResponse({"error": reason, "detail": detail}, status_code=status)

    async def webhook(request: Request) -> Response:
        """Answer fast: Evolution retries slow or failed deliveries up to ten times."""
        if webhook_token and not _token_ok(request, webhook_token):
            return refuse(401, "token", f"missing or wrong token (header {TOKEN_HEADER} or ?token=)")
        try:
            raw = await _read_capped(request, MAX_WEBHOOK_BYTES)
        except _TooLarge:
            return refuse(413, "too_large", f"body over {MAX_WEBHOOK_BYTES} bytes")
        except ClientDisconnect:
            return refuse(400, "disconnected", "the client went away mid-body")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return refuse(400, "not_json", "the body is not JSON")
        path_event = request.path_params.get("event")
        try:
            envelope = parse_envelope(body, path_event=path_event)
            outcome = ingest(envelope)
        except WebhookRejected as exc:
            event = normalise_event(path_event) if path_event else "unknown"
            return refuse(422, exc.reason, str(exc), event if event in _EVENT_LABELS else "unknown")
        metrics.webhook_events.labels(event=envelope.event, outcome=outcome).inc()
        return JSONResponse({"status": outcome})

    async def set_maintenance(request: Request) -> JSONResponse:
        """`POST {"minutes": N}` silences recovery for N minutes; `DELETE` ends the silence."""
        if maintenance is None:
            return JSONResponse({"error": "recovery is not running"}, status_code=404)
        if not _admin_ok(request, admin_token):
            return _admin_refused()
        if request.method == "DELETE":
            try:
                maintenance(0.0)
            except NotLeader as exc:
                return JSONResponse({"error": str(exc)}, status_code=409)
            return JSONResponse({"maintenance_until": None})
        try:
            body = await request.json()
            minutes = float(body["minutes"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'body must be {"minutes": N}'}, status_code=400)
        if not 0 < minutes <= 7 * 24 * 60:
            return JSONResponse({"error": "minutes must be between 0 and 10080 (a week)"}, status_code=400)
        until = now() + minutes * 60
        try:
            maintenance(until)
        except NotLeader as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        return JSONResponse({"maintenance_until": until})

    async def ack_incident(request: Request) -> JSONResponse:
        """`POST /api/incidents/{key}/ack`: a person looked at a paged incident; recovery may act again."""
        if acknowledge is None:
            return JSONResponse({"error": "recovery is not running"}, status_code=404)
        if not _admin_ok(request, admin_token):
            return _admin_refused()
        key = request.path_params["key"]
        try:
            incident = await acknowledge(key)
        except UnknownIncident as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except (NotPaged, NotLeader) as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        except JournalError as exc:
            return JSONResponse({"error": f"the ack could not be journaled: {exc}"}, status_code=503)
        return JSONResponse({"key": key, "level": int(incident.level), "next": describe(incident)})

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> JSONResponse:
        alive, detail = liveness()
        return JSONResponse(
            {"status": "ok" if alive else "stale", "detail": detail}, status_code=200 if alive else 503
        )

    async def api_status(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                **board.as_dict(),
                "conversations": conversations(),
                "incidents": incidents(),
                "recovery": recovery(),
                "turnaround": turnaround(),
                "settings": settings_view,
            }
        )

    return Starlette(
        routes=[
            Route("/webhook/evolution", webhook, methods=["POST"]),
            Route("/webhook/evolution/{event}", webhook, methods=["POST"]),
            Route("/api/maintenance", set_maintenance, methods=["POST", "DELETE"]),
            Route("/api/incidents/{key:path}/ack", ack_incident, methods=["POST"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/api/status", api_status, methods=["GET"]),
            Route("/", status_page, methods=["GET"]),
        ]
    )


def _admin_refused() -> JSONResponse:
    return JSONResponse({"error": "admin token required (Authorization: Bearer ...)"}, status_code=403)


def _admin_ok(request: Request, token: str) -> bool:
    """With a token: the bearer must match. Without one: only a client on this machine may change state."""
    if not token:
        return request.client is not None and request.client.host in ("127.0.0.1", "::1")
    auth = request.headers.get("authorization", "")
    given = auth[7:] if auth.lower().startswith("bearer ") else ""
    return hmac.compare_digest(given.encode(), token.encode())


def _token_ok(request: Request, expected: str) -> bool:
    """Header, bearer or query parameter: Evolution's global webhook cannot send custom headers."""
    given = request.headers.get(TOKEN_HEADER) or request.query_params.get("token") or ""
    auth = request.headers.get("authorization", "")
    if not given and auth.lower().startswith("bearer "):
        given = auth[7:]
    return hmac.compare_digest(given.encode(), expected.encode())


class _TooLarge(Exception):
    pass


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)
