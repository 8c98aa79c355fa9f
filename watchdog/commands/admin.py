"""`maintenance` and `ack`: admin requests to the running daemon at WATCHDOG_LISTEN."""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import quote

from watchdog.clock import iso
from watchdog.commands import EXIT_OK, EXIT_UNHEALTHY
from watchdog.config import Settings


def set_maintenance(settings: Settings, *, minutes: float | None) -> int:
    """Ask the running daemon (at WATCHDOG_LISTEN) to start or end a maintenance silence."""
    if minutes is None:
        answer = call_daemon(settings, "DELETE", "/api/maintenance")
    else:
        answer = call_daemon(settings, "POST", "/api/maintenance", {"minutes": minutes})
    if answer is None:
        return EXIT_UNHEALTHY
    until = answer["maintenance_until"]
    print("maintenance ended" if until is None else f"recovery silenced until {iso(until)}")
    return EXIT_OK


def call_daemon(
    settings: Settings, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """One admin request to the running daemon at WATCHDOG_LISTEN (with WATCHDOG_ADMIN_TOKEN when set);
    its JSON answer, or None after printing why it failed."""
    import httpx

    host, port = settings.listen
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{host}:{port}{path}"
    headers = {"Authorization": f"Bearer {settings.admin_token}"} if settings.admin_token else {}
    try:
        response = httpx.request(method, url, json=body, headers=headers, timeout=5)
    except httpx.HTTPError as exc:
        print(f"evo-watchdog: no daemon answers at {url}: {type(exc).__name__}", file=sys.stderr)
        return None
    try:
        answer = response.json()
    except ValueError:
        answer = {"error": f"HTTP {response.status_code}: {response.text[:200]}"}
    if response.status_code != 200:
        print(f"evo-watchdog: {answer.get('error', response.text)}", file=sys.stderr)
        return None
    return dict(answer)


def acknowledge(settings: Settings, key: str) -> int:
    """A paged incident acknowledged: the daemon may act on it again."""
    answer = call_daemon(settings, "POST", f"/api/incidents/{quote(key, safe='')}/ack")
    if answer is None:
        return EXIT_UNHEALTHY
    print(f"acknowledged {answer['key']}: {answer['next']}")
    return EXIT_OK
