"""One Dify canary call when several customers wait at once: the question a stall cannot answer alone.

Customers unanswered on every side while Evolution and Dify's probes pass can mean Dify hangs on chat
(restart Dify), its app or model fails (a person), or Evolution's side of each conversation is stuck
(reset those sessions). The canary (probes/canary.py) asks Dify directly. With the scheduled canary off
(the default: it costs an LLM call each time) this runs it on demand: when a broad stall begins, and
again at most once per `every` seconds while it lasts. Its verdict counts only while the stall lasts and
is dropped after a verified repair, so an old failure never outlives what it diagnosed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from loguru import logger

from watchdog.clock import Clock
from watchdog.health import assess
from watchdog.model import Finding, ProbeResult
from watchdog.probes.canary import DifyCanary
from watchdog.signals.conversations import BROAD_STALL_CONTACTS, STALLED_CONTACT


def broad_stall(findings: Sequence[Finding]) -> bool:
    """Two or more contacts unanswered past the stall time, on any instances."""
    stalled = {(f.target, f.subject) for f in findings if f.kind == STALLED_CONTACT}
    return len(stalled) >= BROAD_STALL_CONTACTS


class StallDiagnosis:
    def __init__(self, canary: DifyCanary | None, clock: Clock, *, every: float, scheduled: bool) -> None:
        self.canary = None if scheduled else canary  # a scheduled canary already says it every time
        self.clock = clock
        self.every = every
        self.result: ProbeResult | None = None
        self._asked_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    def findings(
        self, current: Sequence[Finding], *, start: Callable[[], object], stall_seconds: float
    ) -> list[Finding]:
        """The verdict's findings while a broad stall lasts (a canary that failed: dify_canary_failed or
        dify_down); asks again when due. Without a stall the verdict is dropped."""
        if self.canary is None:
            return []
        if not broad_stall(current):
            self.result = None
            return []
        now = self.clock.monotonic()
        due = self._asked_at is None or now - self._asked_at >= self.every
        if due and self._task is None:
            self._ask(start)
        if self.result is None:
            return []
        return assess([self.result], now=self.clock.time(), stall_seconds=stall_seconds)

    def forget(self) -> None:
        """A verified repair: what the last call said is history."""
        self.result = None
        self._asked_at = None

    async def stop(self) -> None:
        """Shutdown: a call under way is cancelled."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _ask(self, done: Callable[[], object]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a one-shot check outside the daemon's loop: no diagnosis
        self._asked_at = self.clock.monotonic()
        self._task = loop.create_task(self._call(done))

    async def _call(self, done: Callable[[], object]) -> None:
        assert self.canary is not None
        try:
            self.result = await self.canary.run(patience=self.canary.threshold)
        finally:
            self._task = None
        logger.info("stall diagnosis: the Dify canary {}", "answered" if self.result.ok else "failed")
        done()
