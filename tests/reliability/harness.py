"""Shared by the reliability tests: the daemon in this test's loop, a TCP server that accepts and never
answers, a notify receiver that can fail on purpose, and metric sums."""

from __future__ import annotations

import asyncio
import selectors
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry

from watchdog.app import Daemon, Watchdog
from watchdog.clock import Clock, SystemClock
from watchdog.config import Settings
from watchdog.probes.suite import http_client


@asynccontextmanager
async def running(settings: Settings, clock: Clock | None = None) -> AsyncIterator[tuple[Watchdog, Daemon]]:
    """The whole daemon (scheduler, server, recovery) in this loop; stopped on the way out."""
    async with http_client(settings) as http:
        watchdog = Watchdog(settings, clock=clock or SystemClock(), registry=CollectorRegistry(), http=http)
        daemon = Daemon(watchdog)
        task = asyncio.create_task(daemon.run())
        try:
            yield watchdog, daemon
            assert not task.done(), "the daemon stopped on its own"
        finally:
            daemon.stop()
            await task


async def until(condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll (never sleep a fixed time): generous deadlines for a loaded machine."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout}s")
        await asyncio.sleep(0.05)


def total(watchdog: Watchdog, name: str, **match: str) -> float:
    """Sum of a metric's samples whose labels include `match` (prefix match on values ending in '*')."""
    found = 0.0
    for family in watchdog.registry.collect():
        for sample in family.samples:
            if sample.name != name:
                continue
            if all(
                sample.labels.get(k, "").startswith(v[:-1]) if v.endswith("*") else sample.labels.get(k) == v
                for k, v in match.items()
            ):
                found += sample.value
    return found


class MuteServer:
    """Accepts TCP connections, reads what is sent and never answers (a wedged process).
    `open_now` is how many connections the other side still holds open."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(256)
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self._open: set[socket.socket] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"mute:{self.port}", daemon=True)

    @property
    def open_now(self) -> int:
        return len(self._open)

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select(0.05):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if sock is self._listener:
                        conn, _ = self._listener.accept()
                        conn.setblocking(False)
                        selector.register(conn, selectors.EVENT_READ)
                        self._open.add(conn)
                        self.accepted += 1
                        continue
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        data = b""
                    if not data:  # the client gave up: that is what a deadline must do
                        selector.unregister(sock)
                        self._open.discard(sock)
                        sock.close()
            for conn in list(self._open):
                conn.close()
            self._listener.close()

    def __enter__(self) -> MuteServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(5)
