"""The demo's Evolution and Dify. Two backends share the commands and ports:

* `ProcessEmulators`: child processes, restarted by a tiny supervisor when the recovery engine's command
  backend asks (`touch <dir>/restart-<service>`), so an L3 restart is a real process restart: faults and
  memory gone, the JSON "database" kept.
* `ContainerEmulators` (watchdog/demo/containers.py): the same processes as Docker containers, restarted
  by the watchdog's Docker executor.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path

import httpx

from watchdog.serving import free_port

EVOLUTION_KEY = "demo-evolution-key"
DIFY_KEY = "app-demo"
INSTANCES = ("loja", "suporte")
# The heartbeat (docs/heartbeat.md): a bare prober instance with its own number writing to loja's number.
PROBER, PROBER_NUMBER, BOT_NUMBER = "prober", "5511990000999", "5511990000001"
HEARTBEAT_ARGS = ("--bare-instances", PROBER, "--number", f"{PROBER}={PROBER_NUMBER}", "--number",
                  f"{INSTANCES[0]}={BOT_NUMBER}")  # fmt: skip
HEARTBEAT_SETTINGS = {
    "WATCHDOG_E2E_FROM_INSTANCE": PROBER,
    "WATCHDOG_E2E_TO_NUMBER": f"{INSTANCES[0]}={BOT_NUMBER}",
}
SERVICES = ("dify", "evolution")  # in start order: Evolution's bots call Dify
START_DEADLINE = 20.0
# Upstream's reply delays (>= 2 s: a 1 s send timer plus 1 s of typing) at the demo's pace: its turnaround
# threshold is 1 s where the product's default is 5 s.
TIME_SCALE = 0.2


class EmulatorSet(ABC):
    """Ports, URLs and command lines of both emulators; subclasses decide how they run."""

    backend = ""
    evolution_args: tuple[str, ...] = ()  # added to Evolution's command line (HEARTBEAT_ARGS: the prober)

    def __init__(
        self, workdir: Path, *, traffic_interval: float = 0.5, time_scale: float = TIME_SCALE
    ) -> None:
        self.workdir = workdir
        self.traffic_interval = traffic_interval
        self.time_scale = time_scale
        self.dify_port, self.evolution_port = free_port(), free_port()
        self.dify_url = f"http://127.0.0.1:{self.dify_port}"
        self.evolution_url = f"http://127.0.0.1:{self.evolution_port}"
        self.restarts = {"evolution": 0, "dify": 0}

    def command(self, service: str) -> list[str]:
        base = [sys.executable, "-m", "watchdog", "sim", service]
        if service == "dify":
            return [*base, "--port", str(self.dify_port), "--api-key", DIFY_KEY,
                    "--state-file", str(self.workdir / "dify-db.json")]  # fmt: skip
        return [
            *base, "--port", str(self.evolution_port), "--api-key", EVOLUTION_KEY,
            "--instances", ",".join(INSTANCES), "--dify-url", self.dify_url + "/v1", "--dify-key", DIFY_KEY,
            "--debounce", "0.1", "--traffic-interval", str(self.traffic_interval), "--contacts", "3",
            "--time-scale", str(self.time_scale),
            "--media-ratio", "0.2", "--state-file", str(self.workdir / "evolution-db.json"),
            *self.evolution_args,
        ]  # fmt: skip

    def connection_env(self) -> dict[str, str]:
        """Settings that point a watchdog at these emulators (URLs and keys)."""
        return {
            "EVOLUTION_URL": self.evolution_url,
            "EVOLUTION_API_KEY": EVOLUTION_KEY,
            "DIFY_URL": self.dify_url + "/v1",
            "DIFY_API_KEY": DIFY_KEY,
        }

    @abstractmethod
    def watchdog_env(self) -> dict[str, str]:
        """Settings that tell the watchdog how to restart these emulators (its L3)."""

    @abstractmethod
    def describe(self) -> str:
        """Which backend, in a sentence or two for the user."""

    @abstractmethod
    def start(self) -> None:
        """Both emulators up and answering (raises RuntimeError otherwise)."""

    @abstractmethod
    def stop(self) -> None:
        """Nothing left running; safe after a partial start."""

    @abstractmethod
    async def supervise(self) -> None:
        """Runs beside the demo until cancelled."""

    @abstractmethod
    def alive(self, service: str) -> bool:
        """Is the service's process or container still there?"""

    @abstractmethod
    def log_hint(self, service: str) -> str:
        """Where its output can be read."""

    def wait_up(self, service: str) -> None:
        url = self.dify_url + "/health" if service == "dify" else self.evolution_url + "/"
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if not self.alive(service):
                break
            time.sleep(0.1)
        raise RuntimeError(f"the {service} emulator did not start; see {self.log_hint(service)}")


class ProcessEmulators(EmulatorSet):
    backend = "processes"

    def __init__(
        self, workdir: Path, *, traffic_interval: float = 0.5, time_scale: float = TIME_SCALE
    ) -> None:
        super().__init__(workdir, traffic_interval=traffic_interval, time_scale=time_scale)
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def describe(self) -> str:
        return (
            "Backend: child processes; an L3 restart runs WATCHDOG_RESTART_COMMAND_*, which asks a\n"
            "supervisor to restart the emulator's process."
        )

    def restart_command(self, service: str) -> str:
        """What WATCHDOG_RESTART_COMMAND_<SERVICE> runs: ask the supervisor for a restart."""
        return f"touch {self.workdir / f'restart-{service}'}"

    def watchdog_env(self) -> dict[str, str]:
        return {
            "WATCHDOG_RESTART_COMMAND_EVOLUTION": self.restart_command("evolution"),
            "WATCHDOG_RESTART_COMMAND_DIFY": self.restart_command("dify"),
        }

    def log_hint(self, service: str) -> str:
        return str(self.workdir / f"{service}.log")

    def alive(self, service: str) -> bool:
        return self.processes[service].poll() is None

    def _spawn(self, service: str) -> None:
        log = (self.workdir / f"{service}.log").open("ab")
        self.processes[service] = subprocess.Popen(
            self.command(service), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def start(self) -> None:
        for service in SERVICES:
            self._spawn(service)
            self.wait_up(service)

    async def supervise(self) -> None:
        """Restart a service when its request file appears (the command backend's restart)."""
        while True:
            for service in SERVICES:
                request = self.workdir / f"restart-{service}"
                if request.exists():
                    await asyncio.to_thread(self._restart, service)
                    request.unlink(missing_ok=True)
            await asyncio.sleep(0.1)

    def _restart(self, service: str) -> None:
        _end(self.processes[service])
        self._spawn(service)
        self.wait_up(service)
        self.restarts[service] += 1

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            _end(process)


def _end(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
