"""What doctor could not check from the API, said plainly so silence is never read as "fine"."""

from __future__ import annotations

from watchdog.doctor import versions
from watchdog.doctor.snapshot import UNVERIFIED, Snapshot


def not_checked(snap: Snapshot) -> list[str]:
    if snap.unreachable is not None:
        return ["everything: Evolution could not be read"]
    notes = _version_notes(snap)
    notes += _protocol_notes(snap)
    notes += _conversation_notes(snap)
    hookless = [i.name for i in snap.instances if i.webhook is None and not i.unread]
    if hookless and not snap.webhook_url:
        notes.append(
            f"webhooks of {', '.join(hookless)}: no instance webhook, and the global one "
            "(WEBHOOK_GLOBAL_URL, WEBHOOK_EVENTS_*) is Evolution environment the API does not show; "
            "set WATCHDOG_WEBHOOK_URL to have a missing instance webhook reported"
        )
    notes += _off_notes(snap)
    if any(s.status in ("closed", "paused") for inst in snap.instances for s in inst.sessions):
        notes.append(
            "why a session is closed (finish keyword or closed by hand) and who paused it: Evolution "
            "stores only the status"
        )
    return notes


def _version_notes(snap: Snapshot) -> list[str]:
    version = versions.parse_version(snap.version)
    through = versions.shown(versions.VERIFIED_THROUGH)
    if version is None and not snap.version:
        why = "; ".join(snap.unread) or "no version in its answer"
        return [
            f"version checks: none, GET / did not answer ({why}); from 2.3.1 it fetches web.whatsapp.com "
            "with no timeout, so an Evolution host without outbound access to it never answers there"
        ]
    if version is None:
        return [f"version checks: {snap.version!r} is not a version number, so none were made"]
    if version > versions.VERIFIED_THROUGH:
        return [
            f"version checks: {snap.version} is newer than {through}, the last release these checks were "
            "verified against; defects known up to it may or may not remain, and none is reported here"
        ]
    if version < versions.OLDEST_COVERED:
        oldest = versions.shown(versions.OLDEST_COVERED)
        return [f"version checks: nothing is known here about releases before {oldest}"]
    return []


def _protocol_notes(snap: Snapshot) -> list[str]:
    """CONFIG_SESSION_PHONE_VERSION is container environment: the API never shows it."""
    version = versions.parse_version(snap.version)
    if version is None:
        return []
    if versions.phone_version_setting_honoured(version):
        return [
            f"CONFIG_SESSION_PHONE_VERSION: Evolution {snap.version} honours it (it was removed in 2.3.1), "
            "and when set it overrides the WhatsApp Web version the Baileys library picks; it is an "
            "environment variable of the Evolution container that no endpoint shows. Look with "
            "`docker exec <evolution container> printenv CONFIG_SESSION_PHONE_VERSION` and remove it "
            "unless you pinned a version on purpose"
        ]
    web = snap.whatsapp_web_version
    note = (
        f"CONFIG_SESSION_PHONE_VERSION: ignored by {snap.version} (removed in 2.3.1), nothing to check. "
        + (
            f"GET / reports WhatsApp Web {web}, fetched from web.whatsapp.com when asked; "
            if web
            else "GET / reports no whatsappWebVersion, which 2.3.1+ fetches from web.whatsapp.com: "
            "that fetch seems to fail from the Evolution host; "
        )
        + "the version each instance connected with is not in the API"
    )
    return [note]


def _conversation_notes(snap: Snapshot) -> list[str]:
    unverified = [
        s
        for inst in snap.instances
        for s in inst.sessions
        if s.conversation == UNVERIFIED and s.status == "opened" and s.integration == "dify"
    ]
    if not unverified:
        return []
    why = (
        "their bots use a Dify key other than DIFY_API_KEY, or Dify did not answer"
        if snap.dify_configured
        else "DIFY_URL and DIFY_API_KEY are not set"
    )
    return [f"Dify conversations of {len(unverified)} opened session(s) were not verified: {why}"]


def _off_notes(snap: Snapshot) -> list[str]:
    """Integrations whose routes answered `<label> is disabled` (their *_ENABLED is false on Evolution) or
    do not exist in this release: nothing of theirs was read."""
    off = sorted({name for inst in snap.instances for name in inst.off})
    if not off:
        return []
    return [f"bot integrations off on this Evolution (disabled, or not in this release): {', '.join(off)}"]
