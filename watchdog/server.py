"""The watchdog's HTTP surface: /metrics, /healthz, /api/status (webhooks and the status page come later)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watchdog.status import StatusBoard


def create_app(
    board: StatusBoard,
    registry: CollectorRegistry,
    *,
    settings_view: dict[str, Any],
    liveness: Callable[[], tuple[bool, str]],
) -> Starlette:
    """`liveness` says whether the daemon's own loop is making progress (for /healthz)."""

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> JSONResponse:
        alive, detail = liveness()
        return JSONResponse(
            {"status": "ok" if alive else "stale", "detail": detail}, status_code=200 if alive else 503
        )

    async def api_status(request: Request) -> JSONResponse:
        return JSONResponse({**board.as_dict(), "settings": settings_view})

    return Starlette(
        routes=[
            Route("/metrics", metrics, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/api/status", api_status, methods=["GET"]),
        ]
    )
