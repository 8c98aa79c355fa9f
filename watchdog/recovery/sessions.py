"""The L1 repair of one contact: read its bot sessions, `changeStatus delete` through the integration that
holds them, read again. What it removed goes in the journal.

Upstream deletes far more than the instance in the URL: Evolution 2.3.6
`src/api/integrations/chatbot/base-chatbot.controller.ts` changeStatus, `status === 'delete'` (:461-470),
runs `sessionRepository.deleteMany({where: {remoteJid, botId: {not: null}}})` with no instance or type
filter, so the contact's sessions go on every instance and in every bot integration. So the contact's
sessions are read first on each watched instance, in every integration (`{name}/find`, then
`{name}/fetchSessions/{botId}/{instance}`, as the sessions probe does), and the text names instance,
integration and status only, never the contact (the journal keeps contacts by hash). The call goes to the
route of the integration holding the contact on the instance acted on (watchdog/integrations.py): any
would delete the same rows, but a disabled integration's route answers 400 and deletes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from watchdog.clients.evolution import EvolutionClient
from watchdog.errors import UpstreamError
from watchdog.integrations import BY_NAME, DIFY, INTEGRATIONS, Integration

MAX_LISTED = 8  # sessions named in a result; the rest are counted
SCOPE_NOTE = "changeStatus delete clears every instance and bot integration"


@dataclass(frozen=True)
class HeldSession:
    instance: str
    bot: str  # the integration ("dify", "typebot", ...), or "<integration>:<bot id>" when it has several bots
    status: str  # opened | paused | closed
    row: str  # the session row's id: tells it apart from a new session the contact opens meanwhile
    integration: str = DIFY.name

    @property
    def label(self) -> str:
        return f"{self.instance}/{self.bot} {self.status}"


@dataclass(frozen=True)
class ContactRead:
    held: list[HeldSession]
    unread: dict[str, str]  # instance -> why it could not be read
    answered: dict[str, tuple[str, ...]] = field(default_factory=dict)  # instance -> integrations on there


async def read_contact(client: EvolutionClient, instances: Iterable[str], remote_jid: str) -> ContactRead:
    """The contact's sessions in every integration on each instance (read concurrently)."""
    names = sorted(set(instances))
    answers = await asyncio.gather(*(_on(client, name, remote_jid) for name in names), return_exceptions=True)
    read = ContactRead([], {})
    for name, answer in zip(names, answers, strict=True):
        if isinstance(answer, UpstreamError):
            read.unread[name] = _short(answer.message)
        elif isinstance(answer, BaseException):
            raise answer
        else:
            read.held.extend(answer[0])
            read.answered[name] = answer[1]
    return read


async def reset_contact(
    client: EvolutionClient, instance: str, remote_jid: str, scope: Collection[str]
) -> tuple[bool, str]:
    """Read, delete through the holding integration's route, verify the rows are gone: (ok, what)."""
    before = await read_contact(client, scope, remote_jid)
    if instance in before.unread:
        return (
            False,
            f"nothing deleted: {instance}'s sessions could not be read first ({before.unread[instance]})",
        )
    integ = route_for(before, instance)
    if integ is None:
        return False, f"nothing deleted: no bot integration answers on {instance}"
    gone = removed(before.held, before.unread, integ)
    try:
        await client.chatbots.change_status(integ, instance, remote_jid, integ.unwedge_status)
    except UpstreamError as exc:
        return False, f"changeStatus {integ.unwedge_status} failed: {exc.message}"
    after = await read_contact(client, set(scope) - before.unread.keys(), remote_jid)
    if instance in after.unread:
        return False, f"not verified: {instance} unreadable after the delete; {gone}"
    rows = {h.row for h in before.held}
    still = [h.label for h in after.held if h.row in rows]
    if still:
        return False, f"still there after changeStatus delete: {', '.join(still)}"
    return True, gone


def route_for(read: ContactRead, instance: str) -> Integration | None:
    """The integration whose changeStatus to call on `instance`: the one holding the contact there (an
    opened session first), else one holding it elsewhere that answers here, else the first that answers
    here (the delete then only makes sure)."""
    here = read.answered.get(instance, ())
    mine = sorted((h for h in read.held if h.instance == instance), key=lambda h: h.status != "opened")
    for held in [*mine, *read.held]:
        if held.integration in here:
            return BY_NAME[held.integration]
    return next((i for i in INTEGRATIONS if i.name in here), None)


async def _on(
    client: EvolutionClient, instance: str, remote_jid: str
) -> tuple[list[HeldSession], tuple[str, ...]]:
    read = await client.chatbots.read_instance(instance)
    held = []
    for name, bots in read.bots.items():
        for bot in bots:
            label = f"{name}:{bot.id}" if len(bots) > 1 else name
            held += [
                HeldSession(instance, label, s.status or "?", s.id or s.session_id, name)
                for s in read.sessions.get(bot.id, ())
                if s.remote_jid == remote_jid
            ]
    return held, tuple(read.bots)


def removed(held: Sequence[HeldSession], unread: dict[str, str], via: Integration = DIFY) -> str:
    """For the journal and on-call, e.g. `removed 2 sessions of this contact: loja/dify opened, outra/typebot
    paused (changeStatus delete clears every instance and bot integration)`."""
    if held:
        names = ", ".join(h.label for h in held[:MAX_LISTED])
        more = f" and {len(held) - MAX_LISTED} more" if len(held) > MAX_LISTED else ""
        plural = "s" if len(held) != 1 else ""
        text = f"removed {len(held)} session{plural} of this contact: {names}{more}"
    else:
        text = "the contact had no bot session on the watched instances"
    if unread:
        text += "; not read: " + ", ".join(f"{name} ({why})" for name, why in sorted(unread.items()))
    scope = SCOPE_NOTE if via is DIFY else f"{via.name}/{SCOPE_NOTE}"
    return f"{text} ({scope})"


def _short(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
