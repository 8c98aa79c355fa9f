"""`evo-watchdog demo`: the watchdog against the built-in emulators, with the incident's faults injected
one after another and repaired by the watchdog's own recovery engine (mode auto).

Simulated customers write to two instances; Evolution's webhooks reach the watchdog, which times every
reply. The emulators run as child processes; an L3 restart goes through the command backend and a
small supervisor restarts the process for real. Nothing is left running at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

from watchdog.app import Daemon, Watchdog
from watchdog.clock import SystemClock
from watchdog.config import Settings
from watchdog.demo.emulators import DIFY_KEY, EVOLUTION_KEY, INSTANCES, Emulators
from watchdog.demo.phases import PHASES, Controls, Phase
from watchdog.logsetup import configure_logging
from watchdog.probes.suite import http_client
from watchdog.report import render_table

RECOVERY_PATIENCE = 45.0


@dataclass
class Outcome:
    phase: Phase
    detected_after: float | None
    recovered_after: float | None
    actions: list[str]

    def as_dict(self) -> dict[str, object]:
        levels = sorted({int(a.split()[0][1:]) for a in self.actions if a.endswith(" ok")})
        return {
            "fault": self.phase.title,
            "finding": self.phase.expected,
            "detected_after_seconds": _rounded(self.detected_after),
            "recovered_after_seconds": _rounded(self.recovered_after),
            "actions": self.actions,
            "expected_level": self.phase.repaired_at,
            "levels_ok": levels,
            "as_expected": self.detected_after is not None
            and self.recovered_after is not None
            and self.phase.repaired_at in levels,
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def run_demo(*, seconds: float = 0.0, json_path: Path | None = None) -> int:
    """`seconds` > 0 overrides each phase's detection patience; `json_path` gets the summary as JSON."""
    with tempfile.TemporaryDirectory(prefix="evo-watchdog-demo-") as workdir:
        emulators = Emulators(Path(workdir))
        try:
            emulators.start()
            return asyncio.run(_demo(emulators, Path(workdir), seconds, json_path))
        finally:
            emulators.stop()


def _settings(emulators: Emulators, workdir: Path) -> Settings:
    return Settings.from_env(
        {
            "EVOLUTION_URL": emulators.evolution_url,
            "EVOLUTION_API_KEY": EVOLUTION_KEY,
            "DIFY_URL": emulators.dify_url + "/v1",
            "DIFY_API_KEY": DIFY_KEY,
            "WATCHDOG_PROBE_INTERVAL_SECONDS": "1",
            "WATCHDOG_PROBE_TIMEOUT_SECONDS": "0.5",
            "WATCHDOG_TURNAROUND_THRESHOLD_SECONDS": "1",
            "WATCHDOG_STALL_SECONDS": "2",
            "WATCHDOG_LISTEN": "127.0.0.1:0",
            "WATCHDOG_STATE_PATH": str(workdir / "journal.db"),
            "WATCHDOG_RECOVERY_MODE": "auto",
            "WATCHDOG_RECOVERY_HOLD_SECONDS": "2",
            "WATCHDOG_MAX_RESTARTS_PER_HOUR": "5",
            "WATCHDOG_FALLBACK_MESSAGE": "Desculpe a demora! Já voltamos a responder.",
            "WATCHDOG_RESTART_COMMAND_EVOLUTION": emulators.restart_command("evolution"),
            "WATCHDOG_RESTART_COMMAND_DIFY": emulators.restart_command("dify"),
            "WATCHDOG_RESTART_TIMEOUT_SECONDS": "20",
        }
    )


async def _demo(emulators: Emulators, workdir: Path, seconds: float, json_path: Path | None) -> int:
    configure_logging(fmt="text", level="ERROR")  # the demo narrates; the daemon's own log is for operators
    settings = _settings(emulators, workdir)
    print(
        f"Emulators (child processes): Evolution API {emulators.evolution_url}  Dify {emulators.dify_url}/v1"
    )
    print(
        "No Docker needed: an L3 restart runs WATCHDOG_RESTART_COMMAND_*, which restarts the child process."
    )
    async with http_client(settings) as http, httpx.AsyncClient(timeout=5) as control:
        controls = Controls(control, emulators.evolution_url, emulators.dify_url)
        registry = CollectorRegistry()
        watchdog = Watchdog(settings, clock=SystemClock(), registry=registry, http=http)
        findings = await watchdog.probe_cycle()
        print("\n`evo-watchdog check` on the healthy stack:\n")
        print(render_table(watchdog.board.results, findings))
        daemon = Daemon(watchdog)
        server = asyncio.create_task(daemon.run())
        supervisor = asyncio.create_task(emulators.supervise())
        outcomes: list[Outcome] = []
        try:
            await controls.set_webhooks(daemon.url + "/webhook/evolution")
            print(f"\nWatchdog on {daemon.url} (/metrics, /healthz, /api/status): probing every 1 s, timing")
            print("every reply from Evolution's webhooks, recovery mode auto.\n")
            await asyncio.sleep(3)  # a few healthy turns first
            for phase in PHASES:
                outcomes.append(await _play(phase, watchdog, controls, seconds or phase.patience))
        finally:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
            daemon.stop()
            await server
    _summary(outcomes, emulators)
    _turnaround(registry, settings.turnaround_threshold_seconds)
    if json_path is not None:
        summary = {"phases": [o.as_dict() for o in outcomes], "emulator_restarts": emulators.restarts}
        await asyncio.to_thread(json_path.write_text, json.dumps(summary, indent=2))
    ok = all(o.detected_after is not None and o.recovered_after is not None for o in outcomes)
    return 0 if ok else 1


async def _play(phase: Phase, watchdog: Watchdog, controls: Controls, patience: float) -> Outcome:
    """Inject; wait for the finding; wait until the watchdog's own repairs close every incident."""
    print(f"▶ fault: {phase.title}")
    started, started_wall = time.monotonic(), time.time()
    await phase.inject(controls)
    seen = await _wait(lambda: any(f.kind == phase.expected for f in watchdog.board.findings), patience)
    detected_after = None if seen is None else time.monotonic() - started
    if detected_after is None:
        print(f"  ✗ not detected within {patience:g}s (expected {phase.expected})")
    else:
        found = next(f for f in watchdog.board.findings if f.kind == phase.expected)
        print(f"  ✓ detected {phase.expected} after {detected_after:.1f}s: {found.summary}")
    journal = watchdog.recovery.journal
    recovered = await _wait(
        lambda: watchdog.board.healthy() and not journal.open_incidents(), RECOVERY_PATIENCE
    )
    recovered_after = None if recovered is None else time.monotonic() - started
    actions = [f"L{int(a.level)} {a.kind} {a.result}" for a in journal.recent_actions(started_wall)]
    for line in _distinct(actions):
        print(f"  ↺ {line}")
    if recovered_after is None:
        print(f"  ✗ not recovered within {RECOVERY_PATIENCE:g}s\n")
    else:
        print(f"  ✓ recovered, verified healthy, {recovered_after:.1f}s after the fault\n")
    return Outcome(phase, detected_after, recovered_after, actions)


def _distinct(lines: list[str]) -> list[str]:
    counts: dict[str, int] = {}
    for line in lines:
        counts[line] = counts.get(line, 0) + 1
    return [f"{line} x{n}" if n > 1 else line for line, n in counts.items()]


async def _wait(condition: Callable[[], bool], seconds: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return None


def _summary(outcomes: list[Outcome], emulators: Emulators) -> None:
    print("Summary")
    print(
        f"  {'fault':<29} {'finding':<22} {'detected':>8}  {'repairs (level, action)':<42} {'recovered':>9}"
    )
    for o in outcomes:
        detected = f"{o.detected_after:.1f}s" if o.detected_after is not None else "missed"
        recovered = f"{o.recovered_after:.1f}s" if o.recovered_after is not None else "no"
        repairs = ", ".join(_distinct([a.rsplit(" ", 1)[0] for a in o.actions if a.endswith(" ok")])) or "-"
        print(f"  {o.phase.title:<29} {o.phase.expected:<22} {detected:>8}  {repairs:<42} {recovered:>9}")
    restarts = ", ".join(f"{service} {n}x" for service, n in emulators.restarts.items())
    print(f"  emulator processes restarted by the command backend: {restarts}")


def _turnaround(registry: CollectorRegistry, threshold: float) -> None:
    """Turnaround by kind over the whole demo, read back from the watchdog's own histogram."""
    print(f"\nBot turnaround (threshold {threshold:g}s), from watchdog_turnaround_seconds:")

    def total(metric: str, kind: str) -> float:
        return sum(registry.get_sample_value(metric, {"instance": i, "kind": kind}) or 0 for i in INSTANCES)

    for kind in ("text", "media"):
        count = total("watchdog_turnaround_seconds_count", kind)
        mean = f"{total('watchdog_turnaround_seconds_sum', kind) / count:.2f}s mean" if count else "no turns"
        breaches = total("watchdog_turnaround_breaches_total", kind)
        print(f"  {kind:<6} {int(count):>4} replies, {mean}, {int(breaches)} over the threshold")
