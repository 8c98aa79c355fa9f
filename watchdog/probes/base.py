"""Run one probe under a concurrency limit and a deadline; any upstream failure becomes a result."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from watchdog.clock import Clock
from watchdog.errors import UpstreamError, UpstreamHTTPError
from watchdog.errortext import one_line
from watchdog.model import ProbeResult

Observation = tuple[bool, str, Mapping[str, Any]]  # (healthy, detail, data)
SUBJECTS = "_subjects"  # key of an Observation's data holding contact id -> remoteJid; moved off the data
ProbeCall = Callable[[], Awaitable[Observation]]


class ProbeRunner:
    def __init__(self, clock: Clock, *, concurrency: int, deadline: float) -> None:
        self.clock = clock
        self.deadline = deadline
        self._limit = asyncio.Semaphore(concurrency)

    async def run(
        self, target: str, probe: str, call: ProbeCall, *, deadline: float | None = None
    ) -> ProbeResult:
        """`call` returns an Observation when the service answered and raises UpstreamError otherwise."""
        async with self._limit:
            started = self.clock.monotonic()
            checked_at = self.clock.time()
            limit = self.deadline if deadline is None else deadline
            try:
                async with asyncio.timeout(limit):
                    ok, detail, data = await call()
            except TimeoutError:
                ok, detail, data = False, f"no answer within {limit:g}s", {"error": "timeout"}
            except UpstreamError as exc:
                ok, detail, data = False, exc.message, _error_data(exc)
            data = dict(data)
            subjects = data.pop(SUBJECTS, {})
            return ProbeResult(
                target=target,
                probe=probe,
                ok=ok,
                duration=max(0.0, self.clock.monotonic() - started),
                checked_at=checked_at,
                detail=one_line(detail),  # shown in tables, findings and logs: one bounded line
                data=data,
                subjects=subjects,
            )


def _error_data(exc: UpstreamError) -> dict[str, Any]:
    data: dict[str, Any] = {"error": exc.kind}
    if isinstance(exc, UpstreamHTTPError):
        data["status"] = exc.status
        if exc.code:
            data["code"] = exc.code
    return data
