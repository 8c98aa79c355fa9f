"""The two sides a trial (benchmarks/trials.py) can watch a pair with.

* `WatchdogSide`: `evo-watchdog run` as a user starts it, at the shipped defaults (times the trial's
  factor) in recovery mode auto, plus any `extra` settings (the canary on, say); its journal is the outcome.
* `BaselineSide`: what is commonly deployed instead: Docker's HEALTHCHECK at Docker's defaults (every 30 s,
  30 s timeout, 3 retries) on Evolution's `GET /` and on Dify's `/health` (upstream's own check), and
  docker-autoheal's behaviour (every 5 s, restart each unhealthy container with `t=10`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import IO, Any

import httpx

from benchmarks.ear import WebhookEar
from benchmarks.trials import Trial, listen_port
from watchdog.demo.containers import ContainerEmulators
from watchdog.demo.emulators import HEARTBEAT_ARGS, HEARTBEAT_SETTINGS, PROBER, PROBER_NUMBER
from watchdog.recovery.journal import Journal
from watchdog.timescale import scaled_defaults

HEALTH_INTERVAL, HEALTH_TIMEOUT, HEALTH_RETRIES = 30.0, 30.0, 3  # Docker's HEALTHCHECK defaults
AUTOHEAL_POLL, AUTOHEAL_STOP_TIMEOUT = 5.0, 10.0  # docker-autoheal: AUTOHEAL_INTERVAL=5, restart t=10
NS = 1_000_000_000


class WatchdogSide:
    def __init__(self, extra: Mapping[str, str] | None = None, *, heartbeat: bool = False) -> None:
        self.extra = {**(extra or {}), **(HEARTBEAT_SETTINGS if heartbeat else {})}
        self.evolution_args: tuple[str, ...] = HEARTBEAT_ARGS if heartbeat else ()
        self.webhook_instances: tuple[str, ...] = (PROBER,) if heartbeat else ()
        self.not_customers: tuple[str, ...] = (PROBER, PROBER_NUMBER) if heartbeat else ()
        self.findings: dict[str, float] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._http = httpx.AsyncClient(timeout=10, trust_env=False)
        self._url = ""

    def run_options(self, emulators: ContainerEmulators) -> dict[str, Mapping[str, Any]]:
        return {}

    def env(self, trial: Trial, port: int) -> dict[str, str]:
        inherited = {
            k: v for k, v in os.environ.items() if not k.startswith(("EVOLUTION_", "DIFY_", "WATCHDOG_"))
        }
        extra = {
            k: f"{float(v) * trial.factor:g}" if k.endswith("_SECONDS") else v for k, v in self.extra.items()
        }
        return {
            **inherited,
            **scaled_defaults(trial.factor),
            **trial.emulators.connection_env(),
            **trial.emulators.watchdog_env(),
            "WATCHDOG_RECOVERY_MODE": "auto",
            "WATCHDOG_LISTEN": f"127.0.0.1:{port}",
            "WATCHDOG_STATE_PATH": str(trial.workdir / "journal.db"),
            **extra,
        }

    async def start(self, trial: Trial, ear: WebhookEar) -> None:
        port = listen_port()
        self._url = f"http://127.0.0.1:{port}"
        self._log = (trial.workdir / "watchdog.log").open("wb")
        self._proc = self._spawn(trial, port, self._log)
        await self._until_answers()
        ear.forward = self._url + "/webhook/evolution"

    def _spawn(self, trial: Trial, port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
        """`evo-watchdog run` as a user starts it, in a directory with no .env of its own."""
        return subprocess.Popen(
            [sys.executable, "-m", "watchdog", "run"],
            env=self.env(trial, port),
            cwd=trial.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    async def _until_answers(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await self._http.get(self._url + "/healthz")).status_code in (200, 503):
                    return
            await asyncio.sleep(0.2)
        raise RuntimeError(f"the watchdog did not answer on {self._url} within {timeout:g}s")

    async def tick(self, trial: Trial, since: float) -> None:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            status = (await self._http.get(self._url + "/api/status")).json()
            for finding in status.get("findings", []):
                self.findings.setdefault(finding["kind"], (time.monotonic() - since) / trial.factor)

    async def stop(self) -> None:
        await self._http.aclose()
        if self._proc is not None:
            self._proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(_wait, self._proc)
        if self._log is not None:
            self._log.close()

    def outcome(self, trial: Trial) -> tuple[list[dict[str, Any]], list[str], list[str], str]:
        journal = Journal(trial.workdir / "journal.db", readonly=True)
        try:
            history = list(reversed(journal.history(100)))
        finally:
            journal.close()
        actions = sorted(
            ({**a, "incident": incident["key"]} for incident in history for a in incident["actions"]),
            key=lambda a: a["started_at"],
        )
        still_open = [i["key"] for i in history if i["closed_at"] is None]
        log_tail = (trial.workdir / "watchdog.log").read_text(errors="replace")[-200_000:]
        return actions, [i["key"] for i in history], still_open, log_tail


class BaselineSide:
    evolution_args: tuple[str, ...] = ()
    webhook_instances: tuple[str, ...] = ()
    not_customers: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.findings: dict[str, float] = {}
        self._restarts: list[dict[str, Any]] = []
        self._next_poll = 0.0
        self._factor = 1.0

    def run_options(self, emulators: ContainerEmulators) -> dict[str, Mapping[str, Any]]:
        return {
            "evolution": {"healthcheck": self._check(f"{emulators.evolution_url}/", emulators.time_scale)},
            "dify": {"healthcheck": self._check(f"{emulators.dify_url}/health", emulators.time_scale)},
        }

    @staticmethod
    def _check(url: str, factor: float) -> dict[str, Any]:
        timeout = HEALTH_TIMEOUT * factor
        return {
            "test": ["CMD", "/usr/bin/curl", "-fsS", "-o", "/dev/null", "--max-time", f"{timeout:g}", url],
            "interval": int(HEALTH_INTERVAL * factor * NS),
            "timeout": int(timeout * NS),
            "retries": HEALTH_RETRIES,
            "start_period": 0,
        }

    async def start(self, trial: Trial, ear: WebhookEar) -> None:
        self._factor = trial.factor

    async def tick(self, trial: Trial, since: float) -> None:
        """docker-autoheal's loop: every poll, restart what Docker calls unhealthy."""
        now = time.monotonic()
        unhealthy = []
        for service, name in trial.emulators.names.items():
            state = await asyncio.to_thread(_state, trial, name)
            if state.get("Health", {}).get("Status") == "unhealthy":
                unhealthy.append((service, name))
                self.findings.setdefault(f"{service} unhealthy", (now - since) / trial.factor)
        if now < self._next_poll:
            return
        self._next_poll = now + AUTOHEAL_POLL * trial.factor
        for service, name in unhealthy:
            started = time.time()
            stop_timeout = max(1, round(AUTOHEAL_STOP_TIMEOUT * trial.factor))
            container = await asyncio.to_thread(trial.client.containers.get, name)
            await asyncio.to_thread(container.restart, timeout=stop_timeout)
            self._restarts.append(
                {
                    "kind": "restart_container",
                    "level": 3,
                    "target": name,
                    "result": "ok",
                    "detail": "autoheal: unhealthy",
                    "incident": f"service:{service}",
                    "started_at": started,
                }
            )

    async def stop(self) -> None:
        return None

    def outcome(self, trial: Trial) -> tuple[list[dict[str, Any]], list[str], list[str], str]:
        incidents = list(dict.fromkeys(r["incident"] for r in self._restarts))
        return list(self._restarts), incidents, [], ""


def _state(trial: Trial, name: str) -> dict[str, Any]:
    try:
        state: dict[str, Any] = trial.client.api.inspect_container(name)["State"]
    except Exception:  # a container being restarted may be briefly unknown
        return {}
    return state


def _wait(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
