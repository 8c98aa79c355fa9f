"""Follow containers' logs through the Docker API, one thread per container (the SDK blocks).

Resumes without loss or duplication across container restarts, recreation under the same name, and
the Docker daemon going away: it remembers the last line's nanosecond timestamp, asks Docker for a
little earlier, and drops what it has already seen. Docker exceptions are translated here and
reported as states; nothing escapes the thread.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import docker
import docker.errors
import requests.exceptions

FOLLOWING, STOPPED, MISSING, UNREACHABLE = "following", "stopped", "missing", "docker_unreachable"
MAX_LINE_BYTES = 16 * 1024
RETRY_MIN, RETRY_MAX = 0.25, 5.0
RESUME_OVERLAP_SECONDS = 1  # ask Docker from a second before the last line; dedupe the overlap
# Pinned so that creating a client never calls the daemon (with "auto", a dead daemon leaks a socket).
# 1.40 is Docker 19.03; everything the watchdog uses (logs, inspect, restart, events) is older.
DOCKER_API_VERSION = "1.40"


def docker_client(url: str) -> docker.DockerClient:
    return docker.DockerClient(base_url=url, version=DOCKER_API_VERSION, timeout=10)


def daemon_answers(url: str, timeout: float = 1.0) -> bool:
    """Connect-only check of the Docker endpoint. docker-py leaks its socket when a connect fails, so
    a follower waiting for a dead daemon asks this instead of retrying through the SDK."""
    parts = urlsplit(url)
    try:
        if parts.scheme in ("unix", "http+unix"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(parts.path)
        else:
            with socket.create_connection(
                (parts.hostname or "127.0.0.1", parts.port or 2375), timeout=timeout
            ):
                pass
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class LogLine:
    container: str  # the configured name, stable across recreation
    at_ns: int  # Docker's timestamp of the line, nanoseconds since the epoch
    text: str


def parse_docker_timestamp(stamp: str) -> int:
    """RFC 3339 with up to 9 fractional digits (Docker trims trailing zeros) -> epoch nanoseconds."""
    main, _, rest = stamp.rstrip("Z").partition(".")
    seconds = _epoch_seconds(main)
    fraction = (rest or "0")[:9].ljust(9, "0")
    return seconds * 1_000_000_000 + int(fraction)


@functools.lru_cache(maxsize=64)
def _epoch_seconds(main: str) -> int:
    """Cached: every line within one second carries the same prefix, and strptime is slow."""
    return int(datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())


class LineSplitter:
    """Bytes in, complete lines out; a line longer than the limit is cut, never buffered without bound."""

    def __init__(self, limit: int = MAX_LINE_BYTES) -> None:
        self.limit = limit
        self._buffer = bytearray()
        self._skipping = False
        self.cut = 0

    def feed(self, chunk: bytes) -> Iterator[str]:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            if not self._skipping:
                room = self.limit - len(self._buffer)
                self._buffer += piece[:room]
                if len(piece) > room:
                    self._skipping = True
                    self.cut += 1
            if end < 0:
                return
            yield self._buffer.decode("utf-8", errors="replace")
            self._buffer.clear()
            self._skipping = False
            start = end + 1


def _close(client: docker.DockerClient | None) -> None:
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()


class ContainerFollower:
    """One container, followed by name in a daemon thread until `stop()`."""

    def __init__(
        self,
        docker_url: str,
        name: str,
        *,
        on_line: Callable[[LogLine], None],
        on_state: Callable[[str, str, str], None],
        start_ns: int,
        max_line: int = MAX_LINE_BYTES,
    ) -> None:
        self.docker_url = docker_url
        self.name = name
        self.on_line = on_line
        self.on_state = on_state
        self.last_ns = start_ns
        self._seen_at_last: set[str] = set()
        self.max_line = max_line
        self._stop = threading.Event()
        self._stream: object | None = None
        self._thread = threading.Thread(target=self._run, name=f"logs:{name}", daemon=True)
        self.state = ""
        self._detail = ""

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None and hasattr(stream, "close"):
            with contextlib.suppress(Exception):  # closing a dead stream from another thread may fail
                stream.close()
        self._thread.join(timeout)

    def _set_state(self, state: str, detail: str = "") -> None:
        if (state, detail) != (self.state, self._detail):
            self.state, self._detail = state, detail
            self.on_state(self.name, state, detail)

    def _run(self) -> None:
        delay = RETRY_MIN
        client: docker.DockerClient | None = None
        while not self._stop.is_set():
            if not daemon_answers(self.docker_url):
                self._set_state(UNREACHABLE, f"nothing answers at {self.docker_url}")
                _close(client)
                client = None
                self._stop.wait(delay)
                delay = min(RETRY_MAX, delay * 2)
                continue
            try:
                client = client or docker_client(self.docker_url)
                container = client.containers.get(self.name)
                if container.status != "running":
                    self._set_state(STOPPED, container.status)
                    self._stop.wait(RETRY_MIN)
                    continue
                # The start time tells a restart apart from a stream that merely reconnected.
                started = str(container.attrs.get("State", {}).get("StartedAt", ""))
                self._set_state(FOLLOWING, f"{container.id[:12]} started {started}")
                self._follow(client, container.id)
                delay = RETRY_MIN
            except docker.errors.NotFound:
                self._set_state(MISSING, f"no container named {self.name}")
                self._stop.wait(RETRY_MIN)
            except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
                self._set_state(UNREACHABLE, type(exc).__name__)
                _close(client)
                client = None
                self._stop.wait(delay)
                delay = min(RETRY_MAX, delay * 2)
        _close(client)

    def _follow(self, client: docker.DockerClient, container_id: str) -> None:
        since = max(0, self.last_ns // 1_000_000_000 - RESUME_OVERLAP_SECONDS)
        stream = client.api.logs(container_id, stream=True, follow=True, timestamps=True, since=since or None)
        self._stream = stream
        splitter = LineSplitter(self.max_line + 40)  # room for Docker's timestamp prefix
        try:
            for chunk in stream:
                if self._stop.is_set():
                    return
                for raw in splitter.feed(chunk):
                    self._line(raw)
        finally:
            self._stream = None
            with contextlib.suppress(Exception):  # release the connection whichever way the stream ended
                stream.close()

    def _line(self, raw: str) -> None:
        stamp, _, text = raw.partition(" ")
        try:
            at_ns = parse_docker_timestamp(stamp)
        except ValueError:
            return  # not a Docker-stamped line (should not happen with timestamps=True)
        if at_ns < self.last_ns or (at_ns == self.last_ns and text in self._seen_at_last):
            return
        if at_ns > self.last_ns:
            self.last_ns = at_ns
            self._seen_at_last = set()
        self._seen_at_last.add(text)
        self.on_line(LogLine(self.name, at_ns, text[: self.max_line]))
