"""A running pair of emulators (Dify + Evolution with a Dify bot per instance) for integration tests."""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from watchdog.config import Settings
from watchdog.serving import ThreadedServer
from watchdog.sim.dify import DifySim
from watchdog.sim.evolution import EvolutionSim
from watchdog.sim.logfmt import SimLog
from watchdog.sim.runner import DifyOptions, EvolutionOptions, build_dify, build_evolution

EVOLUTION_KEY = "stack-evolution-key"
DIFY_KEY = "app-stack"


@dataclass
class Stack:
    evolution: EvolutionSim
    dify: DifySim
    evolution_url: str
    dify_url: str  # service API base, with /v1
    dify_root: str
    http: httpx.Client
    log: io.StringIO
    state_dir: Path

    def env(self, **overrides: str) -> dict[str, str]:
        """Watchdog settings pointing at this stack, fast enough for tests."""
        return {
            "EVOLUTION_URL": self.evolution_url,
            "EVOLUTION_API_KEY": EVOLUTION_KEY,
            "DIFY_URL": self.dify_url,
            "DIFY_API_KEY": DIFY_KEY,
            "WATCHDOG_PROBE_INTERVAL_SECONDS": "1",
            "WATCHDOG_PROBE_TIMEOUT_SECONDS": "0.5",
            "WATCHDOG_TURNAROUND_THRESHOLD_SECONDS": "0.5",
            "WATCHDOG_STALL_SECONDS": "1",
            "WATCHDOG_LISTEN": "127.0.0.1:0",
            "WATCHDOG_STATE_PATH": str(self.state_dir / "journal.db"),
            **overrides,
        }

    def settings(self, **overrides: str) -> Settings:
        return Settings.from_env(self.env(**overrides))

    def fault(self, service: str, name: str, **params: Any) -> None:
        base = self.evolution_url if service == "evolution" else self.dify_root
        self.http.post(f"{base}/_sim/faults", json={"name": name, "params": params}).raise_for_status()

    def inbound(self, jid: str, text: str = "Oi", *, kind: str = "text", instance: str = "loja") -> str:
        body = {"instance": instance, "remoteJid": jid, "kind": kind, "text": text, "pushName": "Ana"}
        response = self.http.post(f"{self.evolution_url}/_sim/inbound", json=body)
        response.raise_for_status()
        return str(response.json()["outcome"])

    def session(self, jid: str, instance: str = "loja") -> Any:
        return self.evolution.instances[instance].sessions.get(jid)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout}s")
        time.sleep(0.02)


@contextmanager
def running_stack(
    evolution: EvolutionOptions | None = None, dify: DifyOptions | None = None
) -> Iterator[Stack]:
    log = io.StringIO()
    with ExitStack() as stack:
        dify_sim, dify_app = build_dify(replace(dify or DifyOptions(), api_keys=(DIFY_KEY,)), log=SimLog(log))
        dify_server = stack.enter_context(ThreadedServer(dify_app))
        opts = replace(
            evolution or EvolutionOptions(instances=("loja", "suporte"), debounce_seconds=0),
            api_key=EVOLUTION_KEY,
            dify_url=dify_server.url + "/v1",
            dify_api_key=DIFY_KEY,
            reconnect_seconds=0.05,
            time_scale=0.1,  # upstream's reply delays (>= 2 s) at the pace of the settings above
        )
        evolution_sim, evolution_app = build_evolution(opts, log=SimLog(log))
        evolution_server = stack.enter_context(ThreadedServer(evolution_app))
        http = stack.enter_context(httpx.Client(timeout=5))
        yield Stack(
            evolution=evolution_sim,
            dify=dify_sim,
            evolution_url=evolution_server.url,
            dify_url=dify_server.url + "/v1",
            dify_root=dify_server.url,
            http=http,
            log=log,
            state_dir=Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="evo-watchdog-"))),
        )
