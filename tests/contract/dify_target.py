"""The Dify a contract test talks to: the emulator on loopback, configured like the real pair's two apps
(echo-chat and midstream-fail, ../shared/upstream/dify-apps/), or the real Dify 1.12.1 api."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from watchdog.serving import ThreadedServer
from watchdog.sim.dify import DifySim, create_dify_app
from watchdog.sim.dify_apps import ECHO_CHAT, MIDSTREAM_FAIL
from watchdog.sim.logfmt import SimLog

DIFY_VERSION = os.environ.get("WATCHDOG_CONTRACT_DIFY_VERSION", "1.12.1")
REAL_PING_SECONDS = 10.0  # AppQueueManager.listen: a ping whenever elapsed // 10 grows
EMULATOR_PING_SECONDS = 0.5  # the same rule, 20x faster


@dataclass(frozen=True)
class DifyTarget:
    kind: str  # "emulator" | "real"
    url: str  # the service API base, .../v1
    health_url: str
    api_key: str  # echo-chat: answers `echo: <query>`
    fail_api_key: str  # midstream-fail: streams `partial: <query>`, then GETs <fault server>/<query>
    ping_seconds: float

    @property
    def root(self) -> str:
        return self.url.rstrip("/").removesuffix("/v1")

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.api_key}"}


@contextmanager
def dify_emulator() -> Iterator[DifyTarget]:
    apps = {"app-contract-echo": ECHO_CHAT, "app-contract-fail": MIDSTREAM_FAIL}
    sim = DifySim(
        apps=apps, version=DIFY_VERSION, ping_seconds=EMULATOR_PING_SECONDS, log=SimLog(io.StringIO())
    )
    with ThreadedServer(create_dify_app(sim)) as server:
        yield DifyTarget(
            "emulator",
            server.url + "/v1",
            server.url + "/health",
            "app-contract-echo",
            "app-contract-fail",
            EMULATOR_PING_SECONDS,
        )


def real_target(upstreams: Any) -> DifyTarget:
    """From the session's `real_upstreams` (tests/upstreams.py)."""
    return DifyTarget(
        "real",
        upstreams.dify_url,
        upstreams.dify_health_url,
        upstreams.dify_api_key,
        upstreams.dify_fail_api_key,
        REAL_PING_SECONDS,
    )
