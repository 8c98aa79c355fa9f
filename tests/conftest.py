"""Shared fixtures: a fake clock, real loopback servers for the emulators, and a webhook receiver."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from watchdog.clock import FakeClock
from watchdog.serving import ThreadedServer
from watchdog.sim.logfmt import SimLog


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class Receiver:
    """A real HTTP endpoint recording every POST (stands in for the watchdog or a notify target)."""

    url: str = ""
    posts: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> list[tuple[str, dict[str, str], Any]]:
        with self.changed:
            if not self.changed.wait_for(lambda: predicate(self.posts), timeout):
                raise AssertionError(f"receiver never saw the expected posts; got {self.events()}")
        return list(self.posts)

    def events(self) -> list[str]:
        return [body.get("event", "?") if isinstance(body, dict) else "?" for _, _, body in self.posts]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    async def record(request: Request) -> Response:
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        with rec.changed:
            rec.posts.append((request.url.path, dict(request.headers), body))
            rec.changed.notify_all()
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/{path:path}", record, methods=["POST"])])
    with ThreadedServer(app) as server:
        rec.url = server.url
        yield rec


@pytest.fixture
def sim_log() -> tuple[SimLog, io.StringIO]:
    stream = io.StringIO()
    return SimLog(stream), stream


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """A real Docker engine (skip, or fail under WATCHDOG_REQUIRE_REAL_INFRA=1, when there is none)."""
    from tests.integration import dockerkit

    client = dockerkit.connect()
    dockerkit.base_image(client)
    yield client
    dockerkit.remove_all(client)
    client.close()


@pytest.fixture(scope="session")
def real_upstreams() -> Iterator[Any]:
    """The real Evolution API and Dify (tests/upstreams.py): staging URLs, or scripts/upstreams.sh."""
    from tests.upstreams import start_real_upstreams, stop_real_upstreams

    upstreams = start_real_upstreams()
    yield upstreams
    stop_real_upstreams(upstreams)
