"""Notifications through apprise (WATCHDOG_NOTIFY_URLS: Telegram, Slack, email, PagerDuty, JSON webhooks).

Sent off the event loop, bounded in time, deduplicated per (incident, event) so a flapping fault does
not flood on-call; a failing target is retried a bounded number of times, then logged and counted, and
never blocks detection (probes run on their own schedule; only the recovery tick waits for a send).
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
        for url in urls:
            target = apprise.Apprise()
            if target.add(url):
                self._targets.append(target)
            else:
                logger.warning("a WATCHDOG_NOTIFY_URLS entry was not understood by apprise; it is skipped")
        self._last: dict[tuple[str, str], float] = {}
        self.sent = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        return bool(self._targets)

    async def send(self, incident: str, event: str, title: str, body: str, *, level: str = "warning") -> bool:
        """True when delivered (or nothing is configured); duplicates within the window are dropped."""
        if not self.enabled:
            return True
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
