"""Evolution 2.3.6's Typebot integration at work (TYPEBOT_API_VERSION=latest, its default).

Source: src/api/integrations/chatbot/typebot/services/typebot.service.ts: `createNewSession` (:85-168,
startChat; the row's sessionId is `<random>-<Typebot session id>`), `processMessages` (:271-437: an
`input` in the answer marks the session awaiting the user, none ends it: deleted, or closed with
keepOpen) and `processTypebot` (:566-1021). What it means for a stuck contact:
* `expire` is enforced, lazily: a session idle longer than expire minutes is replaced when the next message
  arrives (:595-760), paused ones included; a closed one never gets that far (the controller returns on
  closed, base-chatbot.controller.ts:900).
* An existing session is set awaitUser false before continueChat (:905-914) and continueChat has no
  try/catch (:1000): a Typebot that hangs, fails or forgot the session leaves it opened, awaitUser false;
  every later message of the contact fails the same way until the session expires or is deleted.
"""

from __future__ import annotations

import math
import secrets
import time
from typing import Any

from watchdog.sim.bot_services import AxiosError, BotService
from watchdog.sim.bot_turn import Turn
from watchdog.sim.bots import Bot, Session, cuid


class TypebotService(BotService):
    async def process_bot(self, turn: Turn, session: Session | None) -> None:
        expire = int(turn.settings.get("expire") or 0)
        if session is not None and expire > 0 and self._idle_minutes(session) > expire:
            self.end_session(turn, session)
            await self._fresh(turn)
            return
        if session is not None and session.status != "opened":
            return
        if session is None:
            await self._fresh(turn)
            return
        session.status, session.await_user = "opened", False
        self.sim.touch(session)
        if await self._unknown_or_finish(turn, session):
            return
        parts = session.session_id.split("-")
        sid = parts[1] if len(parts) > 1 else "undefined"
        await self._messages(turn, session, await self._continue(turn, sid))

    async def _fresh(self, turn: Turn) -> None:
        """startChat; its messages go out, else the contact's message goes to continueChat (:767-902)."""
        data, session = await self._start(turn)
        if data and data.get("messages"):
            if session is not None:
                await self._messages(turn, session, data)
            return
        if session is not None and await self._unknown_or_finish(turn, session):
            return
        sid = data.get("sessionId") if data else None
        try:
            answer = await self._continue(turn, str(sid or "undefined"))
        except AxiosError as exc:
            self.log("ERROR", {"message": str(exc), "status": exc.status})
            return
        if session is not None:
            await self._messages(turn, session, answer)

    async def _continue(self, turn: Turn, sid: str) -> Any:
        """`continueChat` with the contact's message."""
        return await self.post(
            f"{_url(turn.bot)}/api/v1/sessions/{sid}/continueChat", {"message": turn.content}
        )

    async def _start(self, turn: Turn) -> tuple[dict[str, Any] | None, Session | None]:
        """`createNewSession`: startChat with the prefilled variables; a row only when it names a session."""
        msg, bot = turn.msg, turn.bot
        variables = {
            "remoteJid": msg.remote_jid,
            "pushName": msg.push_name,
            "instanceName": turn.inst.name,
            "serverUrl": self.sim.webhooks.server_url,
            "apiKey": self.sim.api_key,  # the global key (typebot.service.ts:103)
            "ownerJid": None,
        }
        url = f"{_url(bot)}/api/v1/typebots/{bot.extra.get('typebot')}/startChat"
        try:
            data = await self.post(url, {"prefilledVariables": variables})
        except AxiosError as exc:
            self.log("ERROR", {"message": str(exc), "status": exc.status})
            return None, None
        if not isinstance(data, dict):
            return None, None
        session = None
        if data.get("sessionId"):
            rand = str(secrets.randbelow(10**10))
            session = Session(cuid(), msg.remote_jid, f"{rand}-{data['sessionId']}", bot.id, msg.push_name)
            session.type = "typebot"
            turn.inst.sessions[msg.remote_jid] = session
            self.sim.touch(session)
        return data, session

    async def _unknown_or_finish(self, turn: Turn, session: Session) -> bool:
        """No text: the unknown message. The finish keyword: the session ends. True when either applied."""
        content = turn.content
        if not content:
            unknown = turn.settings.get("unknownMessage")
            if unknown:
                await self.reply(turn, str(unknown), _typebot_settings(turn.settings))
            return True
        finish = turn.settings.get("keywordFinish")
        if finish and content.lower() == str(finish).lower():
            self.end_session(turn, session)
            return True
        return False

    async def _messages(self, turn: Turn, session: Session, data: Any) -> None:
        """`sendWAMessage` -> `processMessages`: bubbles out, then the session waits for input or ends."""
        data = data if isinstance(data, dict) else {}
        for message in data.get("messages") or ():
            text = _rich_text(message)
            if text and not await self.reply(turn, text, _typebot_settings(turn.settings)):
                return  # the reply never went out: the turn never ends
        if turn.inst.sessions.get(turn.jid) is not session:
            self.sim.log.raw(
                "Erro ao processar mensagens: PrismaClientKnownRequestError: Record to update not found."
            )
            return
        if data.get("input"):
            session.await_user = True
            self.sim.touch(session)
        else:
            self.end_session(turn, session)

    def _idle_minutes(self, session: Session) -> int:
        """Whole minutes since the row's updatedAt, in upstream's time (the emulator's scale undone)."""
        return math.floor((time.time() - session.updated_at) / 60 / self.sim.time_scale)


def _url(bot: Bot) -> str:
    return str(bot.extra.get("url") or "").rstrip("/")


def _typebot_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """What processTypebot passes on: no splitMessages, no timePerChar (typebot.service.ts:715-726)."""
    keep = ("expire", "keywordFinish", "delayMessage", "unknownMessage", "listeningFromMe", "stopBotFromMe")
    return {k: settings.get(k) for k in (*keep, "keepOpen")}


def _rich_text(message: Any) -> str:
    """A text bubble's richText, one line per block (applyFormatting, typebot.service.ts:208-266, for
    plain text)."""
    if not isinstance(message, dict) or message.get("type") != "text":
        return ""
    blocks = (message.get("content") or {}).get("richText") or []
    lines = [
        "".join(str(child.get("text") or "") for child in block.get("children") or []) for block in blocks
    ]
    return "\n".join(lines).strip()
