"""Which replica acts: a loop keeps the leader lease current; recovery asks `may_act()` before each turn
and `checkpoint()` before each action. Without WATCHDOG_REDIS_URL there is one replica and it always
leads. Both replicas observe (probes, webhooks, logs, findings, metrics); only the leader acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Callable
from typing import Any, Protocol

from loguru import logger

from watchdog.clock import Clock, iso
from watchdog.config import Settings
from watchdog.errors import CoordinationError, NotLeader
from watchdog.metrics import Metrics
from watchdog.recovery.engine import RecoveryEngine
from watchdog.recovery.journal import Journal
from watchdog.replicas.handoff import decode, record, take_over
from watchdog.replicas.lease import Call, Change, LeaseMachine


class LeaseStore(Protocol):
    async def acquire(self, me: str, ttl_ms: int) -> bool: ...
    async def renew(self, me: str, ttl_ms: int) -> bool: ...
    async def release(self, me: str) -> bool: ...
    async def holder(self) -> str | None: ...
    async def publish(self, me: str, record: str) -> bool: ...
    async def handoff(self) -> str | None: ...
    async def aclose(self) -> None: ...


def replica_id() -> str:
    """Unique per process, readable in /api/status: host, pid and a random tail."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


class Leadership:
    def __init__(
        self,
        *,
        me: str,
        ttl: float,
        store: LeaseStore | None,
        clock: Clock,
        metrics: Metrics,
        journal: Journal,
        wall: Callable[[], float],
        closed_window: float,
        on_takeover: Callable[[], None],
    ) -> None:
        self.machine = LeaseMachine(me, ttl)
        self.wall = wall  # the journal's clock
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.journal = journal
        self.closed_window = closed_window
        self.on_takeover = on_takeover
        self._taken_over = False
        self._task: asyncio.Task[None] | None = None
        metrics.leader.set_function(lambda: 1.0 if self.leading() else 0.0)

    @property
    def me(self) -> str:
        return self.machine.me

    def leading(self) -> bool:
        return self.store is None or self.machine.leading(self.clock.monotonic())

    def require(self, what: str) -> None:
        """Raise NotLeader unless this replica leads (state changes belong where recovery runs)."""
        if not self.leading():
            leader = self.machine.holder or "none right now"
            raise NotLeader(f"this replica does not lead (leader: {leader}); send {what} to the leader")

    def start(self) -> None:
        if self.store is not None and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="lease")

    async def stop(self) -> None:
        """Stop renewing and give the lease up, so the other replica takes over within one period."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.store is None:
            return
        if self.machine.holder == self.me:
            with contextlib.suppress(CoordinationError):
                await self.store.release(self.me)
        self._report(self.machine.released(self.clock.monotonic()))
        await self.store.aclose()

    async def _loop(self) -> None:
        while True:
            try:
                await self.round()
            except Exception as exc:  # a bug here must not end the loop: count it as an unsure answer
                logger.opt(exception=exc).error("lease round failed")
                self._failed(CoordinationError(f"lease round failed: {type(exc).__name__}"))
            await asyncio.sleep(self.machine.period)

    async def round(self) -> None:
        """One lease call: renew ours, or try to take a free one."""
        assert self.store is not None
        sent = self.clock.monotonic()
        call = self.machine.next_call(sent)
        ttl_ms = max(1, int(self.machine.ttl * 1000))
        try:
            if call is Call.RENEW:
                held = await self.store.renew(self.me, ttl_ms)
            else:
                held = await self.store.acquire(self.me, ttl_ms)
            holder = self.me if held else await self.store.holder()
        except CoordinationError as exc:
            self._failed(exc)
            return
        now = self.clock.monotonic()
        self._report(self.machine.answered(sent_at=sent, now=now, held=held, holder=holder))

    async def may_act(self) -> bool:
        """Leading, and the predecessor's handoff record copied into our journal (once per term)."""
        if self.store is None:
            return True
        if not self.leading():
            return False
        if not self._taken_over:
            try:
                raw = await self.store.handoff()
            except CoordinationError as exc:
                self._failed(exc)
                return False
            self._take_over(raw)
        return self.leading()

    async def checkpoint(self) -> bool:
        """Publish our recent journal for a successor, fenced by the lease; False means do not act."""
        if self.store is None:
            return True
        if not self.leading():
            return False
        payload = record(self.journal, replica=self.me, now=self.wall(), closed_window=self.closed_window)
        try:
            held = await self.store.publish(self.me, payload)
        except CoordinationError as exc:
            self._failed(exc)
            return False
        if not held:
            now = self.clock.monotonic()
            self._report(self.machine.answered(sent_at=now, now=now, held=False, holder=None))
            return False
        return self.leading()

    def view(self) -> dict[str, Any]:
        """For /api/status: who leads, since when, and whether the lease store answers."""
        machine = self.machine
        leading = self.leading()
        since = None
        if leading and machine.since is not None:
            since = iso(self.wall() - (self.clock.monotonic() - machine.since))
        return {
            "mode": "single" if self.store is None else "redis",
            "replica": self.me,
            "leader": leading,
            "leader_id": self.me if leading else machine.holder,
            "leading_since": since,
            "lease_seconds": machine.ttl,
            "store_error": machine.error,
        }

    def _take_over(self, raw: str | None) -> None:
        copied, source = 0, "none"
        if raw is not None:
            try:
                handoff = decode(raw)
            except CoordinationError as exc:
                logger.warning("ignoring the handoff record: {}", exc)
            else:
                copied, source = take_over(self.journal, handoff, self.wall()), handoff.replica
        self.on_takeover()
        self._taken_over = True
        logger.info("replica {} takes over recovery ({} action(s) copied from {})", self.me, copied, source)

    def _failed(self, exc: CoordinationError) -> None:
        self.metrics.lease_errors.inc()
        self._report(self.machine.failed(self.clock.monotonic(), str(exc)))

    def _report(self, changes: list[Change]) -> None:
        for change in changes:
            if change is Change.ELECTED:
                logger.info("replica {} now leads (lease {:g}s)", self.me, self.machine.ttl)
            elif change is Change.DEPOSED:
                self._taken_over = False
                reason = self.machine.error or f"the lease is held by {self.machine.holder or 'nobody'}"
                logger.warning("replica {} no longer leads: {}; not acting", self.me, reason)
            elif change is Change.UNREACHABLE:
                logger.error("lease store unreachable: {}; not acting until it answers", self.machine.error)
            else:
                logger.info("lease store answers again")


def leadership_for(
    settings: Settings, *, clock: Clock, metrics: Metrics, engine: RecoveryEngine
) -> Leadership:
    """A Redis lease when WATCHDOG_REDIS_URL is set, otherwise a single replica that always leads; wired
    into `engine` (which checkpoints through it, and resumes from its journal on each takeover)."""
    store: LeaseStore | None = None
    if settings.redis_url:
        from watchdog.replicas.store import RedisLeaseStore

        timeout = min(2.0, max(0.1, settings.lease_seconds / 4))
        store = RedisLeaseStore(settings.redis_url, settings.lease_key, timeout=timeout)
    leadership = Leadership(
        me=replica_id(),
        ttl=settings.lease_seconds,
        store=store,
        clock=clock,
        metrics=metrics,
        journal=engine.journal,
        wall=engine.now,
        closed_window=engine.policy.healthy_reset,
        on_takeover=engine.resume,
    )
    engine.checkpoint = leadership.checkpoint
    return leadership
