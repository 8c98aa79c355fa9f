"""`evo-watchdog demo`: the watchdog against the built-in emulators, faults injected one after another.

Simulated customers write to two instances; Evolution's webhooks reach the watchdog, which times
every reply. Until the recovery engine lands, the demo repairs each fault itself with the action the
ladder will take (and says so), so what is shown is detection, turnaround and health coming back.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx
from prometheus_client import CollectorRegistry

from watchdog.app import Daemon, Watchdog
from watchdog.clock import SystemClock
from watchdog.config import Settings
from watchdog.logsetup import configure_logging
from watchdog.model import Finding
from watchdog.probes.suite import http_client
from watchdog.report import render_table
from watchdog.serving import ThreadedServer
from watchdog.sim.logfmt import SimLog
from watchdog.sim.runner import DifyOptions, EvolutionOptions, build_dify, build_evolution
from watchdog.sim.scenario import contact_jid

EVOLUTION_KEY = "demo-evolution-key"
DIFY_KEY = "app-demo"
INSTANCE = "loja"
OTHER_INSTANCE = "suporte"
CUSTOMER = contact_jid(42)
WEBHOOK_EVENTS = ["MESSAGES_UPSERT", "SEND_MESSAGE", "CONNECTION_UPDATE"]
SETTLE_STEP_SECONDS = 1.5


@dataclass
class Phase:
    title: str
    expected: str  # finding kind
    inject: Callable[[Controls], Awaitable[None]]
    repair_label: str
    repair: Callable[[Controls], Awaitable[None]]
    patience: float = 1.0  # multiple of the demo's per-phase wait (slow detections get more)


@dataclass
class Outcome:
    phase: Phase
    detected_after: float | None
    healthy_after: float | None


class Controls:
    """The demo's hands on the emulators (fault control endpoints and the Evolution API)."""

    def __init__(self, http: httpx.AsyncClient, evolution_url: str, dify_url: str) -> None:
        self.http = http
        self.evolution = evolution_url
        self.dify = dify_url

    async def fault(self, base: str, name: str, **params: object) -> None:
        (
            await self.http.post(f"{base}/_sim/faults", json={"name": name, "params": params})
        ).raise_for_status()

    async def clear(self, base: str, name: str) -> None:
        (await self.http.delete(f"{base}/_sim/faults/{name}")).raise_for_status()

    async def customer_says(self, text: str, kind: str = "text") -> None:
        body = {"instance": INSTANCE, "remoteJid": CUSTOMER, "kind": kind, "text": text, "pushName": "Ana"}
        (await self.http.post(f"{self.evolution}/_sim/inbound", json=body)).raise_for_status()
        await asyncio.sleep(0.3)

    async def contact_repairs(self, findings: list[Finding]) -> None:
        """The ladder's L1 for each contact a finding names: delete its Dify session (stale or wedged),
        and send the optional fallback reply to a contact left waiting."""
        for finding in findings:
            if not finding.subject:
                continue
            instance = finding.target.partition(":")[2]
            if finding.kind in ("stale_conversation", "session_wedged"):
                body = {"remoteJid": finding.subject, "status": "delete"}
                await self.evolution_api(f"/dify/changeStatus/{instance}", body)
            elif finding.kind == "stalled_contact":
                body = {"number": finding.subject, "text": "Desculpe a demora! Já voltamos a responder."}
                await self.evolution_api(f"/message/sendText/{instance}", body)

    async def set_webhook(self, instance: str, url: str) -> None:
        """What a user does once: point the instance's webhook at the watchdog."""
        hook = {"enabled": True, "url": url, "byEvents": False, "events": WEBHOOK_EVENTS}
        await self.evolution_api(f"/webhook/set/{instance}", {"webhook": hook})

    async def evolution_api(self, path: str, body: Mapping[str, object] | None = None) -> None:
        response = await self.http.post(self.evolution + path, json=body, headers={"apikey": EVOLUTION_KEY})
        response.raise_for_status()


def phases() -> list[Phase]:
    async def socket_closed(c: Controls) -> None:
        await c.fault(c.evolution, "socket_closed", instance=INSTANCE)

    async def restart(c: Controls) -> None:
        await c.evolution_api(f"/instance/restart/{INSTANCE}")

    async def forget(c: Controls) -> None:
        await c.fault(c.dify, "forget_after", messages=1)
        for text in ("Oi", "Ainda estão aí?", "Alô?"):
            await c.customer_says(text)

    async def clear_session_faults(c: Controls) -> None:
        await c.clear(c.dify, "forget_after")
        await c.clear(c.evolution, "media_wedge")

    async def wedge(c: Controls) -> None:
        await c.fault(c.evolution, "media_wedge", remoteJid=CUSTOMER)
        await c.customer_says("olha a foto", kind="image")

    async def dify_hang(c: Controls) -> None:
        await c.fault(c.dify, "hang", scope="all")

    async def dify_restart(c: Controls) -> None:
        await c.clear(c.dify, "hang")

    async def evolution_500(c: Controls) -> None:
        await c.fault(c.evolution, "api_500")

    async def evolution_restart(c: Controls) -> None:
        await c.clear(c.evolution, "api_500")
        await c.clear(c.evolution, "processor_dead")

    async def processor_dies(c: Controls) -> None:
        await c.fault(c.evolution, "processor_dead", instance=INSTANCE)

    return [
        Phase(
            "instance socket closes", "instance_disconnected", socket_closed, "L2 instance restart", restart
        ),
        Phase(
            "Dify forgets conversations",
            "stale_conversation",
            forget,
            "L1 delete the session",
            clear_session_faults,
        ),
        Phase(
            "an image wedges the session",
            "session_wedged",
            wedge,
            "L1 delete the session",
            clear_session_faults,
        ),
        Phase("Dify hangs", "dify_down", dify_hang, "L3 restart Dify (fault cleared)", dify_restart),
        Phase(
            "Evolution answers 500",
            "evolution_down",
            evolution_500,
            "L3 restart Evolution (fault cleared)",
            evolution_restart,
        ),
        Phase(
            "the message processor dies",
            "inbound_stopped",
            processor_dies,
            "L3 restart Evolution (fault cleared)",
            evolution_restart,
            patience=2.5,
        ),
    ]


def run_demo(*, seconds: float = 8.0) -> int:
    return asyncio.run(_demo(seconds))


async def _demo(seconds: float) -> int:
    configure_logging(fmt="text", level="WARNING")
    emulator_logs = io.StringIO()
    with ExitStack() as stack:
        _, dify_app = build_dify(DifyOptions(api_keys=(DIFY_KEY,)), log=SimLog(emulator_logs))
        # Requests an emulator leaves hanging on purpose are cut at shutdown; that is not news here.
        dify = stack.enter_context(ThreadedServer(dify_app, log_level="critical"))
        _, evolution_app = build_evolution(
            EvolutionOptions(
                api_key=EVOLUTION_KEY,
                instances=(INSTANCE, OTHER_INSTANCE),
                dify_url=dify.url + "/v1",
                dify_api_key=DIFY_KEY,
                debounce_seconds=0.1,
                traffic_interval=0.5,
                contacts=3,
                media_ratio=0.2,
                reconnect_seconds=0.3,
            ),
            log=SimLog(emulator_logs),
        )
        evolution = stack.enter_context(ThreadedServer(evolution_app, log_level="critical"))
        print(f"Emulators (in-process threads): Evolution API {evolution.url}  Dify {dify.url}/v1")
        settings = Settings.from_env(
            {
                "EVOLUTION_URL": evolution.url,
                "EVOLUTION_API_KEY": EVOLUTION_KEY,
                "DIFY_URL": dify.url + "/v1",
                "DIFY_API_KEY": DIFY_KEY,
                "WATCHDOG_PROBE_INTERVAL_SECONDS": "1",
                "WATCHDOG_PROBE_TIMEOUT_SECONDS": "0.5",
                "WATCHDOG_TURNAROUND_THRESHOLD_SECONDS": "1",
                "WATCHDOG_STALL_SECONDS": "2",
                "WATCHDOG_LISTEN": "127.0.0.1:0",
                "WATCHDOG_STATE_PATH": str(Path(stack.enter_context(TemporaryDirectory())) / "journal.db"),
            }
        )
        return await _watch(
            settings, Controls(httpx.AsyncClient(timeout=5), evolution.url, dify.url), seconds
        )


async def _watch(settings: Settings, controls: Controls, seconds: float) -> int:
    async with http_client(settings) as http, controls.http:
        registry = CollectorRegistry()
        watchdog = Watchdog(settings, clock=SystemClock(), registry=registry, http=http)
        findings = await watchdog.probe_cycle()
        print("\n`evo-watchdog check` on the healthy stack:\n")
        print(render_table(watchdog.board.results, findings))
        daemon = Daemon(watchdog)
        server = asyncio.create_task(daemon.run())
        for instance in (INSTANCE, OTHER_INSTANCE):
            await controls.set_webhook(instance, daemon.url + "/webhook/evolution")
        print(f"\nWatchdog daemon on {daemon.url} (/metrics, /healthz, /api/status), probing every 1 s;")
        print("Evolution's webhooks point at it, so every reply is timed.\n")
        await asyncio.sleep(3)  # a few healthy turns first
        outcomes = []
        try:
            for phase in phases():
                outcomes.append(await _play(phase, watchdog, controls, seconds))
        finally:
            daemon.stop()
            await server
    _summary(outcomes)
    _turnaround(registry, settings.turnaround_threshold_seconds)
    return 0 if all(o.detected_after is not None and o.healthy_after is not None for o in outcomes) else 1


async def _play(phase: Phase, watchdog: Watchdog, controls: Controls, seconds: float) -> Outcome:
    """Inject, wait for the expected finding, repair, wait for health; times count from the injection."""
    print(f"▶ fault: {phase.title}")
    started = time.monotonic()
    await phase.inject(controls)
    patience = seconds * phase.patience
    seen = await _wait(lambda: any(f.kind == phase.expected for f in watchdog.board.findings), patience)
    detected_after = None if seen is None else time.monotonic() - started
    if detected_after is None:
        print(f"  ✗ not detected within {patience:g}s (expected {phase.expected})")
    else:
        found = next(f for f in watchdog.board.findings if f.kind == phase.expected)
        print(f"  ✓ detected {phase.expected} after {detected_after:.1f}s: {found.summary}")
    repaired_at = time.monotonic()
    await phase.repair(controls)
    print(f"  ↺ repair: {phase.repair_label} (done by the demo until the recovery engine lands)")
    healthy = await _settle(watchdog, controls, seconds)
    healthy_after = None if healthy is None else time.monotonic() - repaired_at
    if healthy_after is None:
        print(f"  ✗ still unhealthy {seconds:g}s after the repair\n")
    else:
        print(f"  ✓ healthy again {healthy_after:.1f}s after the repair\n")
    return Outcome(phase, detected_after, healthy_after)


async def _settle(watchdog: Watchdog, controls: Controls, seconds: float) -> float | None:
    """Wait for health, repairing contacts that findings name as they appear (as the ladder's L1 will)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        await controls.contact_repairs(watchdog.board.findings)
        if await _wait(watchdog.board.healthy, SETTLE_STEP_SECONDS) is not None:
            return time.monotonic() - started
    return None


async def _wait(condition: Callable[[], bool], seconds: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return None


def _summary(outcomes: list[Outcome]) -> None:
    print("Summary")
    print(f"  {'fault':<30} {'finding':<22} {'detected':>9} {'healthy after repair':>21}")
    for o in outcomes:
        detected = f"{o.detected_after:.1f}s" if o.detected_after is not None else "missed"
        healthy = f"{o.healthy_after:.1f}s" if o.healthy_after is not None else "no"
        print(f"  {o.phase.title:<30} {o.phase.expected:<22} {detected:>9} {healthy:>21}")


def _turnaround(registry: CollectorRegistry, threshold: float) -> None:
    """Turnaround by kind over the whole demo, read back from the watchdog's own histogram."""
    print(f"\nBot turnaround (threshold {threshold:g}s), from watchdog_turnaround_seconds:")

    def total(metric: str, kind: str) -> float:
        labels = ({"instance": i, "kind": kind} for i in (INSTANCE, OTHER_INSTANCE))
        return sum(registry.get_sample_value(metric, label) or 0 for label in labels)

    for kind in ("text", "media"):
        count = total("watchdog_turnaround_seconds_count", kind)
        mean = f"{total('watchdog_turnaround_seconds_sum', kind) / count:.2f}s mean" if count else "no turns"
        breaches = total("watchdog_turnaround_breaches_total", kind)
        print(f"  {kind:<6} {int(count):>4} replies, {mean}, {int(breaches)} over the threshold")
