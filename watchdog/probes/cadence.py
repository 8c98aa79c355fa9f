"""Which instances get their slow probes (Dify bot sessions, webhook) this cycle.

connectionState is the live signal and runs every cycle. Sessions and the webhook configuration change
rarely, and a customer left waiting shows first in the turnaround tracker (webhooks), so each instance
gets them every Nth cycle, staggered so every cycle costs the same. An instance is probed in full at
once when it is new, when its last slow result failed or showed a bot busy on a reply, or when the
daemon asked for it (a finding on it, a repair). On the other cycles its last slow results are
carried over unchanged (their `checked_at` says when they were taken), so findings and the status
page stay whole. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from watchdog.model import ProbeResult, instance_target

SLOW_PROBES = ("sessions", "webhook")


class SlowCadence:
    def __init__(self, every: int) -> None:
        if every < 1:
            raise ValueError("every must be at least 1")
        self.every = every
        self.cycle = 0
        self._last: dict[str, list[ProbeResult]] = {}  # instance -> its last slow results
        self._asked: set[str] = set()
        self._carried: set[int] = set()  # ids of the results carried over in the last cycle

    def refresh(self, instances: Iterable[str]) -> None:
        """Probe these instances in full at the next cycle."""
        self._asked.update(instances)

    def due(self, watched: Sequence[str]) -> list[str]:
        """The instances whose slow probes run this cycle; advances the cycle count."""
        turn, self.cycle = self.cycle % self.every, self.cycle + 1
        due = [
            name
            for i, name in enumerate(watched)
            if i % self.every == turn or name in self._asked or not _settled(self._last.get(name))
        ]
        self._asked.clear()
        return due

    def carry(self, watched: Sequence[str], fresh: Sequence[ProbeResult]) -> list[ProbeResult]:
        """Remember the fresh slow results; return the last ones of the watched instances not probed."""
        by_target = {instance_target(name): name for name in watched}
        probed: dict[str, list[ProbeResult]] = {}
        for result in fresh:
            probed.setdefault(by_target[result.target], []).append(result)
        self._last = {name: probed.get(name) or self._last.get(name, []) for name in watched}
        carried = [r for name in watched if name not in probed for r in self._last[name]]
        self._carried = {id(r) for r in carried}
        return carried

    def carried(self, result: ProbeResult) -> bool:
        """True for a result carried over from an earlier cycle (not to be counted again in metrics)."""
        return id(result) in self._carried


def _settled(results: list[ProbeResult] | None) -> bool:
    """Safe to carry over: answered, and no bot busy on a reply (its age is judged on fresh data only)."""
    return bool(results) and all(
        r.ok and not any(_busy(s) for s in r.data.get("sessions", ())) for r in results or ()
    )


def _busy(session: dict[str, object]) -> bool:
    """A turn under way; not where awaitUser stays false after an answered first turn (integrations.py)."""
    visible = session.get("busy_visible", True)
    return visible is not False and session.get("status") == "opened" and not session.get("await_user")
