"""What a session reset removes, read before `dify/changeStatus delete` is sent.

Upstream deletes far more than the instance in the URL: Evolution 2.3.6
`src/api/integrations/chatbot/base-chatbot.controller.ts` changeStatus, `status === 'delete'`, runs
`sessionRepository.deleteMany({where: {remoteJid, botId: {not: null}}})` with no instance filter, so the
contact's sessions go on every instance and every bot integration. The executor reads the contact's Dify
sessions on each watched instance first (`dify/find`, then `dify/fetchSessions/{botId}/{instance}`, as
the sessions probe does), journals what went and says so. The text names instance, bot and status only,
never the contact (the journal keeps contacts by hash).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from watchdog.clients.evolution import EvolutionClient
from watchdog.errors import UpstreamError

MAX_LISTED = 8  # sessions named in a result; the rest are counted
SCOPE_NOTE = "changeStatus delete clears every instance and bot integration"


@dataclass(frozen=True)
class HeldSession:
    instance: str
    bot: str  # "dify", or "dify:<bot id>" when the instance has several Dify bots
    status: str  # opened | paused | closed
    row: str  # the session row's id: tells it apart from a new session the contact opens meanwhile

    @property
    def label(self) -> str:
        return f"{self.instance}/{self.bot} {self.status}"


async def contact_sessions(
    client: EvolutionClient, instances: Iterable[str], remote_jid: str
) -> tuple[list[HeldSession], dict[str, str]]:
    """The contact's Dify sessions on each instance (read concurrently), and why an instance could not
    be read (instance -> reason)."""
    names = sorted(set(instances))
    answers = await asyncio.gather(*(_on(client, name, remote_jid) for name in names), return_exceptions=True)
    held: list[HeldSession] = []
    unread: dict[str, str] = {}
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, UpstreamError):
            unread[name] = _short(answer.message)
        elif isinstance(answer, BaseException):
            raise answer
        else:
            held += answer
    return held, unread


async def _on(client: EvolutionClient, instance: str, remote_jid: str) -> list[HeldSession]:
    bots = await client.dify_bots(instance)
    answers = await asyncio.gather(
        *(client.dify_sessions(instance, b.id) for b in bots), return_exceptions=True
    )
    held = []
    for bot, answer in zip(bots, answers, strict=True):
        if isinstance(answer, BaseException):
            raise answer
        label = f"dify:{bot.id}" if len(bots) > 1 else "dify"
        held += [
            HeldSession(instance, label, s.status or "?", s.id or s.session_id)
            for s in answer
            if s.remote_jid == remote_jid
        ]
    return held


def removed(held: Sequence[HeldSession], unread: dict[str, str]) -> str:
    """For the journal and on-call, e.g. `removed 2 sessions of this contact: loja/dify opened, outra/dify
    paused (changeStatus delete clears every instance and bot integration)`."""
    if held:
        names = ", ".join(h.label for h in held[:MAX_LISTED])
        more = f" and {len(held) - MAX_LISTED} more" if len(held) > MAX_LISTED else ""
        plural = "s" if len(held) != 1 else ""
        text = f"removed {len(held)} session{plural} of this contact: {names}{more}"
    else:
        text = "the contact had no Dify session on the watched instances"
    if unread:
        text += "; not read: " + ", ".join(f"{name} ({why})" for name, why in sorted(unread.items()))
    return f"{text} ({SCOPE_NOTE})"


def _short(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
