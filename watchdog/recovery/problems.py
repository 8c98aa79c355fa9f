"""From findings to problems: what to repair and at which rung of the ladder to start. One problem per
incident key; which of them are root causes, which are confirmed and which are only symptoms of a bigger
problem is decided by recovery/attribution.py."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import IntEnum

from watchdog.integrations import DIFY
from watchdog.model import Finding
from watchdog.signals.answering import UNKNOWN


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
# so it starts at L3, as ARCHITECTURE's ladder has it. The heartbeat that never reached an `open` bot
# instance (`e2e_not_received`) is the same dead processor, proven instead of inferred; one the bot instance
# received but never answered (`e2e_no_reply`, its own session reset before each try) is the bot's Dify,
# when Dify is the bot there; another integration's backend (Typebot, n8n, ...) is not ours to restart.
EVOLUTION_KINDS = {"evolution_down", "inbound_stopped", "e2e_not_received"}
DIFY_KINDS = {"dify_down", "dify_silent", "dify_canary_failed", "e2e_no_reply"}
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
# A canary answered, only late (over the turnaround threshold, within the stall time): slow, reported.
SLOW = "slow"
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
    # Attribution says whether the fault is confirmed (recovery/attribution.py); L2, L3 and the pages of a
    # problem that starts at L2 or L3 wait for it. Problems made by hand (tests, tools) count as confirmed.
    confirmed: bool = True

    @property
    def may_be_symptom(self) -> bool:
        """Unanswered customers (one, or several on an instance) may only mean a service is down."""
        return self.start == Level.CONTACT or set(self.kinds) <= {"instance_stalled"}


_FIRST_RUNGS = {"contact": Level.CONTACT, "instance": Level.INSTANCE, "service": Level.SERVICE}


def first_rung(key: str) -> Level:
    """The rung a problem with this incident key starts at (the keys are made in `_problem` below)."""
    return _FIRST_RUNGS.get(key.partition(":")[0], Level.HUMAN)


def repair_targets(problem: Problem) -> frozenset[str]:
    """The targets whose verified repair covers this problem (its settle window follows them)."""
    if problem.key.startswith("contact:"):
        return frozenset({f"contact:{problem.instance}:{problem.contact}"})
    if problem.key.startswith("instance:"):
        return frozenset({f"instance:{problem.instance}", f"service:{problem.service}"})
    if problem.key.startswith("service:"):
        return frozenset({problem.key})
    return frozenset()


def problems_from(findings: Sequence[Finding], *, dify_containers: Sequence[str] = ()) -> list[Problem]:
    """One problem per incident key, every finding that names something to repair included (attribution
    decides which are root causes and which are symptoms)."""
    by_key: dict[str, Problem] = {}
    for finding in findings:
        problem = _problem(finding, dify_containers)
        if problem is None:
            continue
        old = by_key.get(problem.key)
        if old is not None:
            problem = replace(
                old, start=min(old.start, problem.start), kinds=tuple(sorted({*old.kinds, *problem.kinds}))
            )
        by_key[problem.key] = problem
    return list(by_key.values())


def _problem(finding: Finding, dify_containers: Sequence[str]) -> Problem | None:
    name = finding.target.partition(":")[2]
    kind = finding.kind
    app_failed = kind == "dify_canary_failed" and finding.evidence.get("failure") in APP_FAILURES
    if kind == "dify_canary_failed" and finding.evidence.get("failure") == SLOW:
        return None
    not_dify = kind == "e2e_no_reply" and finding.evidence.get("integration", DIFY.name) not in (
        DIFY.name,
        UNKNOWN,
    )
    if kind in HUMAN_KINDS or app_failed or not_dify:
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
        owner = burst_owner(finding, dify_containers)
        return Problem(f"service:{owner}", owner, Level.SERVICE, kinds=(kind,), summary=finding.summary)
    return None  # warnings (paused or closed sessions, other bursts) are reported, not repaired


def burst_owner(finding: Finding, dify_containers: Sequence[str]) -> str:
    """The service an error burst is evidence about: Dify's errors that Evolution printed (DifyService's
    error bodies, `evidence.service` from signals/logstate.py) are Dify's, not Evolution's."""
    about = finding.evidence.get("service")
    if about in ("evolution", "dify"):
        return str(about)
    return "dify" if finding.evidence.get("container") in dify_containers else "evolution"
