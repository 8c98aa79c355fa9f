"""The latest picture of the world, as shown by /api/status and `check`. Holds values, does no I/O."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from watchdog.clock import iso
from watchdog.model import Finding, ProbeResult


@dataclass
class StatusBoard:
    started_at: float
    results: list[ProbeResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    cycles: int = 0
    last_cycle_at: float | None = None  # monotonic
    last_cycle_wall: float | None = None
    heartbeat: Callable[[], dict[str, Any]] | None = None  # the end-to-end heartbeat's view, when it is on

    def record_cycle(self, results: Sequence[ProbeResult], *, mono: float, wall: float) -> None:
        self.results = list(results)
        self.cycles += 1
        self.last_cycle_at = mono
        self.last_cycle_wall = wall

    def healthy(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy(),
            "started_at": iso(self.started_at),
            "cycles": self.cycles,
            "last_cycle_at": iso(self.last_cycle_wall) if self.last_cycle_wall is not None else None,
            "findings": [f.as_dict() for f in self.findings],
            "probes": [probe_dict(r) for r in self.results],
            "instances": instances_view(self.results),
            "heartbeat": self.heartbeat() if self.heartbeat is not None else {"enabled": False},
        }


def probe_dict(result: ProbeResult) -> dict[str, Any]:
    return {
        "target": result.target,
        "probe": result.probe,
        "ok": result.ok,
        "duration_ms": round(result.duration * 1000, 1),
        "checked_at": iso(result.checked_at),
        "detail": result.detail,
        "data": dict(result.data),
    }


def instances_view(results: Sequence[ProbeResult]) -> dict[str, dict[str, Any]]:
    """Per instance: live state and session counts by status, and by bot integration and status (no contact
    ids)."""
    view: dict[str, dict[str, Any]] = {}
    for result in results:
        service, _, name = result.target.partition(":")
        if service != "evolution" or not name:
            continue
        entry = view.setdefault(name, {"state": "unknown", "sessions": {}, "sessions_by_integration": {}})
        if result.probe == "connection_state":
            entry["state"] = result.data.get("state") or "unknown"
        elif result.probe == "sessions":
            counts: dict[str, int] = {}
            by_integration: dict[str, dict[str, int]] = {}
            for session in result.data.get("sessions", []):
                status = session["status"]
                counts[status] = counts.get(status, 0) + 1
                of = by_integration.setdefault(session.get("integration") or "dify", {})
                of[status] = of.get(status, 0) + 1
            entry["sessions"] = counts
            entry["sessions_by_integration"] = by_integration
    return view
