"""A small WhatsApp network between emulated instances, so one can write to another by number.

A message an instance sends (its `send.message`: an API `sendText` or its bot's reply) to a number that
belongs to another paired instance (`ownerJid`) arrives there as a customer's message would: through
`receive`, so the recipient posts `messages.upsert` (fromMe false, remoteJid the sender's jid) and hands
it to its bots, as upstream's handler does (whatsapp.baileys.service.ts:1351 `sendDataWebhook(
MESSAGES_UPSERT)`, then :1353 `chatbotController.emit`). The number may belong to an instance of a peer
emulator (`--peer URL`): the message is posted to its `/_sim/inbound` with the number instead of an
instance name. A recipient whose processor died drops it silently; one not connected queues it.

Guess, not upstream: WhatsApp's own delivery is not emulated (no receipts, no LID addressing, no delay
beyond the event loop's turn). Two instances that both run a bot would answer each other for ever, as
real ones would: a heartbeat prober has no bot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from watchdog.sim.evolution import EvolutionSim, Instance

PEER_TIMEOUT_SECONDS = 5.0


def number_of(jid: str) -> str:
    """`5511987654321@s.whatsapp.net` (or a bare number) -> `5511987654321`."""
    return jid.partition("@")[0].partition(":")[0].lstrip("+")


class Network:
    def __init__(self, sim: EvolutionSim, peers: Sequence[str] = ()) -> None:
        self.sim = sim
        self.peers = tuple(p.rstrip("/") for p in peers)
        self.delivered = 0  # messages that reached another instance, here or at a peer

    def owner(self, number: str) -> Instance | None:
        """The paired instance of this emulator whose account has this number."""
        wanted = number_of(number)
        return next(
            (i for i in self.sim.instances.values() if i.owner_jid and number_of(i.owner_jid) == wanted), None
        )

    def sent(self, sender: Instance, data: dict[str, Any]) -> None:
        """A `send.message` left `sender`: deliver it to the instance that owns the number, if any."""
        key, message = data.get("key") or {}, data.get("message") or {}
        jid, text = key.get("remoteJid"), message.get("conversation")
        if not isinstance(jid, str) or not isinstance(text, str) or not sender.owner_jid:
            return
        local = self.owner(jid)
        if local is not None and local is not sender:
            self.sim.spawn(self._here(local.name, sender, text))
        elif local is None and self.peers:
            self.sim.spawn(self._at_peer(number_of(jid), sender, text))

    async def _here(self, name: str, sender: Instance, text: str) -> None:
        await asyncio.sleep(0)  # after the sender's own webhook, as on the wire
        if name in self.sim.instances and sender.owner_jid:
            self.sim.receive(
                name, sender.owner_jid, kind="text", text=text, push_name=sender.profile_name or ""
            )
            self.delivered += 1

    async def _at_peer(self, number: str, sender: Instance, text: str) -> None:
        body = {
            "number": number,
            "remoteJid": sender.owner_jid,
            "text": text,
            "pushName": sender.profile_name or "",
        }
        for peer in self.peers:
            try:
                response = await self.sim.http.post(
                    f"{peer}/_sim/inbound", json=body, timeout=PEER_TIMEOUT_SECONDS
                )
            except httpx.HTTPError:
                continue  # that emulator is down (restarting): the message is lost, as if never sent
            if response.status_code == 200:
                self.delivered += 1
                return
