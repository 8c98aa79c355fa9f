"""Run a Starlette app under uvicorn: in the foreground for the CLI, or in a thread for tests and the demo."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Generator
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp


def bind(host: str, port: int) -> socket.socket:
    """Bind before serving so port 0 works and the real port is known before the first request."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto IPPROTO_TCP, as loop.create_server would: asyncio sets TCP_NODELAY only on such sockets, and
    # without it every small response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def free_port() -> int:
    """A loopback port free right now (for emulators and tests started on their own)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _QuietSignalsServer(uvicorn.Server):
    """A server that leaves SIGTERM/SIGINT to its owner, who shuts other parts down first."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def make_server(
    app: ASGIApp, *, log_level: str = "warning", handle_signals: bool = True, graceful_seconds: int = 2
) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level=log_level,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=graceful_seconds,
        server_header=False,
    )
    return uvicorn.Server(config) if handle_signals else _QuietSignalsServer(config)


async def serve(app: ASGIApp, host: str, port: int, *, log_level: str = "warning") -> None:
    """Serve until SIGINT/SIGTERM (uvicorn installs the handlers)."""
    sock = bind(host, port)
    await make_server(app, log_level=log_level).serve(sockets=[sock])


class _DropCancelledRequests(logging.Filter):
    """Requests left hanging on purpose (emulated hangs) are cancelled at shutdown; uvicorn would log
    each as "Exception in ASGI application". That is expected, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
            return False
        return not record.getMessage().startswith("Cancel ")  # "Cancel N running task(s), timeout ..."


_DROP_CANCELLED = _DropCancelledRequests()


class ThreadedServer:
    """uvicorn in a background thread with its own loop; `url` is valid once entered."""

    def __init__(
        self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning"
    ) -> None:
        self._sock = bind(host, port)
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        # Tests and the demo stop servers often; requests still hanging then are cut at once.
        self._server = make_server(app, handle_signals=False, graceful_seconds=0, log_level=log_level)
        logging.getLogger("uvicorn.error").addFilter(_DROP_CANCELLED)  # idempotent: filters are a set
        self._thread = threading.Thread(target=self._run, name=f"uvicorn:{self.port}", daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._server.serve(sockets=[self._sock]))
        finally:
            self.loop.close()

    def start(self, timeout: float = 10.0) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start within {timeout}s")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
