"""The Dify canary: one fixed prompt through the service API in streaming mode, timed event by event.

It fails on what users see as silence: no first event, a stall between events (pings do not count), an
`error` event, a stream that ends without `message_end`, or an answer slower than the turnaround
threshold. A request Dify refuses before streaming (missing inputs, an app of another mode) is a
configuration problem, raised as UpstreamMisconfigured: no restart fixes it. It talks as its own end
user, so it never touches a customer's conversation, and deletes what it created.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from watchdog.clients.http import http_error
from watchdog.clock import Clock
from watchdog.errors import UpstreamMisconfigured, UpstreamTimeout, UpstreamUnreachable
from watchdog.errortext import exception_text, one_line
from watchdog.model import ProbeResult
from watchdog.probes.base import Observation, ProbeRunner
from watchdog.probes.sse import SseDecoder, SseEvent

CANARY_USER = "evo-watchdog-canary"
CANARY_QUERY = "evo-watchdog canary: answer with the single word OK."
# The `inputs` keys Evolution 2.3.6 sends with every message (DifyService.sendMessageToBot in
# src/api/integrations/chatbot/dify/services/dify.service.ts: remoteJid, pushName, instanceName,
# serverUrl, apiKey), so an app whose form requires them takes the canary as it takes Evolution. The
# values reach nobody: `.invalid` never resolves (RFC 2606) and the key is not Evolution's.
CANARY_INPUTS = {
    "remoteJid": "evo-watchdog-canary@s.whatsapp.net",
    "pushName": "evo-watchdog canary",
    "instanceName": "evo-watchdog-canary",
    "serverUrl": "http://evo-watchdog-canary.invalid",
    "apiKey": "evo-watchdog-canary-not-a-key",
}
# Codes of a model that cannot answer (base_app_generate_response_converter._error_to_stream_response);
# any other error event is the app's run failing (Dify 1.12.1 sends invalid_param "Run failed: ...").
MODEL_CODES = {
    "completion_request_error",
    "provider_not_initialize",
    "provider_quota_exceeded",
    "model_currently_not_support",
}


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
        patience: float | None = None,
    ) -> None:
        self.http = http
        self.runner = runner
        self.clock = clock
        self.url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.threshold = threshold  # slower than this is `slow`: reported, not a fault to repair
        # no event for this long is `stalled`: by default what customers are given (the stall time), so a
        # Dify that answers late but within it is slow, not down
        self.patience = patience if patience is not None else threshold
        self.connect_timeout = connect_timeout

    async def run(self, *, patience: float | None = None) -> ProbeResult:
        """`patience`: how long without an event is a stall, this once (the stall diagnosis, asked after
        customers already waited past the stall time, wants its verdict within the turnaround threshold)."""
        wait = self.patience if patience is None else patience
        # The runner's deadline is a backstop; the stream's own read timeout reports stalls first.
        return await self.runner.run("dify", "canary", lambda: self._call(wait), deadline=wait * 2 + 1)

    async def _call(self, patience: float) -> Observation:
        started = last = self.clock.monotonic()
        first: float | None = None
        events = 0
        conversation = ""
        timeout = httpx.Timeout(patience, connect=self.connect_timeout)
        body = {
            "inputs": CANARY_INPUTS,
            "query": CANARY_QUERY,
            "response_mode": "streaming",
            "user": CANARY_USER,
        }
        try:
            async with self.http.stream(
                "POST", self.url + "/chat-messages", json=body, headers=self.headers, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    return _refused(response)
                async for event in _events(response):
                    now = self.clock.monotonic()
                    if event.name == "ping":  # `event: ping`, no data: every 10 s, even while nothing runs
                        if now - last > patience:
                            where = "before the first event" if first is None else f"after {events} events"
                            return _fail(
                                f"stream stalled {now - last:.1f}s {where} (pings only)", first, events
                            )
                        continue
                    last = now
                    events += 1
                    first = first if first is not None else round(now - started, 3)
                    conversation = conversation or str(event.data.get("conversation_id") or "")
                    if event.name == "error":
                        await self._forget(conversation)
                        return _failed_midstream(event, first, events - 1)
                    if event.name == "message_end":
                        await self._forget(conversation)
                        return self._finished(started, first, events)
        except httpx.ReadTimeout:
            where = "before the first event" if first is None else f"after {events} events"
            return _fail(f"stream stalled {patience:g}s {where}", first, events, "stalled")
        except httpx.TimeoutException:
            raise UpstreamTimeout("dify", "canary could not connect in time") from None
        except httpx.HTTPError as exc:
            if first is None:
                raise UpstreamUnreachable("dify", f"canary: {exception_text(exc)}") from None
            return _fail(f"stream broke after {events} events: {type(exc).__name__}", first, events, "broken")
        await self._forget(conversation)
        return _fail(f"stream ended without message_end after {events} events", first, events, "truncated")

    def _finished(self, started: float, first: float | None, events: int) -> Observation:
        total = self.clock.monotonic() - started
        data: dict[str, Any] = {
            "first_event_seconds": first,
            "total_seconds": round(total, 3),
            "events": events,
        }
        if total > self.threshold:
            detail = f"answered in {total:.1f}s, above the {self.threshold:g}s threshold"
            return False, detail, {**data, "failure": "slow"}
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


async def _events(response: httpx.Response) -> AsyncIterator[SseEvent]:
    decoder = SseDecoder()
    async for line in response.aiter_lines():
        event = decoder.feed(line)
        if event is not None:
            yield event
    last = decoder.close()  # a final event without its blank line still counts
    if last is not None:
        yield last


def _fail(detail: str, first: float | None, events: int, failure: str = "stalled") -> Observation:
    return False, detail, {"first_event_seconds": first, "events": events, "failure": failure}


def _failed_midstream(event: SseEvent, first: float | None, events: int) -> Observation:
    """HTTP 200, then an `error` event and no `message_end`: Dify is up, the app's run or its model failed."""
    code = str(event.data.get("code") or "")
    failure = "model" if code in MODEL_CODES else "app"
    message = one_line(str(event.data.get("message") or ""))
    detail = f"{failure} failed after {events} events (error event {code or '?'}): {message}"
    return False, detail, {"first_event_seconds": first, "events": events, "failure": failure, "code": code}


def _refused(response: httpx.Response) -> Observation:
    """An answer of 400 or more before any event. 401/403 is the key; a 400 other than a failed run, or a
    404, says the app or DIFY_URL does not fit the request (UpstreamMisconfigured); 5xx and 429 fail."""
    error = http_error("dify", response, "POST /chat-messages", setting="DIFY_URL")
    if error.status == 400 and error.code in MODEL_CODES:
        detail = f"model failed before streaming: {error.message}"
        return False, detail, {"events": 0, "failure": "model", "code": error.code, "status": 400}
    if error.status == 400 and "Run failed" in error.message:
        detail = f"app failed before streaming: {error.message}"
        return False, detail, {"events": 0, "failure": "app", "code": error.code, "status": 400}
    if error.status in (400, 404) and not isinstance(error, UpstreamMisconfigured):
        message = error.message.removeprefix(f"HTTP {error.status}: ")
        raise UpstreamMisconfigured(
            "dify",
            error.status,
            f"the app refused the canary ({error.code or 'no code'}): {message}",
            code=error.code,
        )
    raise error
