"""The end-to-end heartbeat's I/O: the prober instance writes to each bot's number through Evolution's
`POST /message/sendText/{instance}` `{number, text}`, waits for the legs the webhooks bring (bookkeeping in
signals/heartbeat.py), sends once more when that failed, and resets its own bot session afterwards (the
L1 reset, `{integration}/changeStatus` delete, recovery/executors.py), so its conversation never grows.

The prober may live on another Evolution server (WATCHDOG_E2E_FROM_URL / _API_KEY). Its number is its
`ownerJid` in `fetchInstances` (set when it was paired: whatsapp.baileys.service.ts:467).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection
from typing import Any

import httpx
from loguru import logger

from watchdog.clients.evolution import EvolutionClient, evolution_client_for
from watchdog.clock import Clock
from watchdog.config import Settings, e2e_targets
from watchdog.errors import ConfigError, UpstreamError
from watchdog.metrics import Metrics
from watchdog.recovery.executors import EvolutionExecutor
from watchdog.recovery.planner import OK
from watchdog.signals.heartbeat import HeartbeatTracker, Verdict, jid_user
from watchdog.signals.webhook import Envelope

DEADLINE_SHARE = 3  # each try waits at most a third of the interval: two tries fit before the next beat


def heartbeat_deadline(settings: Settings) -> float:
    """How long one try waits for its legs: the stall time, or less when the interval is short."""
    return min(settings.stall_seconds, settings.e2e_interval_seconds / DEADLINE_SHARE)


class Heartbeat:
    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        clock: Clock,
        metrics: Metrics,
        *,
        sessions: EvolutionExecutor,
        state_of: Callable[[str], str | None],
        watched: Callable[[], Collection[str]],
        on_verdict: Callable[[], object],
    ) -> None:
        self.settings = settings
        self.prober = settings.e2e_from_instance
        self.client = (
            EvolutionClient(
                http,
                settings.e2e_from_url,
                settings.e2e_from_api_key or settings.evolution_api_key,
                timeout=settings.probe_timeout_seconds,
            )
            if settings.e2e_from_url
            else evolution_client_for(http, settings)
        )
        self.sessions = sessions  # the bots' server: where the L1 reset goes
        self.state_of = state_of
        self.watched = watched
        self.on_verdict = on_verdict
        self.tracker = HeartbeatTracker(
            clock,
            metrics,
            prober=self.prober,
            deadline=heartbeat_deadline(settings),
            slow_after=settings.turnaround_threshold_seconds,
        )
        self._progress = asyncio.Event()

    def observe(self, envelope: Envelope) -> bool:
        """True for heartbeat traffic (kept out of customer figures); wakes the waiting heartbeat."""
        if not self.tracker.observe(envelope):
            return False
        self._progress.set()
        return True

    async def beat(self) -> None:
        """One heartbeat to every bot named in WATCHDOG_E2E_TO_NUMBER, side by side."""
        try:
            targets = e2e_targets(self.settings.e2e_to_number, self.watched())
            number = await self._prober_number()
        except (ConfigError, UpstreamError) as exc:
            self._note(str(exc) if isinstance(exc, ConfigError) else f"prober unreadable: {exc.message}")
            return
        self.tracker.notes.pop("", None)
        self.tracker.numbers = targets
        self.tracker.prober_number = number
        await asyncio.gather(*(self._converse(name, to) for name, to in sorted(targets.items())))

    async def _prober_number(self) -> str:
        rows = await self.client.instances()
        row = next((r for r in rows if r.name == self.prober), None)
        if row is None:
            raise ConfigError(f"WATCHDOG_E2E_FROM_INSTANCE={self.prober!r}: no such instance on its server")
        if not row.owner_jid:
            raise ConfigError(f"the prober {self.prober!r} has no number yet: pair it with WhatsApp")
        return jid_user(row.owner_jid)

    async def _converse(self, instance: str, number: str) -> None:
        verdict: Verdict | None = None
        for attempt in (1, 2):
            self.tracker.sending(instance, attempt)
            try:
                await self.client.send_text(self.prober, number, self.settings.e2e_message)
            except UpstreamError as exc:
                self.tracker.send_failed(instance, f"sendText from {self.prober} failed: {exc.message}")
                logger.warning("heartbeat to {} not sent: {}", instance, exc.message)
                self.on_verdict()
                return
            await self._wait(instance)
            verdict = self.tracker.judge(instance, self.state_of(instance))
            await self._reset(instance)  # a fresh session for the next try and the next beat
            if not verdict.retry:
                break
            logger.info("heartbeat to {}: {} on the first try, sending again", instance, verdict.result)
        assert verdict is not None
        self.tracker.conclude(verdict)
        if verdict.result != OK:
            logger.warning("heartbeat to {} failed: {} ({} tries)", instance, verdict.result, verdict.attempt)
        self.on_verdict()

    async def _wait(self, instance: str) -> None:
        """Until the reply reached the prober or the try's time is up (woken by each heartbeat webhook)."""
        while True:
            self._progress.clear()
            left = self.tracker.remaining(instance)
            if left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._progress.wait()

    async def _reset(self, instance: str) -> None:
        """The prober's session on the bot instance: the L1 reset, without a fallback reply."""
        jid = self.tracker.prober_jid(instance)
        try:
            async with asyncio.timeout(self.sessions.reset_deadline):
                outcome = await self.sessions.reset_session(instance, jid, send_fallback=False)
        except TimeoutError:
            logger.warning("heartbeat: the prober's session on {} was not reset in time", instance)
            return
        if outcome.result != OK:
            logger.warning(
                "heartbeat: the prober's session on {} was not reset: {}", instance, outcome.detail
            )

    def _note(self, why: str) -> None:
        if self.tracker.notes.get("") != why:
            logger.warning("heartbeat not sent: {}", why)
        self.tracker.notes[""] = why

    def view(self) -> dict[str, Any]:
        """For /api/status and the status page: what is sent, how often, and each bot's last legs."""
        return {
            "enabled": True,
            "prober": self.prober,
            "message": self.settings.e2e_message,
            "interval_seconds": self.settings.e2e_interval_seconds,
            "deadline_seconds": self.tracker.deadline,
            **self.tracker.view(),
        }
