"""Fold probe results into findings. Pure: the caller passes `now` and the limits.

Finding kinds are a public contract (metrics, alerts, the recovery ladder): do not rename them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

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
    WEBHOOK_MISCONFIGURED,
)


def assess(results: Sequence[ProbeResult], *, now: float, stall_seconds: float) -> list[Finding]:
    findings: list[Finding] = []
    service_failures: dict[str, list[ProbeResult]] = {"evolution": [], "dify": []}
    for result in results:
        if result.probe == "instances" and result.ok is False and "missing" in result.data:
            findings.extend(_missing_instances(result))
        elif result.probe == "connection_state" and _answered(result):
            findings.extend(_connection(result))
        elif result.probe == "canary" and not result.ok and result.data.get("error") not in _TRANSPORT:
            findings.append(
                Finding(DIFY_CANARY_FAILED, "dify", Severity.CRITICAL, f"canary: {result.detail}")
            )
        elif result.probe == "webhook" and "problem" in result.data:
            if not result.ok:
                findings.append(
                    Finding(WEBHOOK_MISCONFIGURED, result.target, Severity.WARNING, result.detail)
                )
        elif result.probe == "sessions" and result.ok:
            findings.extend(_sessions(result, now=now, stall_seconds=stall_seconds))
        elif not result.ok and result.data.get("error") == "auth":
            service = _service(result)
            kind = EVOLUTION_AUTH if service == "evolution" else DIFY_AUTH
            key = "EVOLUTION_API_KEY" if service == "evolution" else "DIFY_API_KEY"
            findings.append(Finding(kind, service, Severity.CRITICAL, f"{key} was refused: {result.detail}"))
        elif not result.ok:
            service_failures[_service(result)].append(result)
    for target, failed in service_failures.items():
        if failed and not any(f.target == target and f.kind in (EVOLUTION_AUTH, DIFY_AUTH) for f in findings):
            kind = EVOLUTION_DOWN if target == "evolution" else DIFY_DOWN
            detail = "; ".join(f"{r.probe}: {r.detail}" for r in failed)
            evidence = {"probes": [r.probe for r in failed], "errors": [r.data.get("error") for r in failed]}
            findings.append(Finding(kind, target, Severity.CRITICAL, detail, evidence))
    return findings


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


_TRANSPORT = ("unreachable", "timeout")  # these say the service is down, not that its answers are bad


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
    contact = session["contact"]
    evidence = {"contact": contact, "status": session["status"]}
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
    if (
        session["status"] == "opened"
        and not session["await_user"]
        and age is not None
        and age > stall_seconds
    ):
        return Finding(
            SESSION_WEDGED,
            target,
            Severity.CRITICAL,
            f"contact {contact}: bot busy for {age:.0f}s without answering (limit {stall_seconds:g}s)",
            {**evidence, "age_seconds": round(age, 1)},
        )
    if session["status"] in ("paused", "closed"):
        kind = SESSION_PAUSED if session["status"] == "paused" else SESSION_CLOSED
        return Finding(
            kind,
            target,
            Severity.WARNING,
            f"contact {contact}: session is {session['status']}; the bot ignores this contact",
            evidence,
        )
    return None
