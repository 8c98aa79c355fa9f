"""Apply doctor's safe fixes: delete a stuck session, complete the watchdog's webhook. Nothing else.

Never logout or delete an instance (they destroy the session and the message processor), never
move a webhook that points elsewhere. Each fix is checked by diagnosing again afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import IO

from watchdog.clients.evolution import EvolutionClient
from watchdog.doctor.diagnosis import DELETE_SESSION, WEBHOOK_EVENTS, Fix
from watchdog.errors import UpstreamError
from watchdog.integrations import integration
from watchdog.model import contact_id
from watchdog.probes.webhook import NEEDED_EVENTS


@dataclass(frozen=True)
class FixResult:
    action: str
    instance: str
    contact: str  # "" for instance-wide fixes
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {
            "action": self.action,
            "instance": self.instance,
            "contact": self.contact or None,
            "ok": self.ok,
            "detail": self.detail,
        }


def confirm(count: int, stdin: IO[str], stderr: IO[str]) -> bool:
    """y/N on stdin; anything but y/yes (including end of input) is no."""
    stderr.write(f"Apply {count} safe fix(es) listed above? [y/N] ")
    stderr.flush()
    return stdin.readline().strip().lower() in ("y", "yes")


async def apply_fixes(
    client: EvolutionClient, fixes: Sequence[Fix], *, contact_key: bytes
) -> list[FixResult]:
    return [await _apply(client, fix, contact_key) for fix in fixes]


async def _apply(client: EvolutionClient, fix: Fix, contact_key: bytes) -> FixResult:
    contact = contact_id(fix.subject, key=contact_key) if fix.subject else ""
    try:
        if fix.action == DELETE_SESSION:
            integ = integration(fix.route)
            await client.chatbots.change_status(integ, fix.instance, fix.subject, integ.unwedge_status)
            detail = f"deleted the bot session of contact {contact}"
        elif fix.action == WEBHOOK_EVENTS:
            if not await _complete_webhook(client, fix.instance):
                return FixResult(
                    fix.action, fix.instance, contact, False, "the webhook is gone: nothing changed"
                )
            detail = f"webhook enabled with {', '.join(NEEDED_EVENTS)} (url and headers kept)"
        else:
            raise ValueError(f"not a safe fix: {fix.action!r}")
    except UpstreamError as exc:
        return FixResult(fix.action, fix.instance, contact, False, exc.message)
    return FixResult(fix.action, fix.instance, contact, True, detail)


async def _complete_webhook(client: EvolutionClient, instance: str) -> bool:
    """Read the webhook now (not as diagnosed) and write it back whole, enabled, with the needed events."""
    hook = await client.webhook(instance)
    if hook is None:
        return False
    events = tuple(hook.events) + tuple(e for e in NEEDED_EVENTS if e not in hook.events)
    await client.set_webhook(instance, replace(hook, enabled=True, events=events))
    return True
