"""One message's way through a bot integration, the same for every integration: what the chatbot controller
sees (`Inbound`), what its `emit` hands the service's `process` (`Turn`, base-chatbot.controller.ts:788-949)
and the reply going out (`send_reply`, base-chatbot.service.ts `sendMessageWhatsApp`). Every wait upstream
makes is multiplied by the emulator's `time_scale` (1.0 = upstream's own timing).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from watchdog.sim.messages import new_message_id, reply_data

if TYPE_CHECKING:
    from watchdog.sim.bots import Bot
    from watchdog.sim.evolution import EvolutionSim, Instance

# sendSingleMessage: setTimeout(max(len * timePerChar, 1000) capped at 20000 ms), then textMessage types for
# `delayMessage || 1000` ms (base-chatbot.service.ts:277-301, whatsapp.baileys.service.ts:2146-2176).
MIN_SEND_DELAY_MS, MAX_SEND_DELAY_MS, DEFAULT_TYPING_MS = 1000, 20000, 1000
RECORD_GONE = "An operation failed because it depends on one or more records that were required but not found"


@dataclass(frozen=True)
class Inbound:
    """A `messages.upsert` as the chatbot controller sees it."""

    remote_jid: str
    from_me: bool
    push_name: str
    kind: str
    content: str | None  # getConversationMessage: None for stickers and video notes
    msg_id: str
    base64: str | None = None  # set when the instance's webhook has base64 on


@dataclass(frozen=True)
class Turn:
    """What `emit` found for one message: the bot that answers it and the settings it answers with."""

    inst: Instance
    msg: Inbound
    bot: Bot
    settings: dict[str, Any]  # emit's merge: the bot's value, else the settings row's
    content: str | None  # the message's text (a debounced burst joined); None where upstream has undefined

    @property
    def jid(self) -> str:
        return self.msg.remote_jid


async def send_reply(
    sim: EvolutionSim, inst: Instance, jid: str, text: str, settings: dict[str, Any]
) -> bool:
    """`sendMessageWhatsApp` for text (base-chatbot.service.ts:178-337), every integration's: each part
    after its delay, then typing, then `send.message`. False when the instance cannot send: the turn
    never ends (an unhandled rejection inside setTimeout)."""
    parts = [p for p in text.split("\n\n") if p.strip()] if settings.get("splitMessages") else [text]
    for part in parts:
        part = part.strip()
        per_char = int(settings.get("timePerChar") or 0)
        delay_ms = min(max(len(part) * per_char, MIN_SEND_DELAY_MS), MAX_SEND_DELAY_MS)
        await asyncio.sleep(delay_ms / 1000 * sim.time_scale)
        if inst.state != "open" or not inst.loaded:
            # textMessage throws inside setTimeout: an unhandled rejection, and the turn never ends.
            sim.log.evolution(
                "ERROR", "unhandledRejection", {"origin": "Promise { <rejected> }", "stderr": 2}
            )
            error = {"status": 400, "error": "Bad Request", "message": ["Error: Connection Closed"]}
            sim.log.evolution("ERROR", "unhandledRejection", error)
            return False
        typing_ms = int(settings.get("delayMessage") or DEFAULT_TYPING_MS)
        await asyncio.sleep(typing_ms / 1000 * sim.time_scale)
        sim.emit(inst, "send.message", reply_data(inst, jid, new_message_id(), part))
    return True
