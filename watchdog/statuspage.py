"""The status page at `GET /` (statuspage.html: one self-contained screen, no external assets, works
offline) fetches /api/status every few seconds and renders it with `textContent` only, so names that
come from Evolution never become markup. Also the page's one derived number: turnaround p50/p95."""

from __future__ import annotations

import base64
import functools
import hashlib
import math
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from watchdog.signals.turnaround import BOT, Turn


def turnaround_view(recent: Mapping[str, Iterable[Turn]], threshold: float) -> dict[str, Any]:
    """p50/p95 (nearest rank) of the recent bot replies against the threshold: per instance and kind, and per
    bot integration and kind over every instance."""
    per_instance: dict[str, dict[str, list[float]]] = {}
    per_integration: dict[str, dict[str, list[float]]] = {}
    for instance, turns in sorted(recent.items()):
        for turn in turns:
            if turn.replied_by == BOT:
                per_instance.setdefault(instance, {}).setdefault(turn.kind, []).append(turn.seconds)
                integration = turn.integration or "unknown"
                per_integration.setdefault(integration, {}).setdefault(turn.kind, []).append(turn.seconds)
    return {
        "threshold_seconds": threshold,
        "instances": _quantiles(per_instance, threshold),
        "integrations": _quantiles(per_integration, threshold),
    }


def _quantiles(groups: Mapping[str, Mapping[str, list[float]]], threshold: float) -> dict[str, Any]:
    view: dict[str, dict[str, Any]] = {}
    for name, by_kind in sorted(groups.items()):
        for kind, seconds in sorted(by_kind.items()):
            ordered = sorted(seconds)
            p50, p95 = _rank(ordered, 0.50), _rank(ordered, 0.95)
            view.setdefault(name, {})[kind] = {
                "count": len(ordered),
                "p50": round(p50, 3),
                "p95": round(p95, 3),
                "over_threshold": p95 > threshold,
            }
    return view


def _rank(ordered: list[float], q: float) -> float:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@functools.cache
def _page() -> tuple[str, str]:
    """The page and its Content-Security-Policy: only its own inline script (by hash) and style may run,
    and it may only talk back to the watchdog."""
    page = resources.files("watchdog").joinpath("statuspage.html").read_text(encoding="utf-8")
    script = page.split("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'"
    )
    return page, csp


async def status_page(request: Request) -> HTMLResponse:
    page, csp = _page()
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )
