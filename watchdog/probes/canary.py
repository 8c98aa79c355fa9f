"""The Dify canary: one fixed prompt through the service API in streaming mode, timed event by event.

It fails on what users see as silence: no first event, a stall between events, an `error` event, a
stream that ends without `message_end`, or an answer slower than the turnaround threshold. It talks
as its own end user, so it never touches a customer's conversation, and deletes what it created.
"""

from __future__ import annotations

from typing import Any

import httpx

from watchdog.clients.http import error_message
from watchdog.clock import Clock
from watchdog.errors import UpstreamAuthError, UpstreamHTTPError, UpstreamTimeout, UpstreamUnreachable
from watchdog.model import ProbeResult
from watchdog.probes.base import Observation, ProbeRunner
from watchdog.probes.sse import SseDecoder

CANARY_USER = "evo-watchdog-canary"
CANARY_QUERY = "evo-watchdog canary: answer with the single word OK."


class DifyCanary:
    def __init__(
        self,
        http: httpx.AsyncClient,
        runner: ProbeRunner,
        clock: Clock,
        *,
        base_url: str,
        api_key: str,
        threshold: float,
        connect_timeout: float,
    ) -> None:
        self.http = http
        self.runner = runner
        self.clock = clock
        self.url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.threshold = threshold
        self.connect_timeout = connect_timeout

    async def run(self) -> ProbeResult:
        # The runner's deadline is a backstop; the stream's own read timeout reports stalls first.
        return await self.runner.run("dify", "canary", self._call, deadline=self.threshold * 2 + 1)

    async def _call(self) -> Observation:
        started = self.clock.monotonic()
        first: float | None = None
        events = 0
        conversation = ""
        decoder = SseDecoder()
        timeout = httpx.Timeout(self.threshold, connect=self.connect_timeout)
        body = {"inputs": {}, "query": CANARY_QUERY, "response_mode": "streaming", "user": CANARY_USER}
        try:
            async with self.http.stream(
                "POST", self.url + "/chat-messages", json=body, headers=self.headers, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise _http_error(response)
                async for line in response.aiter_lines():
                    event = decoder.feed(line)
                    if event is None:
                        continue
                    events += 1
                    first = first if first is not None else round(self.clock.monotonic() - started, 3)
                    conversation = conversation or str(event.data.get("conversation_id") or "")
                    if event.name == "error":
                        return _fail(
                            f"error event: {event.data.get('code')}: {event.data.get('message')}",
                            first,
                            events,
                        )
                    if event.name == "message_end":
                        await self._forget(conversation)
                        return self._finished(started, first, events)
        except httpx.ReadTimeout:
            where = "before the first event" if first is None else f"after {events} events"
            return _fail(f"stream stalled {self.threshold:g}s {where}", first, events)
        except httpx.TimeoutException:
            raise UpstreamTimeout("dify", "canary could not connect in time") from None
        except httpx.HTTPError as exc:
            if first is None:
                raise UpstreamUnreachable("dify", f"canary: {exc or type(exc).__name__}") from None
            return _fail(f"stream broke after {events} events: {type(exc).__name__}", first, events)
        await self._forget(conversation)
        return _fail(f"stream ended without message_end after {events} events", first, events)

    def _finished(self, started: float, first: float | None, events: int) -> Observation:
        total = self.clock.monotonic() - started
        data: dict[str, Any] = {
            "first_event_seconds": first,
            "total_seconds": round(total, 3),
            "events": events,
        }
        if total > self.threshold:
            return False, f"answered in {total:.1f}s, above the {self.threshold:g}s threshold", data
        return True, f"answered in {total:.2f}s (first event {first or 0:.2f}s)", data

    async def _forget(self, conversation: str) -> None:
        """Delete the canary's conversation so probes do not pile up in Dify (best effort)."""
        if not conversation:
            return
        try:
            await self.http.request(
                "DELETE",
                f"{self.url}/conversations/{conversation}",
                json={"user": CANARY_USER},
                headers=self.headers,
                timeout=self.connect_timeout,
            )
        except httpx.HTTPError:
            return


def _fail(detail: str, first: float | None, events: int) -> Observation:
    return False, detail, {"first_event_seconds": first, "events": events}


def _http_error(response: httpx.Response) -> UpstreamHTTPError:
    cls = UpstreamAuthError if response.status_code in (401, 403) else UpstreamHTTPError
    return cls("dify", response.status_code, error_message(response))
