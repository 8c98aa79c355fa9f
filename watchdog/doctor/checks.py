"""The known stuck modes, each a pure function of a Snapshot that returns findings with their fixes."""

from __future__ import annotations

from watchdog.doctor import versions
from watchdog.doctor.diagnosis import (
    BOT_TYPE_IGNORED,
    INSTANCE_STATUS_STALE,
    KNOWN_DEFECT,
    UNREADABLE,
    WEBHOOK_EVENTS,
    Diagnosis,
    Fix,
    ordered,
)
from watchdog.doctor.sessions import shared_sessions, stuck_sessions
from watchdog.doctor.snapshot import InstanceView, Snapshot
from watchdog.health import (
    INSTANCE_DISCONNECTED,
    INSTANCE_NOT_LOADED,
    INSTANCE_UNKNOWN,
    WEBHOOK_MISCONFIGURED,
)
from watchdog.integrations import DIFY
from watchdog.model import Finding, Severity, instance_target
from watchdog.probes.webhook import NEEDED_EVENTS, judge

CRITICAL, WARNING = Severity.CRITICAL, Severity.WARNING


def diagnose(snap: Snapshot) -> list[Diagnosis]:
    if snap.unreachable is not None:
        fix = "check EVOLUTION_URL and EVOLUTION_API_KEY (Evolution's AUTHENTICATION_API_KEY), then run again"
        return [Diagnosis(snap.unreachable, Fix(fix))]
    version = versions.parse_version(snap.version)
    found = [_missing(name) for name in snap.missing]
    for inst in snap.instances:
        found += instance_state(inst)
        found += bot_types(inst, version, snap.version)
        found += stuck_sessions(inst, version, snap)
        found += shared_sessions(inst)
        found += webhook(inst, snap.webhook_url)
        found += [_unreadable(inst, what) for what in inst.unread]
    found += version_defects(snap, version)
    # A failed GET / (snap.unread) is not a fault of the stack: it only costs the version checks, and
    # "Not checked" says so (limits.py). From 2.3.1 upstream's GET / waits on web.whatsapp.com.
    return ordered(found)


def instance_state(inst: InstanceView) -> list[Diagnosis]:
    """Live state (connectionState) against the persisted connectionStatus of fetchInstances."""
    target = instance_target(inst.name)
    evidence = {"stored_status": inst.stored_status, "live_state": inst.live_state}
    if not inst.live_read:
        return []
    if inst.live_state is None:
        summary = f"in Evolution's database (status {inst.stored_status!r}) but not loaded in memory"
        fix = "restart the Evolution container: instance/restart answers an error for an unloaded instance"
        return [Diagnosis(Finding(INSTANCE_NOT_LOADED, target, CRITICAL, summary, evidence), Fix(fix))]
    stale = (
        f"; fetchInstances still says {inst.stored_status!r}" if inst.stored_status != inst.live_state else ""
    )
    if inst.live_state == "connecting":
        summary = f"live state is connecting (socket down){stale}"
        fix = (
            f"POST /instance/restart/{inst.name} reconnects with the saved credentials (no QR); "
            "`evo-watchdog run` does this itself (L2). Never logout: it kills the message processor"
        )
        return [Diagnosis(Finding(INSTANCE_DISCONNECTED, target, CRITICAL, summary, evidence), Fix(fix))]
    if inst.live_state != "open":
        summary = f"live state is {inst.live_state}{stale}: WhatsApp is not connected"
        fix = (
            f"GET /instance/connect/{inst.name} and scan the QR code "
            "(a 401 close means the phone removed the device)"
        )
        return [Diagnosis(Finding(INSTANCE_DISCONNECTED, target, CRITICAL, summary, evidence), Fix(fix))]
    if inst.stored_status != "open":
        summary = f"connected, but fetchInstances (and the manager) say {inst.stored_status!r}"
        fix = (
            "nothing to repair on WhatsApp: trust connectionState (live); fetchInstances shows a stored value"
        )
        return [Diagnosis(Finding(INSTANCE_STATUS_STALE, target, WARNING, summary, evidence), Fix(fix))]
    return []


def bot_types(inst: InstanceView, version: versions.Version | None, raw: str) -> list[Diagnosis]:
    """Workflow bots: 2.3.0-2.3.6 have no code path for them, so every message is silently dropped."""
    if version is None or versions.workflow_ignored(version) is not True:
        return []
    return [
        Diagnosis(
            Finding(
                BOT_TYPE_IGNORED,
                instance_target(inst.name),
                CRITICAL,
                f"Dify bot {bot.id} has botType workflow, which Evolution {raw} ignores: no reply, no error",
                {"bot": bot.id, "bot_type": bot.bot_type, "version": raw},
            ),
            Fix(
                "make the Dify app a chatflow and set botType chatBot "
                f"(PUT /dify/update/{bot.id}/{inst.name}); "
                "2.2.x was the last release that ran workflow bots (/workflows/run)"
            ),
        )
        for bot in inst.bots
        if bot.enabled and bot.bot_type == "workflow" and bot.integration == DIFY.name
    ]


def webhook(inst: InstanceView, expected_url: str) -> list[Diagnosis]:
    """The webhook probe's own judgement, with what to do about each problem."""
    if any(what.startswith("webhook") for what in inst.unread):
        return []
    ok, detail, data = judge(inst.webhook, expected_url)
    if ok:
        return []
    problem = str(data.get("problem"))
    needed = ", ".join(NEEDED_EVENTS)
    if problem in ("events", "disabled"):
        fix = Fix(
            f"POST /webhook/set/{inst.name} with the same url and headers, enabled, events + {needed}",
            WEBHOOK_EVENTS,
            inst.name,
        )
    elif problem == "elsewhere":
        fix = Fix(
            "an instance has one webhook: point it at the watchdog and forward from there, or give the "
            "watchdog the global webhook (WEBHOOK_GLOBAL_URL, WEBHOOK_EVENTS_*); doctor will not move it"
        )
    else:
        fix = Fix(f"POST /webhook/set/{inst.name} with url WATCHDOG_WEBHOOK_URL, enabled, events {needed}")
    evidence = {key: data[key] for key in ("problem", "url", "enabled", "events") if key in data}
    finding = Finding(WEBHOOK_MISCONFIGURED, instance_target(inst.name), WARNING, detail, evidence)
    return [Diagnosis(finding, fix)]


def version_defects(snap: Snapshot, version: versions.Version | None) -> list[Diagnosis]:
    """A defect is reported only when this version is in its range and some bot's setup can meet it."""
    if version is None:
        return []
    bots = [
        (inst.name, bot)
        for inst in snap.instances
        for bot in inst.bots
        if bot.enabled and bot.integration == DIFY.name  # the defects below are Dify's
    ]
    exposed = {
        "dify": [name for name, _ in bots],
        "expire": [name for name, bot in bots if bot.expire],
        "stop_bot_from_me": [name for name, bot in bots if bot.stop_bot_from_me],
    }
    found: list[Diagnosis] = []
    for defect in versions.KNOWN_DEFECTS:
        instances = sorted(set(exposed[defect.applies_when]))
        if not defect.affects(version) or not instances:
            continue
        summary = f"#{defect.issue}: {defect.title} ({defect.basis}; this is {snap.version})"
        evidence = {"issue": defect.issue, "url": defect.url, "version": snap.version, "instances": instances}
        found.append(
            Diagnosis(Finding(KNOWN_DEFECT, "evolution", WARNING, summary, evidence), Fix(defect.fix))
        )
    return found


def _missing(name: str) -> Diagnosis:
    summary = f"instance {name!r} is in EVOLUTION_INSTANCES but Evolution does not have it"
    finding = Finding(INSTANCE_UNKNOWN, instance_target(name), WARNING, summary)
    return Diagnosis(finding, Fix("correct EVOLUTION_INSTANCES (empty watches every instance)"))


def _unreadable(inst: InstanceView, what: str) -> Diagnosis:
    finding = Finding(UNREADABLE, instance_target(inst.name), WARNING, f"could not read {what}")
    fix = "needs the global API key and Evolution answering the routes named; run again"
    return Diagnosis(finding, Fix(fix))
