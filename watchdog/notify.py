"""Notifications through apprise (WATCHDOG_NOTIFY_URLS: Telegram, Slack, email, PagerDuty, JSON webhooks).

Sent off the event loop, bounded in time, deduplicated per (incident, event) so a flapping fault does
not flood on-call; a failing target is retried a bounded number of times, then logged and counted, and
never blocks detection or repair: news (opened, repaired, recovered) is posted in the background, and
only a page, whose delivery decides whether it is sent again, is awaited by the recovery tick. With no
usable URL nothing is sent: a page then reached nobody, and says so (`nobody`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import apprise
from loguru import logger

from watchdog.clock import Clock

DEDUP_SECONDS = 600.0
SEND_TIMEOUT = 10.0
ATTEMPTS = 3  # per notification; then it is given up (and may be sent again by the next event)
RETRY_DELAY = 1.0  # doubled after each failed attempt
MAX_IN_FLIGHT = 64  # background sends at once; beyond it news is dropped (and counted), never queued


class Notifier:
    def __init__(
        self,
        urls: Sequence[str],
        clock: Clock,
        *,
        timeout: float = SEND_TIMEOUT,
        attempts: int = ATTEMPTS,
        retry_delay: float = RETRY_DELAY,
    ) -> None:
        self.clock = clock
        self.timeout = timeout
        self.attempts = attempts
        self.retry_delay = retry_delay
        self._targets: list[apprise.Apprise] = []  # one per URL: a retry never repeats a delivered one
        self.configured = len(urls)
        for url in urls:
            target = apprise.Apprise()
            if target.add(url):
                self._targets.append(target)
            else:
                logger.warning("a WATCHDOG_NOTIFY_URLS entry was not understood by apprise; it is skipped")
        self._last: dict[tuple[str, str], float] = {}
        self._in_flight: set[asyncio.Task[bool]] = set()
        self.sent = 0
        self.failed = 0
        self.dropped = 0

    @property
    def enabled(self) -> bool:
        return bool(self._targets)

    def nobody(self) -> str:
        """Empty when a notification can be sent, else the fix (for the journal, /api/status, `check`)."""
        if self._targets:
            return ""
        if self.configured:
            return f"fix WATCHDOG_NOTIFY_URLS: apprise understands none of its {self.configured} entries"
        return "set WATCHDOG_NOTIFY_URLS"

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def post(self, incident: str, event: str, title: str, body: str, *, level: str = "warning") -> None:
        """`send` in the background: the caller goes on at once (bounded: beyond MAX_IN_FLIGHT the
        notification is dropped with a warning rather than piling up behind a dead target)."""
        if not self.enabled:
            return
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            self.dropped += 1
            logger.warning("notification '{}' dropped: {} sends already in flight", title, MAX_IN_FLIGHT)
            return
        task = asyncio.create_task(self.send(incident, event, title, body, level=level), name="notify")
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def drain(self, timeout: float) -> None:
        """At shutdown: give background sends up to `timeout` seconds, then cancel what is left."""
        if not self._in_flight:
            return
        _, late = await asyncio.wait(set(self._in_flight), timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            logger.warning("{} notification(s) still unsent at shutdown were abandoned", len(late))

    async def send(self, incident: str, event: str, title: str, body: str, *, level: str = "warning") -> bool:
        """True when delivered (a duplicate within the window counts as delivered, and is dropped); False
        when a target did not take it, or there is no target at all."""
        if not self.enabled:
            return False
        key = (incident, event)
        now = self.clock.monotonic()
        if now - self._last.get(key, -DEDUP_SECONDS - 1) < DEDUP_SECONDS:
            return True
        self._last[key] = now
        kind = {"info": apprise.NotifyType.INFO, "success": apprise.NotifyType.SUCCESS}.get(
            level, apprise.NotifyType.FAILURE if level == "critical" else apprise.NotifyType.WARNING
        )
        delivered = await asyncio.gather(*(self._deliver(t, title, body, kind) for t in self._targets))
        if all(delivered):
            self.sent += 1
            return True
        self.failed += 1
        del self._last[key]  # not delivered: the next event for it is not a duplicate
        logger.warning(
            "notification '{}' could not be delivered to every target after {} attempts", title, self.attempts
        )
        return False

    async def _deliver(
        self, target: apprise.Apprise, title: str, body: str, kind: apprise.NotifyType
    ) -> bool:
        """At most `attempts` tries, each bounded by `timeout`, with a doubling pause between them."""
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(self.retry_delay * 2 ** (attempt - 1))
            send = asyncio.to_thread(target.notify, body=body, title=title, notify_type=kind)
            try:
                if await asyncio.wait_for(send, self.timeout):
                    return True
            except TimeoutError:
                continue
        return False
