"""Evolution's webhook delivery, as 2.3.6 does it: per-instance and global URLs, by-events paths, retries.

Source: src/api/integrations/event/webhook/webhook.controller.ts (`emit`, `retryWebhookRequest`) and
channel.service.ts `sendDataWebhook` (`sender` is the connected account's jid: absent until the instance
has connected in this process; `apikey` the instance token). `destination` is the instance's webhook URL
when it has one, else `<global URL>/<event-path>`, whichever copy it is and whether by-events is on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from watchdog.sim.logfmt import SAO_PAULO, SimLog

# `EventController.events` (src/api/integrations/event/event.controller.ts:126): what `webhook/set` accepts,
# and what it stores for an enabled webhook given no events.
ALL_EVENTS = (
    "APPLICATION_STARTUP", "QRCODE_UPDATED", "MESSAGES_SET", "MESSAGES_UPSERT", "MESSAGES_EDITED",
    "MESSAGES_UPDATE", "MESSAGES_DELETE", "SEND_MESSAGE", "SEND_MESSAGE_UPDATE", "CONTACTS_SET",
    "CONTACTS_UPSERT", "CONTACTS_UPDATE", "PRESENCE_UPDATE", "CHATS_SET", "CHATS_UPSERT", "CHATS_UPDATE",
    "CHATS_DELETE", "GROUPS_UPSERT", "GROUP_UPDATE", "GROUP_PARTICIPANTS_UPDATE", "CONNECTION_UPDATE",
    "LABELS_EDIT", "LABELS_ASSOCIATION", "CALL", "TYPEBOT_START", "TYPEBOT_CHANGE_STATUS", "REMOVE_INSTANCE",
    "LOGOUT_INSTANCE", "INSTANCE_CREATE", "INSTANCE_DELETE", "STATUS_INSTANCE",
)  # fmt: skip
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
    # Upper-case names, stored in full (`webhook/set` with none stores every event); None: the global
    # hook, which sends every event here (upstream: each WEBHOOK_EVENTS_<NAME> flag).
    events: list[str] | None = None

    def wants(self, event: str) -> bool:
        return self.enabled and (self.events is None or event_config_name(event) in self.events)


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
        data: Mapping[str, Any] | None,
        sender: str | None,
        apikey: str | None,
        instance_hook: WebhookConfig | None,
    ) -> None:
        """Queue delivery to every hook that wants this event (the instance's first); never blocks."""
        global_url = self.global_hook.url if self.global_hook else ""
        envelope: dict[str, Any] = {
            "event": event,
            "instance": instance,
            "data": None if data is None else dict(data),
            "destination": instance_hook.url if instance_hook else f"{global_url}/{event_path(event)}",
            "date_time": local_time_with_z(),
        }
        if sender is not None:  # JSON.stringify drops an undefined `sender`
            envelope["sender"] = sender
        envelope.update(server_url=self.server_url, apikey=apikey)
        for hook in (instance_hook, self.global_hook):
            if hook is None or not hook.wants(event) or not hook.url.startswith(("http://", "https://")):
                continue
            url = hook.url.rstrip("/") + "/" + event_path(event) if hook.by_events else hook.url
            origin = "ChannelStartupService.sendData-Webhook" + ("" if hook is instance_hook else "-Global")
            self.log.evolution("LOG", "WebhookController", {"local": origin, "url": url, **envelope})
            headers = {} if hook is self.global_hook else dict(hook.headers)
            task = asyncio.create_task(self._deliver(url, envelope, headers, origin))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, url: str, envelope: dict[str, Any], headers: dict[str, str], origin: str
    ) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = await self.http.post(url, json=envelope, headers=headers, timeout=30.0)
                if response.status_code < 400:
                    self.delivered += 1
                    return
                reason = f"Request failed with status code {response.status_code}"
                if response.status_code in NO_RETRY:
                    self._log_error(
                        origin,
                        url,
                        f"Erro não recuperável ({response.status_code}): {reason}. Cancelando retentativas.",
                        statusCode=response.status_code,
                    )
                    self._give_up(url, reason, origin)
                    return
            except httpx.HTTPError as exc:
                reason = str(exc) or type(exc).__name__
            self._log_error(origin, url, f"Tentativa {attempt}/{MAX_ATTEMPTS} falhou: {reason}")
            if attempt < MAX_ATTEMPTS:
                delay = min(300.0, self.retry_base * 2 ** (attempt - 1))
                message = f"Aguardando {delay:.1f} segundos antes da próxima tentativa"
                self.log.evolution(
                    "LOG", "WebhookController", {"local": origin, "message": message, "url": url}
                )
                await asyncio.sleep(delay)
        self._give_up(url, reason, origin)

    def _log_error(self, origin: str, url: str, message: str, **extra: Any) -> None:
        body = {"local": origin, "message": message, **extra, "url": url, "server_url": self.server_url}
        self.log.evolution("ERROR", "WebhookController", body)

    def _give_up(self, url: str, reason: str, origin: str) -> None:
        self.failed += 1
        self._log_error(origin, url, f"Todas as tentativas falharam: {reason}")

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait for deliveries in flight (tests and shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
