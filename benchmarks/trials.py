"""One fault against one side as a user runs it: a pair of emulator containers, customers writing, the
fault injected after a warm-up, then a fixed window watched. The side is the watchdog at the shipped
defaults in recovery mode auto, or the baseline (benchmarks/sides.py); every duration of both, the
emulators' and the script's runs at one factor (watchdog/timescale.py). The outcome is what the side did
(actions, targets, pages) and what the customers saw (benchmarks/ear.py). Trials run side by side, each
with its own pair.

Used by the decision-table test (tests/integration/test_decision_table.py) and the benchmarks.
"""

from __future__ import annotations

import asyncio
import random
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import docker
import httpx

from benchmarks.ear import WebhookEar
from watchdog.demo.containers import ContainerEmulators
from watchdog.demo.emulators import INSTANCES
from watchdog.demo.phases import Controls, _forgetful_dify, _image_wedge

DOCKER_URL = "unix:///var/run/docker.sock"
LOW_PORTS = (20000, 32768)
START_ATTEMPTS = 3
STARTS_AT_ONCE = 4
CUSTOMER_PACE = 2.0  # seconds between customers' messages, at the defaults
STALL = 60.0  # a customer waiting longer than WATCHDOG_STALL_SECONDS's default was cut off
WARMUP = 100.0  # healthy traffic before the fault (the watchdog learns each instance's inbound pace)
WATCH = 400.0  # after the fault: confirmation, repair, settle window, hold, and room for a wrong next step
OPERATOR_STOP_TIMEOUT = 10.0  # `docker restart`'s default -t
DURATION_PARAMS = ("seconds", "reconnect_after")  # fault parameters that are durations, so scaled


@dataclass(frozen=True)
class Injection:
    """`service:fault key=value ...` as the decision table writes it; `lasts=N` clears it N seconds (at
    the defaults) after it was set; `none` injects nothing."""

    service: str
    fault: str
    params: dict[str, str] = field(default_factory=dict)
    lasts: float | None = None

    @classmethod
    def parse(cls, text: str) -> Injection:
        head, *pairs = text.split()
        if head == "none":
            return cls("", "none")
        service, _, fault = head.partition(":")
        if service not in ("evolution", "dify") or not fault:
            raise ValueError(f"injection {text!r}: expected service:fault [key=value ...] or none")
        params = dict(pair.split("=", 1) for pair in pairs)
        lasts = params.pop("lasts", None)
        return cls(service, fault, params, float(lasts) if lasts is not None else None)


@dataclass(frozen=True)
class Script:
    """What happens after the warm-up: injections at their times (seconds at the defaults), then watched
    until `watch` seconds have passed."""

    steps: tuple[tuple[float, Injection], ...]
    watch: float = WATCH

    @classmethod
    def one(cls, injection: Injection) -> Script:
        return cls(((0.0, injection),))


@dataclass
class Outcome:
    actions: list[dict[str, Any]]  # kind, level, target, result, detail, incident; oldest first
    incidents: list[str]  # incident keys, oldest first
    findings: dict[str, float]  # what was noticed -> seconds after the fault it first was (at the defaults)
    open_at_end: list[str]
    restarts: dict[str, int]  # container restarts seen (evolution, dify), the side's or anyone's
    # seconds after the fault the last customer who waited past the stall time got a reply (at the defaults)
    answered: float | str
    log_tail: str

    def what(self, action: dict[str, Any]) -> str:
        """`kind` plus the service a container restart hit: `restart_container dify`."""
        if action["kind"] != "restart_container":
            return str(action["kind"])
        return "restart_container " + ("dify" if "dify" in action["target"] else "evolution")

    @property
    def noticed(self) -> float | None:
        return min(self.findings.values()) if self.findings else None


Inject = Callable[[Controls, "Trial"], Awaitable[None]]


class TrialEmulators(ContainerEmulators):
    """The demo's emulator containers, with what a side adds to Evolution's command line (a prober), on
    ports below the ephemeral range: dozens of trials side by side make thousands of client connections,
    and a port handed out by `bind(0)` may be taken by one of them before the container binds it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dify_port, self.evolution_port = listen_port(), listen_port()
        self.dify_url = f"http://127.0.0.1:{self.dify_port}"
        self.evolution_url = f"http://127.0.0.1:{self.evolution_port}"

    def start(self) -> None:
        super().start()
        time.sleep(0.5)  # one that lost its port to another process exits at once
        dead = [service for service in self.names if not self.alive(service)]
        if dead:
            raise RuntimeError(f"emulator containers exited after starting: {', '.join(dead)}")


_HANDED_OUT: set[int] = set()  # this process's trials share the range: a port goes to one of them only


def listen_port() -> int:
    """A loopback port free now, from 20000-32767 (clients get theirs from 32768 up), never handed out
    before in this process: with dozens of trials starting, two picking the same free port before either
    container binds it would share one emulator (and one trial's webhooks would go to the other's ear)."""
    while True:
        port = random.randrange(LOW_PORTS[0], LOW_PORTS[1])
        if port in _HANDED_OUT:
            continue
        _HANDED_OUT.add(port)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


class Side(Protocol):
    """Who watches the pair: started once the emulators are up, asked every half second while the
    window lasts, stopped, then asked for its outcome."""

    def run_options(self, emulators: ContainerEmulators) -> dict[str, Mapping[str, Any]]: ...

    evolution_args: tuple[str, ...]
    webhook_instances: tuple[str, ...]  # instances beyond the bots' whose webhooks the side needs
    not_customers: tuple[str, ...]  # instances and numbers of the side's own traffic (a prober)

    async def start(self, trial: Trial, ear: WebhookEar) -> None: ...

    async def tick(self, trial: Trial, since: float) -> None: ...

    async def stop(self) -> None: ...

    def outcome(self, trial: Trial) -> tuple[list[dict[str, Any]], list[str], list[str], str]:
        """(actions, incident keys, incidents still open, log tail)."""
        ...

    findings: dict[str, float]


class Trial:
    """One script, one emulator pair, one side; `run()` returns the Outcome."""

    def __init__(
        self, script: Script, factor: float, workdir: Path, side: Side, starting: asyncio.Semaphore
    ) -> None:
        self.starting = starting  # start-ups one few at a time: dozens of interpreters at once time out
        self.script = script
        self.factor = factor
        self.workdir = workdir
        self.side = side
        self.client = docker.DockerClient(base_url=DOCKER_URL, timeout=60)
        self.emulators = self._emulators()

    def _emulators(self) -> TrialEmulators:
        emulators = TrialEmulators(
            self.workdir / "emulators",
            self.client,
            docker_url=DOCKER_URL,
            traffic_interval=CUSTOMER_PACE * self.factor,
            time_scale=self.factor,
        )
        emulators.run_options = self.side.run_options(emulators)
        emulators.evolution_args = self.side.evolution_args
        return emulators

    async def run(self) -> Outcome:
        self.emulators.workdir.mkdir(parents=True, exist_ok=True)
        for attempt in range(START_ATTEMPTS):
            try:
                async with self.starting:
                    await asyncio.to_thread(self.emulators.start)
                break
            except RuntimeError:
                await asyncio.to_thread(self.emulators.stop)
                if attempt == START_ATTEMPTS - 1:
                    raise
                self.client = docker.DockerClient(base_url=DOCKER_URL, timeout=60)
                self.emulators = self._emulators()
        try:
            return await self._watched()
        finally:
            await asyncio.to_thread(self.emulators.stop)

    async def _watched(self) -> Outcome:
        supervisor = asyncio.create_task(self.emulators.supervise())
        try:
            async with WebhookEar() as ear, httpx.AsyncClient(timeout=10, trust_env=False) as http:
                async with self.starting:
                    await self.side.start(self, ear)
                controls = Controls(http, self.emulators.evolution_url, self.emulators.dify_url)
                # a prober's webhooks come here too
                await controls.set_webhooks(ear.url, (*INSTANCES, *self.side.webhook_instances))
                await asyncio.sleep(WARMUP * self.factor)
                started = time.monotonic()
                injected = asyncio.create_task(self._play(controls))
                while time.monotonic() - started < self.script.watch * self.factor:
                    await self.side.tick(self, started)
                    await asyncio.sleep(0.5)
                await injected
                answered = ear.answered_again(
                    started, STALL * self.factor, time.monotonic(), not_customers=self.side.not_customers
                )
        finally:
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
            await self.side.stop()
        actions, incidents, still_open, log_tail = self.side.outcome(self)
        return Outcome(
            actions=actions,
            incidents=incidents,
            findings=dict(self.side.findings),
            open_at_end=still_open,
            restarts=dict(self.emulators.restarts),
            answered=answered / self.factor if isinstance(answered, float) else answered,
            log_tail=log_tail,
        )

    async def _play(self, controls: Controls) -> None:
        started = time.monotonic()
        lasting = []
        for at, injection in self.script.steps:
            await asyncio.sleep(max(0.0, started + at * self.factor - time.monotonic()))
            lasting.append(asyncio.create_task(self._inject(controls, injection)))
        await asyncio.gather(*lasting)

    async def _inject(self, controls: Controls, inj: Injection) -> None:
        if inj.fault == "none":
            return
        special = SPECIAL.get(f"{inj.service}:{inj.fault}")
        if special is not None:
            await special(controls, self)
        else:
            base = controls.evolution if inj.service == "evolution" else controls.dify
            params: dict[str, object] = {
                k: float(v) * self.factor if k in DURATION_PARAMS else v for k, v in inj.params.items()
            }
            await controls.fault(base, inj.fault, **params)
        if inj.lasts is not None:
            await asyncio.sleep(inj.lasts * self.factor)
            base = controls.evolution if inj.service == "evolution" else controls.dify
            await controls.clear(base, inj.fault)


async def _restart_evolution_by_hand(controls: Controls, trial: Trial) -> None:
    """An operator's `docker restart` of Evolution (what a deploy does): not the watchdog's doing."""
    container = await asyncio.to_thread(trial.client.containers.get, trial.emulators.names["evolution"])
    await asyncio.to_thread(container.restart, timeout=max(1, round(OPERATOR_STOP_TIMEOUT * trial.factor)))


SPECIAL: dict[str, Inject] = {
    "dify:forget_after": lambda c, _t: _forgetful_dify(c),
    "evolution:media_wedge": lambda c, _t: _image_wedge(c),
    "evolution:restart_by_hand": _restart_evolution_by_hand,
}


async def run_trials(
    scripts: Sequence[tuple[str, Script]],
    factor: float,
    side: Callable[[], Side],
    *,
    at_once: int = 4,
    starting: asyncio.Semaphore | None = None,
) -> dict[str, Outcome | BaseException]:
    """Every (label, script) in its own trial against a fresh `side()`, `at_once` side by side, the
    longest first."""
    gate = asyncio.Semaphore(at_once)
    starting = starting or asyncio.Semaphore(STARTS_AT_ONCE)
    root = Path(tempfile.mkdtemp(prefix="evo-watchdog-trials-"))

    async def one(index: int, script: Script) -> Outcome:
        async with gate:
            workdir = root / f"trial-{index}"
            workdir.mkdir()
            return await Trial(script, factor, workdir, side(), starting).run()

    order = sorted(range(len(scripts)), key=lambda i: -scripts[i][1].watch)
    results = await asyncio.gather(*(one(i, scripts[i][1]) for i in order), return_exceptions=True)
    return {scripts[i][0]: result for i, result in zip(order, results, strict=True)}
