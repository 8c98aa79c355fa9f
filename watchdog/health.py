"""Fold probe results into findings. Pure: the caller passes `now` and the limits.

Finding kinds are a public contract (metrics, alerts, the recovery ladder): do not rename them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from watchdog.errortext import one_line
from watchdog.integrations import BY_NAME, DIFY, Integration
from watchdog.model import Finding, ProbeResult, Severity

EVOLUTION_DOWN = "evolution_down"
EVOLUTION_AUTH = "evolution_auth"
INSTANCE_UNKNOWN = "instance_unknown"
INSTANCE_DISCONNECTED = "instance_disconnected"
INSTANCE_NOT_LOADED = "instance_not_loaded"
SESSION_WEDGED = "session_wedged"
STALE_CONVERSATION = "stale_conversation"
SESSION_PAUSED = "session_paused"
SESSION_CLOSED = "session_closed"
DIFY_DOWN = "dify_down"
DIFY_AUTH = "dify_auth"
DIFY_CANARY_FAILED = "dify_canary_failed"
# The service answered, but a URL setting points at no API endpoint (a 404 page) or the Dify app refuses
# the request (missing inputs, another app mode): a configuration to fix, never a restart.
DIFY_MISCONFIGURED = "dify_misconfigured"
EVOLUTION_MISCONFIGURED = "evolution_misconfigured"
WEBHOOK_MISCONFIGURED = "webhook_misconfigured"

FINDING_KINDS = (
    EVOLUTION_DOWN,
    EVOLUTION_AUTH,
    INSTANCE_UNKNOWN,
    INSTANCE_DISCONNECTED,
    INSTANCE_NOT_LOADED,
    SESSION_WEDGED,
    STALE_CONVERSATION,
    SESSION_PAUSED,
    SESSION_CLOSED,
    DIFY_DOWN,
    DIFY_AUTH,
    DIFY_CANARY_FAILED,
    DIFY_MISCONFIGURED,
    EVOLUTION_MISCONFIGURED,
    WEBHOOK_MISCONFIGURED,
)


def assess(results: Sequence[ProbeResult], *, now: float, stall_seconds: float) -> list[Finding]:
    findings: list[Finding] = []
    service_failures: dict[str, list[ProbeResult]] = {"evolution": [], "dify": []}
    refused: dict[str, list[ProbeResult]] = {"evolution": [], "dify": []}
    misconfigured: dict[str, list[ProbeResult]] = {"evolution": [], "dify": []}
    for result in results:
        if result.probe == "version":
            continue  # Evolution's GET / waits on web.whatsapp.com: it never says Evolution is down
        if result.probe == "instances" and result.ok is False and "missing" in result.data:
            findings.extend(_missing_instances(result))
        elif result.probe == "connection_state" and _answered(result):
            findings.extend(_connection(result))
        elif not result.ok and result.data.get("error") == "config":
            misconfigured[_service(result)].append(result)
        elif result.probe == "canary" and not result.ok and result.data.get("error") not in _NOT_THE_APP:
            findings.append(_canary_failed(result))
        elif result.probe == "webhook" and "problem" in result.data:
            if not result.ok:
                findings.append(
                    Finding(WEBHOOK_MISCONFIGURED, result.target, Severity.WARNING, result.detail)
                )
        elif result.probe == "sessions" and result.ok:
            findings.extend(_sessions(result, now=now, stall_seconds=stall_seconds))
        elif not result.ok and result.data.get("error") == "auth":
            refused[_service(result)].append(result)
        elif not result.ok:
            service_failures[_service(result)].append(result)
    for target in ("evolution", "dify"):
        findings.extend(
            _service_findings(target, refused[target], misconfigured[target], service_failures[target])
        )
    return findings


def _service_findings(
    target: str, refused: list[ProbeResult], misconfigured: list[ProbeResult], failed: list[ProbeResult]
) -> list[Finding]:
    """At most one finding of each kind per service. A refused key explains every other failure."""
    evolution = target == "evolution"
    found: list[Finding] = []
    if refused:
        kind, key = (EVOLUTION_AUTH, "EVOLUTION_API_KEY") if evolution else (DIFY_AUTH, "DIFY_API_KEY")
        said = "; ".join(dict.fromkeys(r.detail for r in refused))
        found.append(Finding(kind, target, Severity.CRITICAL, one_line(f"{key} was refused: {said}")))
    if misconfigured:
        kind = EVOLUTION_MISCONFIGURED if evolution else DIFY_MISCONFIGURED
        evidence = {
            "probes": [r.probe for r in misconfigured],
            "status": [r.data.get("status") for r in misconfigured],
        }
        summary = one_line(f"configuration, not an outage: {_details(misconfigured)}")
        found.append(Finding(kind, target, Severity.WARNING, summary, evidence))
    if failed and not refused:
        kind = EVOLUTION_DOWN if evolution else DIFY_DOWN
        evidence = {"probes": [r.probe for r in failed], "errors": [r.data.get("error") for r in failed]}
        found.append(Finding(kind, target, Severity.CRITICAL, one_line(_details(failed)), evidence))
    return found


def _details(results: Sequence[ProbeResult]) -> str:
    """`probe: detail` joined, probes with the same detail named once (liveness, app_info: HTTP 500...)."""
    by_detail: dict[str, list[str]] = {}
    for r in results:
        by_detail.setdefault(r.detail, []).append(r.probe)
    return "; ".join(f"{', '.join(dict.fromkeys(probes))}: {detail}" for detail, probes in by_detail.items())


def _canary_failed(result: ProbeResult) -> Finding:
    """The canary's chat failed while Dify answered: `failure` says how (app or model: Dify is up and a
    restart does not fix it; stalled, truncated, broken, slow, or an HTTP error)."""
    failure = str(result.data.get("failure") or result.data.get("error") or "")
    evidence = {"failure": failure} if failure else {}
    return Finding(
        DIFY_CANARY_FAILED, "dify", Severity.CRITICAL, one_line(f"canary: {result.detail}"), evidence
    )


def _missing_instances(result: ProbeResult) -> list[Finding]:
    return [
        Finding(
            INSTANCE_UNKNOWN,
            f"evolution:{name}",
            Severity.WARNING,
            f"instance {name!r} is in EVOLUTION_INSTANCES but Evolution does not have it",
        )
        for name in result.data["missing"]
    ]


# A canary failing so says the service is down (transport) or the key is refused, not that its app is bad.
_NOT_THE_APP = ("unreachable", "timeout", "auth")


def _service(result: ProbeResult) -> str:
    return result.target.partition(":")[0]


def _answered(result: ProbeResult) -> bool:
    """Evolution answered about this instance (any state, missing state, or unknown instance)."""
    return (
        result.ok
        or "state" in result.data
        or result.data.get("error") == "protocol"
        or (result.data.get("status") == 404)
    )


def _connection(result: ProbeResult) -> list[Finding]:
    if result.ok:
        return []
    state = result.data.get("state")
    if state:
        summary = f"connection state is {state}, not open"
        return [Finding(INSTANCE_DISCONNECTED, result.target, Severity.CRITICAL, summary, {"state": state})]
    if result.data.get("error") == "protocol":
        summary = "connectionState has no state: the instance is in Evolution's database but not loaded"
        return [Finding(INSTANCE_NOT_LOADED, result.target, Severity.CRITICAL, summary)]
    return [Finding(INSTANCE_UNKNOWN, result.target, Severity.WARNING, result.detail)]


def _sessions(result: ProbeResult, *, now: float, stall_seconds: float) -> list[Finding]:
    findings: list[Finding] = []
    for session in result.data.get("sessions", []):
        finding = _session_finding(result.target, session, now=now, stall_seconds=stall_seconds)
        if finding is not None:
            findings.append(replace(finding, subject=result.subjects.get(session["contact"], "")))
    return findings


def _session_finding(
    target: str, session: dict[str, Any], *, now: float, stall_seconds: float
) -> Finding | None:
    """One session of any integration (`integration` in the probe's summary; Dify when absent)."""
    contact = session["contact"]
    integ = BY_NAME.get(str(session.get("integration") or DIFY.name), DIFY)
    evidence: dict[str, Any] = {"contact": contact, "status": session["status"], "integration": integ.name}
    if session.get("shared_with"):
        evidence["shared_with"] = list(session["shared_with"])
    updated = session.get("updated_at")
    age = now - updated if isinstance(updated, int | float) else None
    if session["conversation"] == "unknown":
        return Finding(
            STALE_CONVERSATION,
            target,
            Severity.CRITICAL,
            f"contact {contact}: Dify no longer knows this session's conversation (every message fails)",
            evidence,
        )
    bot = "bot" if integ is DIFY else f"{integ.name} bot"
    if (
        session["status"] == "opened"
        and not session["await_user"]
        and session.get("busy_visible", True) is not False
        and age is not None
        and age > stall_seconds
    ):
        return Finding(
            SESSION_WEDGED,
            target,
            Severity.CRITICAL,
            f"contact {contact}: {bot} busy for {age:.0f}s without answering (limit {stall_seconds:g}s)",
            {**evidence, "age_seconds": round(age, 1)},
        )
    if session["status"] in ("paused", "closed"):
        kind = SESSION_PAUSED if session["status"] == "paused" else SESSION_CLOSED
        note, extra = _left_how(integ, session, age)
        return Finding(
            kind,
            target,
            Severity.WARNING,
            f"contact {contact}: session is {session['status']}; the {bot} ignores this contact{note}",
            {**evidence, **extra},
        )
    return None


def _left_how(integ: Integration, session: dict[str, Any], age: float | None) -> tuple[str, dict[str, Any]]:
    """What becomes of a paused or closed session in this integration (integrations.py), and whether its
    `expire` has passed without clearing it: only Typebot enforces expire, and only for a session that
    reaches its service (a closed one never does: base-chatbot.controller.ts:900)."""
    paused = session["status"] == "paused"
    if paused and integ.reopens_paused:
        return "; its next message reopens it (and is dropped)", {"reopens": True}
    expire = session.get("expire")
    if not isinstance(expire, int) or isinstance(expire, bool) or expire <= 0 or age is None:
        return "", {}
    extra: dict[str, Any] = {"expire_minutes": expire}
    if integ.enforces_expire and paused:
        return f"; its next message after {expire} min idle starts a new one", extra
    if age > expire * 60:
        extra["expired"] = True
        return f"; idle past its expire of {expire} min, which {integ.label} does not clear", extra
    return "", extra
