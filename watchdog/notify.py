"""Notifications through apprise (WATCHDOG_NOTIFY_URLS: Telegram, Slack, email, PagerDuty, JSON webhooks).

Sent off the event loop, bounded in time, deduplicated per (incident, event) so a flapping fault does
not flood on-call; a failing target is logged and counted, never blocks detection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import apprise
from loguru import logger

from watchdog.clock import Clock

DEDUP_SECONDS = 600.0
SEND_TIMEOUT = 10.0


class Notifier:
    def __init__(self, urls: Sequence[str], clock: Clock) -> None:
        self.clock = clock
        self._apprise = apprise.Apprise()
        for url in urls:
            if not self._apprise.add(url):
                logger.warning("a WATCHDOG_NOTIFY_URLS entry was not understood by apprise; it is skipped")
        self._last: dict[tuple[str, str], float] = {}
        self.sent = 0
        self.failed = 0

    @property
    def enabled(self) -> bool:
        return len(self._apprise) > 0

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
        send = asyncio.to_thread(self._apprise.notify, body=body, title=title, notify_type=kind)
        try:
            ok = bool(await asyncio.wait_for(send, SEND_TIMEOUT))
        except TimeoutError:
            ok = False
        if ok:
            self.sent += 1
        else:
            self.failed += 1
            logger.warning("notification '{}' could not be delivered to every target", title)
        return ok
