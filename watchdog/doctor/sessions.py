"""Doctor's session checks, for every bot integration (watchdog/integrations.py): stale, busy, paused,
closed and shared sessions, each with its integration's changeStatus as the fix."""

from __future__ import annotations

from watchdog.doctor import versions
from watchdog.doctor.diagnosis import DELETE_SESSION, SESSION_SHARED, Diagnosis, Fix
from watchdog.doctor.snapshot import UNKNOWN, BotView, InstanceView, SessionView, Snapshot
from watchdog.health import SESSION_CLOSED, SESSION_PAUSED, SESSION_WEDGED, STALE_CONVERSATION
from watchdog.integrations import BY_NAME, DIFY, Integration
from watchdog.model import Finding, Severity, instance_target

CRITICAL, WARNING = Severity.CRITICAL, Severity.WARNING


def stuck_sessions(
    inst: InstanceView, version: versions.Version | None, snap: Snapshot | None = None
) -> list[Diagnosis]:
    """Every integration's stuck sessions, each with its integration's own changeStatus as the fix."""
    found: list[Diagnosis] = []
    for session in inst.sessions:
        integ = BY_NAME.get(session.integration, DIFY)
        bot = inst.bot(session.bot_id)
        fix = Fix(
            f"delete the session (POST /{integ.name}/changeStatus/{inst.name} status "
            f"{integ.unwedge_status}, for contact {session.contact}; Evolution deletes that contact's bot "
            "sessions on every instance): "
            "the next message starts a new conversation",
            DELETE_SESSION,
            inst.name,
            session.remote_jid,
            integ.name,
        )
        evidence = {"contact": session.contact, "status": session.status, "bot": session.bot_id}
        if integ is not DIFY:
            evidence["integration"] = integ.name
        summary = _busy(session, integ, snap) or _stuck_summary(session, bot, version, integ, snap)
        if summary is None:
            continue
        kind, severity, text = summary
        found.append(Diagnosis(Finding(kind, instance_target(inst.name), severity, text, evidence), fix))
    return found


def shared_sessions(inst: InstanceView) -> list[Diagnosis]:
    """A contact with sessions of several integrations here: Evolution's getSession (chatbot.controller.ts:
    170-189) gives every integration only the newest, so the others are dormant, and a newest one closed
    silences all. A person decides which bot should have the contact: no automatic fix."""
    found: list[Diagnosis] = []
    seen: set[str] = set()
    for session in inst.sessions:
        if not session.shared_with or session.contact in seen:
            continue
        seen.add(session.contact)
        held = sorted({session.integration, *session.shared_with})
        text = (
            f"contact {session.contact} has sessions of {', '.join(held)} here: each integration sees only "
            "the newest, so the others never answer this contact"
        )
        evidence = {"contact": session.contact, "integrations": held}
        fix = Fix(
            "if one bot should have the contact, delete its sessions (any of these integrations' "
            "changeStatus, status delete, clears them all); its next message goes where its trigger says"
        )
        found.append(
            Diagnosis(Finding(SESSION_SHARED, instance_target(inst.name), WARNING, text, evidence), fix)
        )
    return found


def _busy(
    session: SessionView, integ: Integration, snap: Snapshot | None
) -> tuple[str, Severity, str] | None:
    """A turn older than the stall limit, where awaitUser shows one (integrations.py marks_answered)."""
    if snap is None or snap.taken_at is None or snap.stall_seconds is None or session.updated_at is None:
        return None
    age = snap.taken_at - session.updated_at
    if (
        session.status != "opened"
        or session.await_user
        or not integ.marks_answered
        or age <= snap.stall_seconds
    ):
        return None
    who = "the bot" if integ is DIFY else f"the {integ.name} bot"
    text = f"contact {session.contact}: {who} has been on one turn for {age:.0f}s without answering"
    return SESSION_WEDGED, CRITICAL, text + f" (limit {snap.stall_seconds:g}s)"


def _stuck_summary(
    session: SessionView,
    bot: BotView | None,
    version: versions.Version | None,
    integ: Integration = DIFY,
    snap: Snapshot | None = None,
) -> tuple[str, Severity, str] | None:
    who = f"contact {session.contact}"
    if session.conversation == UNKNOWN:
        text = f"{who}: Dify no longer knows this session's conversation_id (404 Conversation Not Exists.)"
        return STALE_CONVERSATION, CRITICAL, text + ": every message from this contact fails"
    if session.status not in ("closed", "paused"):
        return None
    expire = bot.expire if bot is not None else None
    never = ""
    if integ is DIFY and version is not None and expire and _defect(877).affects(version):
        never = f"; expire={expire} does not clear it on this version (#877)"
    elif integ is not DIFY:
        never = _other_expiry(session, integ, expire, snap)
    bot_name = "the bot" if integ is DIFY else f"the {integ.name} bot"
    if session.status == "closed":
        keyword = bot.keyword_finish if bot is not None and bot.keyword_finish else "the finish keyword"
        text = f"{who}: session closed (by {keyword!r} or by hand); {bot_name} ignores this contact{never}"
        return SESSION_CLOSED, WARNING, text
    cause = (
        "a message typed on the phone (stopBotFromMe) or by hand" if bot and bot.stop_bot_from_me else "hand"
    )
    if integ.reopens_paused:
        text = f"{who}: session paused by {cause}; its next message reopens it and is dropped (OpenAI)"
        return SESSION_PAUSED, WARNING, text
    text = f"{who}: session paused by {cause}; {bot_name} ignores this contact{never}"
    return SESSION_PAUSED, WARNING, text


def _other_expiry(session: SessionView, integ: Integration, expire: int | None, snap: Snapshot | None) -> str:
    """What `expire` does for a paused or closed session outside Dify (integrations.py enforces_expire)."""
    if not expire:
        return ""
    if integ.enforces_expire and session.status == "paused":
        return f"; its next message after {expire} min idle starts a new session (Typebot enforces expire)"
    idle = ""
    if snap is not None and snap.taken_at is not None and session.updated_at is not None:
        idle = f", idle {(snap.taken_at - session.updated_at) / 60:.0f} min"
    return f"; expire={expire} does not clear it ({integ.label} never reads it for this{idle})"


def _defect(issue: int) -> versions.KnownDefect:
    return next(d for d in versions.KNOWN_DEFECTS if d.issue == issue)
