"""Evolution's webhook delivery, as 2.3.x does it: global and per-instance URLs, by-events paths, retries."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from watchdog.sim.logfmt import SAO_PAULO, SimLog

# 2.3.0+: up to 10 attempts; no retry on these statuses.
MAX_ATTEMPTS = 10
NO_RETRY = {400, 401, 403, 404, 422}


@dataclass
class WebhookConfig:
    url: str
    enabled: bool = True
    by_events: bool = False
    base64: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)  # upper-case names; empty = all

    def wants(self, event: str) -> bool:
        return self.enabled and (not self.events or event_config_name(event) in self.events)


def event_config_name(event: str) -> str:
    """`messages.upsert` -> `MESSAGES_UPSERT` (the names used in config and webhook/set)."""
    return event.replace(".", "_").upper()


def event_path(event: str) -> str:
    """`messages.upsert` -> `messages-upsert` (appended to the URL when byEvents is on)."""
    return event.replace(".", "-").replace("_", "-").lower()


def local_time_with_z(now: datetime | None = None) -> str:
    """Upstream stamps `date_time` with local (São Paulo) time yet appends `Z`: reproduce that defect."""
    stamp = (now or datetime.now(SAO_PAULO)).astimezone(SAO_PAULO)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


class WebhookSender:
    def __init__(
        self,
        http: httpx.AsyncClient,
        log: SimLog,
        *,
        server_url: str,
        global_hook: WebhookConfig | None = None,
        retry_base_seconds: float = 5.0,
    ) -> None:
        self.http = http
        self.log = log
        self.server_url = server_url
        self.global_hook = global_hook
        self.retry_base = retry_base_seconds
        self.delivered = 0
        self.failed = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def emit(
        self,
        event: str,
        *,
        instance: str,
        data: Mapping[str, Any],
        sender: str,
        apikey: str | None,
        instance_hook: WebhookConfig | None,
    ) -> None:
        """Queue delivery to every hook that wants this event; never blocks the caller."""
        for hook in (self.global_hook, instance_hook):
            if hook is None or not hook.wants(event):
                continue
            url = hook.url.rstrip("/") + "/" + event_path(event) if hook.by_events else hook.url
            envelope = {
                "event": event,
                "instance": instance,
                "data": dict(data),
                "destination": url,
                "date_time": local_time_with_z(),
                "sender": sender,
                "server_url": self.server_url,
                "apikey": apikey,
            }
            headers = {} if hook is self.global_hook else dict(hook.headers)
            task = asyncio.create_task(self._deliver(url, envelope, headers, instance))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, url: str, envelope: dict[str, Any], headers: dict[str, str], instance: str
    ) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = await self.http.post(url, json=envelope, headers=headers, timeout=30.0)
                if response.status_code < 400:
                    self.delivered += 1
                    return
                reason = f"Request failed with status code {response.status_code}"
                if response.status_code in NO_RETRY:
                    self._give_up(url, reason, instance)
                    return
            except httpx.HTTPError as exc:
                reason = str(exc) or type(exc).__name__
            self.log.evolution(
                "ERROR",
                "WebhookController",
                f"Tentativa {attempt}/{MAX_ATTEMPTS} falhou: {reason}",
                instance=instance,
            )
            if attempt < MAX_ATTEMPTS:
                await asyncio.sleep(min(300.0, self.retry_base * 2 ** (attempt - 1)))
        self._give_up(url, reason, instance)

    def _give_up(self, url: str, reason: str, instance: str) -> None:
        self.failed += 1
        self.log.evolution(
            "ERROR",
            "WebhookController",
            {"message": f"Todas as tentativas falharam: {reason}", "url": url},
            instance=instance,
        )

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for deliveries in flight (tests and shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
