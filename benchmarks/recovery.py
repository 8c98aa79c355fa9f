"""Target 1, the watchdog's side: every fault the emulators can inject, one at a time, each against a
fresh watchdog in recovery mode auto on the demo's emulators (child processes; an L3 restart goes through
the command backend and restarts the process for real). A customer writes every second from the fault
on; we time the first finding, the stall finding, the first bot reply to that customer, and the moment
the repair is verified (healthy, incidents closed)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from benchmarks.report import Figure, Report
from watchdog.app import Daemon, Watchdog
from watchdog.clock import SystemClock
from watchdog.config import Settings
from watchdog.demo.emulators import INSTANCES, TIME_SCALE, ProcessEmulators
from watchdog.demo.phases import FORGOTTEN, WEDGED, Controls
from watchdog.demo.phases import _forgetful_dify as _forget  # the demo's multi-step injections
from watchdog.demo.phases import _image_wedge as _wedge
from watchdog.logsetup import configure_logging
from watchdog.probes.suite import http_client
from watchdog.signals.webhook import Envelope
from watchdog.sim.scenario import contact_jid

STALL_SECONDS = 2.0
PROBE_INTERVAL = 1.0
REPAIR_MARGIN = 15.0  # instance and processor faults: first reply within stall time + this
DETECT_PATIENCE = 20.0
PATIENCE = 50.0


@dataclass(frozen=True)
class Case:
    service: str  # evolution | dify
    fault: str
    scope: str  # instance | processor | contact | service
    customer: str  # writes every second from the fault on
    params: dict[str, Any] = field(default_factory=dict)
    inject: Callable[[Controls], Awaitable[None]] | None = None  # when not a plain switch
    # healthy traffic seen before the fault; inbound_stopped needs the instance's usual pace learned first
    warmup: float = 2.0

    @property
    def label(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in self.params.items() if k not in ("instance", "remoteJid"))
        return f"{self.service} {self.fault}" + (f" ({extra})" if extra else "")


def _cases() -> list[Case]:
    one = {"instance": INSTANCES[0]}
    return [
        Case("evolution", "socket_closed", "instance", contact_jid(60), one),
        Case("evolution", "instance_unloaded", "instance", contact_jid(61), one),
        # silent, as upstream (no log is followed here either): found as inbound_stopped
        Case("evolution", "processor_dead", "processor", contact_jid(62), one, warmup=10.0),
        Case("evolution", "media_wedge", "contact", WEDGED, inject=_wedge),
        Case("evolution", "api_500", "service", contact_jid(64)),
        Case("evolution", "slow", "service", contact_jid(65), {"seconds": 2.0}),
        Case("evolution", "hang", "service", contact_jid(66)),
        Case("dify", "hang", "service", contact_jid(67), {"scope": "chat"}),
        Case("dify", "hang", "service", contact_jid(68), {"scope": "all"}),
        Case("dify", "worker_timeout", "service", contact_jid(69)),
        Case("dify", "forget_after", "contact", FORGOTTEN, inject=_forget),
        Case("dify", "error_500", "service", contact_jid(71), {"scope": "chat"}),
        Case("dify", "error_event", "service", contact_jid(72)),
        Case("dify", "truncate_stream", "service", contact_jid(73)),
        Case("dify", "slow", "service", contact_jid(74), {"seconds": 2.0, "kind": "all"}),
    ]


CASES = _cases()


def settings_for(emulators: ProcessEmulators, journal: Path) -> Settings:
    return Settings.from_env(
        {
            **emulators.connection_env(),
            "WATCHDOG_PROBE_INTERVAL_SECONDS": f"{PROBE_INTERVAL:g}",
            "WATCHDOG_PROBE_TIMEOUT_SECONDS": "0.5",
            "WATCHDOG_CANARY_INTERVAL_SECONDS": "2",
            "WATCHDOG_TURNAROUND_THRESHOLD_SECONDS": "1",
            "WATCHDOG_STALL_SECONDS": f"{STALL_SECONDS:g}",
            "WATCHDOG_LISTEN": "127.0.0.1:0",
            "WATCHDOG_STATE_PATH": str(journal),
            "WATCHDOG_RECOVERY_MODE": "auto",
            "WATCHDOG_RECOVERY_HOLD_SECONDS": "2",
            "WATCHDOG_MAX_RESTARTS_PER_HOUR": "50",
            "WATCHDOG_GLOBAL_RESTARTS_PER_HOUR": "200",
            **emulators.watchdog_env(),
            "WATCHDOG_RESTART_TIMEOUT_SECONDS": "20",
        }
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def _customer(controls: Controls, who: str) -> None:
    """A customer who keeps writing every second (a hung Evolution drops some; that is the fault)."""
    n = 0
    while True:
        n += 1
        body = {"instance": INSTANCES[0], "remoteJid": who, "kind": "text", "text": f"Oi? ({n})"}
        with contextlib.suppress(httpx.HTTPError):
            await controls.http.post(f"{controls.evolution}/_sim/inbound", json=body, timeout=1.0)
        await asyncio.sleep(1.0)


async def _inject(case: Case, controls: Controls) -> None:
    if case.inject is not None:
        await case.inject(controls)
        return
    base = controls.evolution if case.service == "evolution" else controls.dify
    await controls.fault(base, case.fault, **case.params)


async def _reset(controls: Controls, emulators: ProcessEmulators) -> None:
    """Clear whatever is left; an emulator that cannot even take that (hung) is restarted."""
    for service, base in (("evolution", controls.evolution), ("dify", controls.dify)):
        try:
            (await controls.http.delete(f"{base}/_sim/faults", timeout=2.0)).raise_for_status()
        except httpx.HTTPError:
            (emulators.workdir / f"restart-{service}").touch()
    for _ in range(300):
        if not any((emulators.workdir / f"restart-{s}").exists() for s in ("evolution", "dify")):
            return
        await asyncio.sleep(0.1)


async def _phase(
    case: Case, index: int, emulators: ProcessEmulators, controls: Controls, workdir: Path
) -> dict[str, Any]:
    settings = settings_for(emulators, workdir / f"journal-{index}.db")
    async with http_client(settings) as http:
        watchdog = Watchdog(settings, clock=SystemClock(), registry=CollectorRegistry(), http=http)
        replies: list[tuple[float, str, str]] = []
        ingest = watchdog.ingest

        waiting: dict[str, float] = {}  # remoteJid -> when the watchdog got its first unanswered message

        def spy(envelope: Envelope) -> str:
            key = envelope.data.get("key")
            jid = key.get("remoteJid", "") if isinstance(key, dict) else ""
            if envelope.event == "send.message":
                replies.append((time.monotonic(), envelope.instance, jid))
                waiting.pop(jid, None)
            elif envelope.event == "messages.upsert" and isinstance(key, dict) and key.get("fromMe") is False:
                waiting.setdefault(jid, time.monotonic())
            return ingest(envelope)

        watchdog.ingest = spy  # type: ignore[method-assign]  # the bench's ear on the webhook path
        journal = watchdog.recovery.journal
        daemon = Daemon(watchdog)
        server = asyncio.create_task(daemon.run())
        try:
            await controls.set_webhooks(daemon.url + "/webhook/evolution")
            started_clean = await _until(
                lambda: (
                    watchdog.board.last_cycle_at is not None
                    and watchdog.board.healthy()
                    and not journal.open_incidents()
                ),
                30.0,
                settle=case.warmup,
            )
            before = sorted({f.kind for f in watchdog.board.findings})
            t0, wall0 = time.monotonic(), time.time()
            await _inject(case, controls)
            injected = time.monotonic()  # a multi-step injection's own early replies do not count
            writer = asyncio.create_task(_customer(controls, case.customer))
            first_seen: dict[str, float] = {}
            # remoteJid -> its stall finding, measured from its first unanswered message
            stalls: dict[str, float] = {}
            reply_at = verified_at = None
            while (now := time.monotonic()) - t0 < PATIENCE:
                for finding in watchdog.board.findings:
                    first_seen.setdefault(finding.kind, now - t0)
                    since = waiting.get(finding.subject)
                    if finding.kind == "stalled_contact" and since is not None:
                        stalls.setdefault(finding.subject, now - since)
                if reply_at is None:
                    reply_at = next(
                        (t - t0 for t, _, jid in replies if t > injected and jid == case.customer), None
                    )
                quiet = watchdog.board.healthy() and not journal.open_incidents()
                if first_seen and reply_at is not None and quiet:
                    verified_at = now - t0
                    break
                if not first_seen and reply_at is not None and now - t0 > DETECT_PATIENCE:
                    break  # never noticed, and customers were answered anyway
                await asyncio.sleep(0.05)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            actions = journal.recent_actions(wall0)
        finally:
            daemon.stop()
            await server
    await _reset(controls, emulators)
    ok = [f"L{int(a.level)} {a.kind}" for a in actions if a.result == "ok"]
    return {
        "fault": case.label,
        "scope": case.scope,
        "findings (first seen, s)": [
            f"{k} {v:.1f}" for k, v in sorted(first_seen.items(), key=lambda kv: kv[1])
        ],
        "detected_s": _rounded(min(first_seen.values())) if first_seen else None,
        "stall_found_s": _rounded(max(stalls.values())) if stalls else None,
        "first_reply_s": _rounded(reply_at),
        # a fault that leaves the message path alone (the API fails, replies still flow): not a cut-off
        "bot answered before detection": reply_at is not None
        and (not first_seen or reply_at < min(first_seen.values())),
        "verified_s": _rounded(verified_at),
        "repairs ok": sorted(set(ok), key=ok.index),
        "clean before": started_clean is not None and not before,
    }


async def _until(condition: Callable[[], bool], seconds: float, *, settle: float = 0.0) -> float | None:
    started = time.monotonic()
    await asyncio.sleep(settle)
    while time.monotonic() - started < seconds:
        if condition():
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return None


async def _run_cases(cases: list[Case], emulators: ProcessEmulators, workdir: Path) -> list[dict[str, Any]]:
    rows = []
    async with httpx.AsyncClient(timeout=5, trust_env=False) as control:
        controls = Controls(control, emulators.evolution_url, emulators.dify_url)
        supervisor = asyncio.create_task(emulators.supervise())
        try:
            for index, case in enumerate(cases):
                print(f"   watchdog vs {case.label}", flush=True)
                rows.append(await _phase(case, index, emulators, controls, workdir))
                print(f"     {rows[-1]}", flush=True)
        finally:
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
    return rows


def run(report: Report, workdir: Path, *, smoke: bool) -> None:
    configure_logging(fmt="text", level="ERROR")
    cases = [c for c in CASES if c.fault == "socket_closed"] if smoke else CASES
    emulators = ProcessEmulators(workdir / "emulators")
    emulators.workdir.mkdir(parents=True, exist_ok=True)
    try:
        emulators.start()
        rows = asyncio.run(_run_cases(cases, emulators, workdir))
    finally:
        emulators.stop()
    report.tables["Detection and repair: the watchdog"] = rows
    noticed = [r for r in rows if r["detected_s"] is not None]
    report.add(
        Figure(
            "1 detection",
            "faults the watchdog noticed",
            f"{len(noticed)} of {len(rows)}",
            "",
            "every fault",
            len(noticed) == len(rows) if not smoke else None,
            "each emulator fault injected alone against a fresh watchdog (mode auto); demo emulators, "
            f"stall {STALL_SECONDS:g} s, probes every {PROBE_INTERVAL:g} s (timeout 0.5 s), Dify canary "
            f"every 2 s, turnaround threshold 1 s, Evolution's reply delays at {TIME_SCALE:g}x upstream's",
        )
    )
    stalls = [r["stall_found_s"] for r in rows if r["stall_found_s"] is not None]
    if stalls:
        worst = max(stalls)
        report.add(
            Figure(
                "1 detection",
                "stall found after the customer's message (worst)",
                worst,
                "s",
                f"<= stall + 1 = {STALL_SECONDS + 1:g} s",
                worst <= STALL_SECONDS + 1,
                f"over the {len(stalls)} faults that raised stalled_contact; per stalled customer, from the "
                "watchdog receiving its first unanswered message to the finding (worst customer per fault)",
            )
        )
    hard = [r for r in rows if r["scope"] in ("instance", "processor")]
    if hard:
        replies = [r["first_reply_s"] for r in hard]
        worst_reply = None if None in replies else max(replies)
        limit = STALL_SECONDS + REPAIR_MARGIN
        report.add(
            Figure(
                "1 repair",
                "instance/processor faults: first bot reply after the fault (worst)",
                worst_reply,
                "s",
                f"<= stall + 15 = {limit:g} s",
                worst_reply is not None and worst_reply <= limit,
                f"{', '.join(r['fault'] for r in hard)}; the customer writes every second; the reply is "
                "the bot's, after the watchdog's own repair",
            )
        )
