"""Contract targets: the same assertions against an emulator and against the real upstream.

`evolution_target` is the emulator on loopback or the real Evolution API 2.3.6 (the session's
`real_upstreams`, marked `upstream`). Instances a test creates get unique names and are deleted after it:
on the real server Baileys would otherwise retry WhatsApp forever. `dify_target` is the Dify emulator,
with apps like the real pair's echo-chat and midstream-fail, or the real Dify 1.12.1 api (tests/contract/
dify_target.py).
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest

from tests.contract.dify_target import DifyTarget, dify_emulator, real_target
from watchdog.serving import ThreadedServer
from watchdog.sim.evolution import EvolutionSim
from watchdog.sim.logfmt import SimLog
from watchdog.sim.runner import EvolutionOptions, build_evolution

EMULATOR_KEY = "contract-evolution-key"
# The emulator keeps upstream's waits (a 2 s `instance/connect`, 0.5 s Baileys retries) at this scale.
EMULATOR_TIME_SCALE = 0.1


@dataclass
class EvolutionTarget:
    name: str  # "emulator" | "real"
    url: str
    api_key: str
    http: httpx.Client
    sim: EvolutionSim | None = None  # the emulator itself, for emulator-only checks
    created: list[str] = field(default_factory=list)

    def api(self, method: str, path: str, *, key: str | None = None, **kwargs: object) -> httpx.Response:
        headers = {"apikey": self.api_key if key is None else key} if key != "" else {}
        return self.http.request(method, self.url + path, headers=headers, **kwargs)  # type: ignore[arg-type]

    def create_instance(self, **body: object) -> dict[str, object]:
        """A fresh instance (`qrcode: false`: Baileys not started), deleted when the test ends."""
        name = f"wdct-{uuid.uuid4().hex[:10]}"
        self.created.append(name)
        payload = {"instanceName": name, "integration": "WHATSAPP-BAILEYS", "qrcode": False, **body}
        answer = self.api("POST", "/instance/create", json=payload)
        assert answer.status_code == 201, answer.text
        created: dict[str, object] = answer.json()
        return created

    def cleanup(self) -> None:
        for name in self.created:
            self.api("DELETE", f"/instance/delete/{name}")  # never /instance/logout


@pytest.fixture(scope="module")
def evolution_emulator() -> Iterator[tuple[str, EvolutionSim]]:
    opts = EvolutionOptions(api_key=EMULATOR_KEY, instances=(), time_scale=EMULATOR_TIME_SCALE)
    sim, app = build_evolution(opts, log=SimLog(io.StringIO()))
    with ThreadedServer(app) as server:
        yield server.url, sim


@pytest.fixture(params=["emulator", pytest.param("real", marks=pytest.mark.upstream)])
def evolution_target(request: pytest.FixtureRequest) -> Iterator[EvolutionTarget]:
    with httpx.Client(timeout=30) as http:
        if request.param == "emulator":
            url, sim = request.getfixturevalue("evolution_emulator")
            target = EvolutionTarget("emulator", url, EMULATOR_KEY, http, sim)
        else:
            real = request.getfixturevalue("real_upstreams")
            target = EvolutionTarget("real", real.evolution_url.rstrip("/"), real.evolution_api_key, http)
        try:
            yield target
        finally:
            target.cleanup()


@pytest.fixture
def emulator_target(evolution_emulator: tuple[str, EvolutionSim]) -> Iterator[EvolutionTarget]:
    """The emulator alone, for behaviours the real server cannot show here (they need WhatsApp): each
    such test cites the upstream source line the emulator's behaviour comes from."""
    url, sim = evolution_emulator
    with httpx.Client(timeout=30) as http:
        target = EvolutionTarget("emulator", url, EMULATOR_KEY, http, sim)
        try:
            yield target
        finally:
            target.cleanup()


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture(scope="module", params=["emulator", pytest.param("real", marks=pytest.mark.upstream)])
def dify_target(request: pytest.FixtureRequest) -> Iterator[DifyTarget]:
    """Dify with an echo app and a mid-stream-failure app: the emulator, or the real 1.12.1 api."""
    if request.param == "real":
        yield real_target(request.getfixturevalue("real_upstreams"))
        return
    with dify_emulator() as target:
        yield target
