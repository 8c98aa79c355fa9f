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
INSTANCE_KINDS = {"instance_disconnected", "instance_not_loaded", "instance_stalled"}
# Inbound that stopped while the instance says `open` is the message processor (upstream #2647), which
# dies silently (nothing in the log: `inbound_stopped` is read from the silence alone). An instance restart
# does not reset it (reference: restart "does NOT reset ... message processor"), the process restart does;
# so it starts at L3, as ARCHITECTURE's ladder has it.
EVOLUTION_KINDS = {"evolution_down", "inbound_stopped"}
DIFY_KINDS = {"dify_down", "dify_silent", "dify_canary_failed"}
# Only a person can fix these: a logout needs a QR scan, a wrong key or webhook needs a config change.
HUMAN_KINDS = {
    "logged_out",
    "evolution_auth",
    "dify_auth",
    "webhook_misconfigured",
    "container_missing",
    "evolution_misconfigured",  # a URL that answers a web page or a redirect: a setting to correct
    "dify_misconfigured",  # the same, or Dify refusing the app call (missing inputs, wrong app mode)
}
# A Dify that answers but whose app or model fails (the canary's HTTP 200 then an `error` event) is not
# repaired by restarting Dify: someone must look at the app, the model provider or its quota.
APP_FAILURES = {"app", "model"}
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

    @property
    def may_be_symptom(self) -> bool:
        """Unanswered customers (one, or several on an instance) may only mean a service is down."""
        return self.start == Level.CONTACT or set(self.kinds) <= {"instance_stalled"}


_FIRST_RUNGS = {"contact": Level.CONTACT, "instance": Level.INSTANCE, "service": Level.SERVICE}


def first_rung(key: str) -> Level:
    """The rung a problem with this incident key starts at (the keys are made in `_problem` below)."""
    return _FIRST_RUNGS.get(key.partition(":")[0], Level.HUMAN)


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
    # With Evolution or Dify down nobody gets an answer: unanswered contacts (alone or several on an
    # instance) are symptoms, and the service is the repair.
    service_down = any(p.key in ("service:evolution", "service:dify") for p in by_key.values())
    return [p for p in by_key.values() if not _symptom(p, bigger, service_down)]


def _symptom(problem: Problem, bigger: set[str], service_down: bool) -> bool:
    if problem.start == Level.CONTACT:
        return problem.instance in bigger or service_down
    return service_down and problem.may_be_symptom


def _problem(finding: Finding, dify_containers: Sequence[str]) -> Problem | None:
    name = finding.target.partition(":")[2]
    kind = finding.kind
    app_failed = kind == "dify_canary_failed" and finding.evidence.get("failure") in APP_FAILURES
    if kind in HUMAN_KINDS or app_failed:
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
