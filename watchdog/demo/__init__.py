"""`evo-watchdog demo`: the watchdog against the built-in emulators, with the incident's faults injected
one after another and repaired by the watchdog's own recovery engine (mode auto).

Simulated customers write to two instances; Evolution's webhooks reach the watchdog, which times every
reply, and the end-to-end heartbeat's prober, a third instance, writes to the first one's number. The
emulators run as Docker containers when an engine answers (L3 through the Docker API), else as child
processes (L3 through the command backend). Nothing is left running at the end, Ctrl-C included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

from watchdog.app import Daemon, Watchdog
from watchdog.clock import SystemClock
from watchdog.commands.render import render_table
from watchdog.config import Settings
from watchdog.demo.backend import choose_backend, no_interrupts, terminate_as_interrupt
from watchdog.demo.containers import DEFAULT_DOCKER_URL
from watchdog.demo.emulators import HEARTBEAT_ARGS, HEARTBEAT_SETTINGS, INSTANCES, PROBER, EmulatorSet
from watchdog.demo.phases import CUSTOMER_PACE, FACTOR, FAST, NORMAL, WARMUP, Controls, Pace, Phase, scaled
from watchdog.demo.report import (
    Outcome,
    distinct,
    heartbeat_legs,
    print_heartbeat,
    print_summary,
    print_turnaround,
    summary_json,
    turnaround,
)
from watchdog.logsetup import configure_logging
from watchdog.model import Finding
from watchdog.probes.suite import http_client
from watchdog.timescale import scaled_settings

# At the shipped defaults, as every wait of the demo (phases.scaled() brings them to its pace).
RECOVERY_PATIENCE = 450.0  # confirmation, the restart, its verification and the recovery hold
PHASE_BUDGET = 400.0  # per fault on average: the demo ends by itself (all six: at most 4 minutes)
MIN_PHASE_TIME = 100.0
EXIT_INTERRUPTED = 130


def run_demo(
    *,
    seconds: float = 0.0,
    json_path: Path | None = None,
    fast: bool = False,
    keep: bool = False,
    processes: bool = False,
    docker_url: str = DEFAULT_DOCKER_URL,
) -> int:
    """`seconds` > 0 overrides each phase's detection patience; `json_path` gets the summary as JSON."""
    pace = FAST if fast else NORMAL
    with tempfile.TemporaryDirectory(prefix="evo-watchdog-demo-") as workdir:
        try:
            with terminate_as_interrupt():  # the engine check runs a container: it cleans up too
                emulators, reason = choose_backend(
                    Path(workdir),
                    scaled(CUSTOMER_PACE),
                    time_scale=FACTOR,
                    processes=processes,
                    docker_url=docker_url,
                )
        except KeyboardInterrupt:
            print("\nInterrupted.")
            return EXIT_INTERRUPTED
        print(f"{emulators.describe()}\n({reason})")
        emulators.evolution_args = HEARTBEAT_ARGS  # the heartbeat's prober, on the same Evolution
        try:
            with terminate_as_interrupt():
                emulators.start()
                return asyncio.run(_demo(emulators, Path(workdir), pace, seconds, json_path, keep=keep))
        except KeyboardInterrupt:
            print("\nInterrupted.")
            return EXIT_INTERRUPTED
        finally:
            with no_interrupts():
                emulators.stop()
            print(f"Stopped and removed the emulators ({emulators.backend}): nothing left running.")


def demo_settings(emulators: EmulatorSet, workdir: Path) -> Settings:
    """The shipped defaults times FACTOR, every duration alike (the heartbeat's interval floor too:
    timescale.scaled_settings); the rest is plumbing (where the emulators are and how to restart them,
    where to listen and journal) and three features a user turns on: recovery mode auto, the fallback
    reply and the end-to-end heartbeat."""
    return scaled_settings(
        FACTOR,
        {
            **HEARTBEAT_SETTINGS,
            **emulators.connection_env(),
            **emulators.watchdog_env(),
            "WATCHDOG_LISTEN": "127.0.0.1:0",
            "WATCHDOG_STATE_PATH": str(workdir / "journal.db"),
            "WATCHDOG_RECOVERY_MODE": "auto",
            "WATCHDOG_FALLBACK_MESSAGE": "Desculpe a demora! Já voltamos a responder.",
        },
    )


async def _demo(
    emulators: EmulatorSet, workdir: Path, pace: Pace, seconds: float, json_path: Path | None, *, keep: bool
) -> int:
    configure_logging(fmt="text", level="ERROR")  # the demo narrates; the daemon's own log is for operators
    settings = demo_settings(emulators, workdir)
    print(f"Emulators: Evolution API {emulators.evolution_url}  Dify {emulators.dify_url}/v1")
    async with http_client(settings) as http, httpx.AsyncClient(timeout=5) as control:
        controls = Controls(control, emulators.evolution_url, emulators.dify_url, gap=scaled(CUSTOMER_PACE))
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
            await controls.set_webhooks(daemon.url + "/webhook/evolution", (*INSTANCES, PROBER))
            print(f"\nWatchdog on {daemon.url} (status page /, /metrics, /api/status): probing")
            every = f"every {settings.probe_interval_seconds:g}s"
            print(f"{every}, timing every reply from Evolution's webhooks, recovery mode auto;")
            print(
                f"the heartbeat: {PROBER} writes to {INSTANCES[0]}'s number every "
                f"{settings.e2e_interval_seconds:g}s."
            )
            print(
                f"Settings: the shipped defaults with every duration times {FACTOR:g}, the emulators too.\n"
            )
            story = asyncio.create_task(_story(watchdog, controls, pace, seconds, outcomes))
            await asyncio.wait({story, server}, return_when=asyncio.FIRST_COMPLETED)
            if not story.done():  # Ctrl-C or SIGTERM: the daemon's own handler stopped its server
                story.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await story
                print("\nInterrupted.")
                return EXIT_INTERRUPTED
            story.result()
            await _report(outcomes, emulators, watchdog, json_path, fast=pace is FAST)
            if keep:
                print(f"\nStill running (--keep): status page {daemon.url}/  (Ctrl-C stops and cleans up)")
                await server
        finally:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
            daemon.stop()
            await server
    return 0 if all(o.ok for o in outcomes) else 1


async def _report(
    outcomes: list[Outcome], emulators: EmulatorSet, watchdog: Watchdog, json_path: Path | None, *, fast: bool
) -> None:
    print_summary(outcomes, emulators.backend, emulators.restarts)
    threshold = watchdog.settings.turnaround_threshold_seconds
    turns = turnaround(watchdog.registry, threshold)
    print_turnaround(turns, threshold)
    heartbeat = watchdog.board.heartbeat() if watchdog.board.heartbeat is not None else None
    if heartbeat is not None:
        heartbeat["legs_mean_seconds"] = heartbeat_legs(watchdog.registry)
        print_heartbeat(heartbeat, heartbeat["legs_mean_seconds"])
    if json_path is not None:
        summary = summary_json(
            outcomes, backend=emulators.backend, fast=fast, restarts=emulators.restarts, turns=turns
        )
        summary["heartbeat"] = heartbeat
        summary["emulators"] = {"evolution": emulators.evolution_url, "dify": emulators.dify_url}
        await asyncio.to_thread(json_path.write_text, json.dumps(summary, indent=2))


async def _story(
    watchdog: Watchdog, controls: Controls, pace: Pace, seconds: float, outcomes: list[Outcome]
) -> None:
    """Every phase in turn, within PHASE_BUDGET each on average so the demo always ends by itself."""
    deadline = time.monotonic() + scaled(PHASE_BUDGET) * len(pace.phases)
    await asyncio.sleep(scaled(WARMUP))  # a few healthy turns first
    for phase in pace.phases:
        if deadline - time.monotonic() < scaled(MIN_PHASE_TIME):
            print(f"▶ fault: {phase.title}\n  ✗ skipped: the demo's time is up\n")
            outcomes.append(Outcome(phase, None, None, None, []))
            continue
        patience = seconds or scaled(phase.patience)
        outcomes.append(await _play(phase, watchdog, controls, patience, deadline))


def _new_finding(watchdog: Watchdog, phase: Phase, before: set[tuple[str, str]]) -> Finding | None:
    """A finding of an expected kind that was not on the board before the fault (a leftover of an earlier
    phase does not count as seeing this one)."""
    return next(
        (f for f in watchdog.board.findings if f.kind in phase.expected and (f.kind, f.target) not in before),
        None,
    )


async def _play(
    phase: Phase, watchdog: Watchdog, controls: Controls, patience: float, deadline: float
) -> Outcome:
    """Inject; wait for the finding; wait until the watchdog's own repairs close every incident."""
    print(f"▶ fault: {phase.title}")
    before = {(f.kind, f.target) for f in watchdog.board.findings}
    started, started_wall = time.monotonic(), time.time()
    patience = min(patience, deadline - started)
    await phase.inject(controls)
    seen: list[Finding] = []

    def detected() -> bool:
        if (found := _new_finding(watchdog, phase, before)) is not None:
            seen.append(found)
        return bool(seen)

    detected_after = None if await _wait(detected, patience) is None else time.monotonic() - started
    found = seen[0] if seen else None
    if found is None:
        print(f"  ✗ not detected within {patience:g}s (expected {' or '.join(phase.expected)})")
    else:
        print(f"  ✓ detected {found.kind} after {detected_after:.1f}s: {found.summary}")
    journal = watchdog.recovery.journal
    recovery_patience = max(0.0, min(scaled(RECOVERY_PATIENCE), deadline - time.monotonic()))
    recovered = await _wait(
        lambda: watchdog.board.healthy() and not journal.open_incidents(), recovery_patience
    )
    recovered_after = None if recovered is None else time.monotonic() - started
    for incident in reversed(journal.history()):
        if incident["opened_at"] >= started_wall:
            print(f"  ! incident {incident['key']}: {incident['summary']}")
    actions = [  # a page names the incident it pages for (its target is "on-call")
        f"L{int(a.level)} {a.kind} {a.incident if a.kind == 'page' else a.target} {a.result}"
        for a in journal.recent_actions(started_wall)
    ]
    for line in distinct(actions):
        print(f"  ↺ {line}")
    if recovered_after is None:
        print(f"  ✗ not recovered within {recovery_patience:.0f}s\n")
    else:
        print(f"  ✓ recovered, verified healthy, {recovered_after:.1f}s after the fault\n")
    return Outcome(
        phase, found.kind if found else None, detected_after if found else None, recovered_after, actions
    )


async def _wait(condition: Callable[[], bool], seconds: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return None
