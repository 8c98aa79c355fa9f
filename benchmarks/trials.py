"""One fault against the watchdog as a user runs it: a pair of emulator containers, `evo-watchdog run` at
the shipped defaults in recovery mode auto (every duration times one factor, see watchdog/timescale.py),
customers writing, the fault injected, then a fixed window watched. What the journal says at the end is
the outcome: the actions, their targets, the pages. Trials run side by side, each with its own pair.

Used by the decision-table test (tests/integration/test_decision_table.py) and the benchmarks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import docker
import httpx

from watchdog.demo.containers import ContainerEmulators
from watchdog.demo.phases import Controls, _forgetful_dify, _image_wedge
from watchdog.recovery.journal import Journal
from watchdog.serving import free_port
from watchdog.timescale import scaled_defaults

DOCKER_URL = "unix:///var/run/docker.sock"
CUSTOMER_PACE = 2.0  # seconds between customers' messages, at the defaults
WARMUP = 100.0  # healthy traffic before the fault (the watchdog learns each instance's inbound pace)
WATCH = 400.0  # after the fault: confirmation, repair, settle window, hold, and room for a wrong next step
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
    actions: list[dict[str, Any]]  # journaled ones plus their incident key, oldest first
    incidents: list[str]  # incident keys, oldest first
    findings: dict[str, float]  # finding kind -> seconds after the fault it was first seen (at the defaults)
    healthy_at_end: bool
    open_at_end: list[str]
    restarts: dict[str, int]  # container restarts seen (evolution, dify), the watchdog's or anyone's
    log_tail: str

    def what(self, action: dict[str, Any]) -> str:
        """`kind` plus the service a container restart hit: `restart_container dify`."""
        if action["kind"] != "restart_container":
            return str(action["kind"])
        return "restart_container " + ("dify" if "dify" in action["target"] else "evolution")


Inject = Callable[[Controls, "Trial"], Awaitable[None]]


class Trial:
    """One script, one emulator pair, one watchdog; `run()` returns the Outcome."""

    def __init__(self, script: Script, factor: float, workdir: Path) -> None:
        self.script = script
        self.factor = factor
        self.workdir = workdir
        self.client = docker.DockerClient(base_url=DOCKER_URL, timeout=60)
        self.emulators = ContainerEmulators(
            workdir / "emulators",
            self.client,
            docker_url=DOCKER_URL,
            traffic_interval=CUSTOMER_PACE * factor,
            time_scale=factor,
        )

    def env(self, port: int) -> dict[str, str]:
        inherited = {
            k: v for k, v in os.environ.items() if not k.startswith(("EVOLUTION_", "DIFY_", "WATCHDOG_"))
        }
        return {
            **inherited,
            **scaled_defaults(self.factor),
            **self.emulators.connection_env(),
            **self.emulators.watchdog_env(),
            "WATCHDOG_RECOVERY_MODE": "auto",
            "WATCHDOG_LISTEN": f"127.0.0.1:{port}",
            "WATCHDOG_STATE_PATH": str(self.workdir / "journal.db"),
        }

    async def run(self) -> Outcome:
        self.emulators.workdir.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self.emulators.start)
        try:
            return await self._watched()
        finally:
            await asyncio.to_thread(self.emulators.stop)

    async def _watched(self) -> Outcome:
        port = free_port()
        log = (self.workdir / "watchdog.log").open("wb")
        proc = self._spawn(port, log)
        url = f"http://127.0.0.1:{port}"
        supervisor = asyncio.create_task(self.emulators.supervise())
        try:
            async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
                await _until_answers(http, url)
                controls = Controls(http, self.emulators.evolution_url, self.emulators.dify_url)
                await controls.set_webhooks(url + "/webhook/evolution")
                await asyncio.sleep(WARMUP * self.factor)
                findings: dict[str, float] = {}
                started = time.monotonic()
                injected = asyncio.create_task(self._play(controls))
                status: dict[str, Any] = {}
                while time.monotonic() - started < self.script.watch * self.factor:
                    with contextlib.suppress(httpx.HTTPError, ValueError):
                        status = (await http.get(url + "/api/status")).json()
                        for finding in status.get("findings", []):
                            findings.setdefault(finding["kind"], (time.monotonic() - started) / self.factor)
                    await asyncio.sleep(0.5)
                await injected
        finally:
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(_wait, proc)
            log.close()
        return self._outcome(findings, status)

    def _spawn(self, port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
        """`evo-watchdog run` as a user starts it, in a directory with no .env of its own."""
        return subprocess.Popen(
            [sys.executable, "-m", "watchdog", "run"],
            env=self.env(port),
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
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

    def _outcome(self, findings: dict[str, float], status: dict[str, Any]) -> Outcome:
        journal = Journal(self.workdir / "journal.db", readonly=True)
        try:
            history = list(reversed(journal.history(100)))
        finally:
            journal.close()
        log_tail = (self.workdir / "watchdog.log").read_text(errors="replace")[-4000:]
        return Outcome(
            actions=sorted(
                ({**a, "incident": incident["key"]} for incident in history for a in incident["actions"]),
                key=lambda a: a["started_at"],
            ),
            incidents=[incident["key"] for incident in history],
            findings=findings,
            healthy_at_end=bool(status.get("healthy")),
            open_at_end=[i["key"] for i in history if i["closed_at"] is None],
            restarts=dict(self.emulators.restarts),
            log_tail=log_tail,
        )


async def _restart_evolution_by_hand(controls: Controls, trial: Trial) -> None:
    """An operator's `docker restart` of Evolution (what a deploy does): not the watchdog's doing."""
    name = trial.emulators.names["evolution"]
    await asyncio.to_thread(lambda: trial.client.containers.get(name).restart(timeout=10))


SPECIAL: dict[str, Inject] = {
    "dify:forget_after": lambda c, _t: _forgetful_dify(c),
    "evolution:media_wedge": lambda c, _t: _image_wedge(c),
    "evolution:restart_by_hand": _restart_evolution_by_hand,
}


async def _until_answers(http: httpx.AsyncClient, url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get(url + "/healthz")).status_code in (200, 503):
                return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the watchdog did not answer on {url} within {timeout:g}s")


def _wait(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def run_trials(
    scripts: Sequence[tuple[str, Script]], factor: float, *, at_once: int = 4
) -> dict[str, Outcome | BaseException]:
    """Every (label, script) in its own trial, `at_once` side by side, the longest first."""
    gate = asyncio.Semaphore(at_once)
    root = Path(tempfile.mkdtemp(prefix="evo-watchdog-trials-"))

    async def one(index: int, script: Script) -> Outcome:
        async with gate:
            workdir = root / f"trial-{index}"
            workdir.mkdir()
            return await Trial(script, factor, workdir).run()

    order = sorted(range(len(scripts)), key=lambda i: -scripts[i][1].watch)
    results = await asyncio.gather(*(one(i, scripts[i][1]) for i in order), return_exceptions=True)
    return {scripts[i][0]: result for i, result in zip(order, results, strict=True)}
