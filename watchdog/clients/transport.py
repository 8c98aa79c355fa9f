"""One HTTP/1.1 keep-alive connection per slot, `size` slots: the probes' connection bound.

httpx's own pool rescans every pooled connection (and asks each idle socket whether it is readable)
each time it places a request; with 16 connections that was over a third of the prober's CPU in a
1,000-instance cycle. Here each slot is a single-connection httpcore pool, so placing a request is
O(1) there, and a free slot that last talked to the same origin is preferred to keep its connection.
A slot stays taken until the response is closed (a streamed answer holds it, as a pooled connection
would); waiting for a slot honours the request's pool timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx

Slot = httpx.AsyncBaseTransport


def http11_slots() -> Callable[[], Slot]:
    """Single-connection transports sharing one TLS context (each would load the CA bundle: ~0.7 MB)."""
    tls = httpx.create_ssl_context(trust_env=False)  # as the client: no SSL_CERT_* from the env
    one = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return lambda: httpx.AsyncHTTPTransport(verify=tls, limits=one)


class SlotTransport(httpx.AsyncBaseTransport):
    def __init__(self, size: int, *, slot: Callable[[], Slot] | None = None) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        make = slot or http11_slots()
        self._slots = [make() for _ in range(size)]
        self._free: list[tuple[bytes, Slot]] = [(b"", s) for s in self._slots]  # (last origin, slot)
        self._available = asyncio.Semaphore(size)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = (
            request.url.raw_scheme + b"://" + request.url.raw_host + b":" + str(request.url.port).encode()
        )
        pool_timeout = request.extensions.get("timeout", {}).get("pool")
        try:
            async with asyncio.timeout(pool_timeout):
                await self._available.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no free connection within the pool timeout", request=request) from None
        slot = self._take(origin)
        try:
            response = await slot.handle_async_request(request)
        except BaseException:
            self._give(origin, slot)
            raise
        if response.is_closed:  # a body read already (not from a network slot): nothing holds the slot
            self._give(origin, slot)
        else:
            response.stream = _ReleasingStream(response.stream, lambda: self._give(origin, slot))
        return response

    def in_use(self) -> int:
        return len(self._slots) - len(self._free)

    async def aclose(self) -> None:
        for slot in self._slots:
            await slot.aclose()

    def _take(self, origin: bytes) -> Slot:
        for i in range(len(self._free) - 1, -1, -1):
            if self._free[i][0] == origin:
                return self._free.pop(i)[1]
        return self._free.pop(0)[1]  # the least recently used slot of another origin

    def _give(self, origin: bytes, slot: Slot) -> None:
        self._free.append((origin, slot))
        self._available.release()


class _ReleasingStream(httpx.AsyncByteStream):
    """The response body; closing it (once) frees the slot."""

    def __init__(
        self, stream: httpx.AsyncByteStream | httpx.SyncByteStream, release: Callable[[], None]
    ) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        assert isinstance(self._stream, httpx.AsyncByteStream)
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        release, self._release = self._release, None
        try:
            if isinstance(self._stream, httpx.AsyncByteStream):
                await self._stream.aclose()
        finally:
            if release is not None:
                release()
