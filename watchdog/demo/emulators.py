"""The demo's Evolution and Dify: child processes, restarted by a tiny supervisor when the recovery
engine's command backend asks (`touch <dir>/restart-<service>`), so an L3 restart is a real process
restart: faults and memory gone, the JSON "database" kept."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx

from watchdog.serving import free_port

EVOLUTION_KEY = "demo-evolution-key"
DIFY_KEY = "app-demo"
INSTANCES = ("loja", "suporte")
START_DEADLINE = 20.0


class Emulators:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.dify_port, self.evolution_port = free_port(), free_port()
        self.dify_url = f"http://127.0.0.1:{self.dify_port}"
        self.evolution_url = f"http://127.0.0.1:{self.evolution_port}"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts = {"evolution": 0, "dify": 0}

    def command(self, service: str) -> list[str]:
        base = [sys.executable, "-m", "watchdog", "sim", service]
        if service == "dify":
            return [*base, "--port", str(self.dify_port), "--api-key", DIFY_KEY,
                    "--state-file", str(self.workdir / "dify-db.json")]  # fmt: skip
        return [
            *base, "--port", str(self.evolution_port), "--api-key", EVOLUTION_KEY,
            "--instances", ",".join(INSTANCES), "--dify-url", self.dify_url + "/v1", "--dify-key", DIFY_KEY,
            "--debounce", "0.1", "--traffic-interval", "0.5", "--contacts", "3", "--media-ratio", "0.2",
            "--state-file", str(self.workdir / "evolution-db.json"),
        ]  # fmt: skip

    def restart_command(self, service: str) -> str:
        """What WATCHDOG_RESTART_COMMAND_<SERVICE> runs: ask the supervisor for a restart."""
        return f"touch {self.workdir / f'restart-{service}'}"

    def _spawn(self, service: str) -> None:
        log = (self.workdir / f"{service}.log").open("ab")
        self.processes[service] = subprocess.Popen(
            self.command(service), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def start(self) -> None:
        for service in ("dify", "evolution"):
            self._spawn(service)
            self._wait_up(service)

    def _wait_up(self, service: str) -> None:
        url = self.dify_url + "/health" if service == "dify" else self.evolution_url + "/"
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if self.processes[service].poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"the {service} emulator did not start; see {self.workdir / (service + '.log')}")

    async def supervise(self) -> None:
        """Restart a service when its request file appears (the command backend's restart)."""
        while True:
            for service in ("dify", "evolution"):
                request = self.workdir / f"restart-{service}"
                if request.exists():
                    await asyncio.to_thread(self._restart, service)
                    request.unlink(missing_ok=True)
            await asyncio.sleep(0.1)

    def _restart(self, service: str) -> None:
        process = self.processes[service]
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self._spawn(service)
        self._wait_up(service)
        self.restarts[service] += 1

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
