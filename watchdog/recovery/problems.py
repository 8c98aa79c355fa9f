"""From findings to problems: what to repair, at which rung of the ladder to start, and what is only
a symptom of a bigger problem (contacts of an instance that is down are not repaired one by one)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from watchdog.model import Finding


class Level(IntEnum):
    CONTACT = 1  # reset that contact's Dify session
    INSTANCE = 2  # restart the Evolution instance
    SERVICE = 3  # restart the Evolution or Dify containers
    HUMAN = 4  # page on-call, open the circuit


CONTACT_KINDS = {"stalled_contact", "stale_conversation", "session_wedged"}
INSTANCE_KINDS = {"instance_disconnected", "instance_not_loaded", "instance_stalled", "inbound_stopped"}
EVOLUTION_KINDS = {"evolution_down", "processor_dead"}
DIFY_KINDS = {"dify_down", "dify_silent", "dify_canary_failed"}
# Only a person can fix these: a logout needs a QR scan, a wrong key or webhook needs a config change.
HUMAN_KINDS = {"logged_out", "evolution_auth", "dify_auth", "webhook_misconfigured", "container_missing"}
# error_burst escalates by the container it came from; `error` lines alone are not worth a restart.
BURST_RULES_WORTH_A_RESTART = {
    "http_500",
    "unhandled_rejection",
    "worker_timeout",
    "redis_error",
    "database_error",
}


@dataclass(frozen=True)
class Problem:
    key: str  # the incident key: stable while the problem lasts, e.g. "instance:loja"
    service: str  # evolution | dify: which container restart is its L3
    start: Level
    instance: str = ""
    contact: str = ""  # the contact's hash (shown) ...
    subject: str = field(default="", repr=False)  # ... and its remoteJid (acted on, never shown)
    kinds: tuple[str, ...] = ()
    summary: str = ""


def problems_from(findings: Sequence[Finding], *, dify_containers: Sequence[str] = ()) -> list[Problem]:
    """One problem per incident key; contact problems are dropped when their instance or Evolution
    itself has a problem (they are its symptoms, and the bigger repair covers them)."""
    by_key: dict[str, Problem] = {}
    for finding in findings:
        problem = _problem(finding, dify_containers)
        if problem is None:
            continue
        old = by_key.get(problem.key)
        if old is not None:
            problem = Problem(
                old.key,
                old.service,
                min(old.start, problem.start),
                old.instance,
                old.contact,
                old.subject,
                tuple(sorted({*old.kinds, *problem.kinds})),
                old.summary,
            )
        by_key[problem.key] = problem
    bigger = {p.instance for p in by_key.values() if p.start >= Level.INSTANCE and p.instance}
    evolution_down = any(p.key == "service:evolution" for p in by_key.values())
    return [
        p
        for p in by_key.values()
        if not (p.start == Level.CONTACT and (p.instance in bigger or evolution_down))
    ]


def _problem(finding: Finding, dify_containers: Sequence[str]) -> Problem | None:
    name = finding.target.partition(":")[2]
    kind = finding.kind
    if kind in HUMAN_KINDS:
        return Problem(
            f"human:{kind}:{finding.target}", "evolution", Level.HUMAN, kinds=(kind,), summary=finding.summary
        )
    if kind in CONTACT_KINDS and finding.subject:
        contact = str(finding.evidence.get("contact", ""))
        return Problem(
            f"contact:{name}:{contact}",
            "evolution",
            Level.CONTACT,
            name,
            contact,
            finding.subject,
            (kind,),
            finding.summary,
        )
    if kind in INSTANCE_KINDS:
        return Problem(
            f"instance:{name}", "evolution", Level.INSTANCE, name, kinds=(kind,), summary=finding.summary
        )
    if kind in EVOLUTION_KINDS:
        return Problem(
            "service:evolution", "evolution", Level.SERVICE, kinds=(kind,), summary=finding.summary
        )
    if kind in DIFY_KINDS:
        return Problem("service:dify", "dify", Level.SERVICE, kinds=(kind,), summary=finding.summary)
    if kind == "error_burst" and finding.evidence.get("rule") in BURST_RULES_WORTH_A_RESTART:
        owner = "dify" if finding.evidence.get("container") in dify_containers else "evolution"
        return Problem(f"service:{owner}", owner, Level.SERVICE, kinds=(kind,), summary=finding.summary)
    return None  # warnings (paused or closed sessions, other bursts) are reported, not repaired
