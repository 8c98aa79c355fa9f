"""The webhook-style bot integrations' turns, as Evolution 2.3.6 sends them: one POST, one answer.

Sources (src/api/integrations/chatbot/): n8n/services/n8n.service.ts:30-96, flowise/services/
flowise.service.ts:46-147, evolutionBot/services/evolutionBot.service.ts:37-163, evoai/services/
evoai.service.ts:37-206. What each does with a failure differs, and it decides what the session shows:
n8n, EvolutionBot and EvoAI catch it and log (the base `process` then marks an existing session answered
anyway), Flowise lets it escape to `process` ("Error in process: ..."). Only n8n sets awaitUser itself, so
a first turn of the others reads awaitUser false even once answered (watchdog/integrations.py).
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from watchdog.sim.bot_services import AxiosError, BotService
from watchdog.sim.bot_turn import Turn
from watchdog.sim.bots import Session


class _Webhook(BotService):
    def vars(self, turn: Turn) -> dict[str, Any]:
        inst, msg = turn.inst, turn.msg
        return {
            "remoteJid": msg.remote_jid,
            "pushName": msg.push_name,
            "fromMe": msg.from_me,
            "instanceName": inst.name,
            "serverUrl": self.sim.webhooks.server_url,
            "apiKey": inst.token,
        }

    def endpoint(self, turn: Turn, what: str) -> str:
        """The bot's backend URL (its first backend column); without one the turn ends, logged."""
        url = str(turn.bot.extra.get(self.integ.backend[0]) or "")
        if not url:
            self.log("ERROR", f"No {what} endpoint defined")
        return url

    @staticmethod
    def bearer(turn: Turn) -> dict[str, str]:
        key = turn.bot.extra.get("apiKey")
        return {"Authorization": f"Bearer {key}"} if key else {}


class N8nService(_Webhook):
    async def send_to_bot(self, turn: Turn, session: Session) -> bool:
        bot, msg, content = turn.bot, turn.msg, turn.content
        if content is None:
            self.log("ERROR", "TypeError: Cannot read properties of undefined (reading 'includes')")
            return True
        body = {"chatInput": content, "sessionId": session.session_id, "keyId": msg.msg_id}
        body.update(self.vars(turn))
        headers = {}
        user, password = bot.extra.get("basicAuthUser"), bot.extra.get("basicAuthPass")
        if user and password:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        try:
            data = await self.post(str(bot.extra.get("webhookUrl") or ""), body, headers)
        except AxiosError as exc:
            self.log("ERROR", exc.data if exc.data is not None else str(exc))
            return True
        answer = data.get("output") or data.get("answer") if isinstance(data, dict) else None
        if answer and not await self.reply(turn, str(answer)):
            return False
        self.answered(turn, session)  # n8n.service.ts:83-91
        return True


class FlowiseService(_Webhook):
    async def send_to_bot(self, turn: Turn, session: Session) -> bool:
        msg, content = turn.msg, turn.content
        if content is None:
            raise AxiosError("TypeError: Cannot read properties of undefined (reading 'includes')")
        body = {
            "question": content,
            "overrideConfig": {
                "sessionId": msg.remote_jid,
                "vars": {"messageId": msg.msg_id, **self.vars(turn)},
            },
        }
        url = self.endpoint(turn, "Flowise")
        if not url:
            return True
        data = await self.post(url, body, self.bearer(turn))  # no try/catch: process logs it
        answer = data.get("text") if isinstance(data, dict) else None
        return not answer or await self.reply(turn, str(answer))


class EvolutionBotService(_Webhook):
    async def send_to_bot(self, turn: Turn, session: Session) -> bool:
        msg, url = turn.msg, self.endpoint(turn, "Evolution Bot")
        if not url:
            return True
        inputs = {"sessionId": session.id, **self.vars(turn)}
        conversation = None if session.session_id == msg.remote_jid else session.session_id
        body = {
            "inputs": inputs,
            "query": turn.content,
            "conversation_id": conversation,
            "user": msg.remote_jid,
        }
        try:
            data = await self.post(url, body, self.bearer(turn))
        except AxiosError as exc:
            self.log("ERROR", f"Error in sendMessageToBot: {exc}")
            return True
        answer = data.get("message") if isinstance(data, dict) else None
        if (
            isinstance(answer, str)
            and len(answer) > 1
            and answer[0] == answer[-1] == "'"
            and "'" not in answer[1:-1]
        ):
            answer = answer[1:-1]
        if not answer:
            self.log("WARN", "[EvolutionBot] No message content received from bot response")
            return True
        return await self.reply(turn, str(answer))


class EvoaiService(_Webhook):
    async def send_to_bot(self, turn: Turn, session: Session) -> bool:
        msg, url = turn.msg, self.endpoint(turn, "EvoAI")
        if not url:
            return True
        message = {
            "role": "user",
            "parts": [{"type": "text", "text": turn.content}],
            "messageId": msg.remote_jid.split("@")[0],
            "metadata": {
                "messageKey": {"remoteJid": msg.remote_jid, "fromMe": msg.from_me, "id": msg.msg_id}
            },
        }
        body = {
            "jsonrpc": "2.0",
            "id": f"req-{secrets.token_hex(4)}",
            "method": "message/send",
            "params": {"contextId": session.session_id, "message": message, "metadata": self.vars(turn)},
        }
        headers = {"x-api-key": str(turn.bot.extra.get("apiKey") or "")}
        try:
            data = await self.post(url, body, headers)
        except AxiosError as exc:
            self.log("ERROR", f"[EvoAI] Error sending message: {exc.data if exc.data is not None else exc}")
            return True
        answer = _artifact_text(data)
        return not answer or await self.reply(turn, answer)


def _artifact_text(data: Any) -> str:
    """`result.artifacts[0].parts`, the first text part (evoai.service.ts:183-193)."""
    result = data.get("result") if isinstance(data, dict) else None
    artifacts = result.get("artifacts") if isinstance(result, dict) else None
    if not isinstance(artifacts, list) or not artifacts or not isinstance(artifacts[0], dict):
        return ""
    parts = artifacts[0].get("parts") or []
    return next(
        (str(p["text"]) for p in parts if isinstance(p, dict) and p.get("type") == "text" and p.get("text")),
        "",
    )


WEBHOOK_BOTS: dict[str, type[BotService]] = {
    "flowise": FlowiseService,
    "n8n": N8nService,
    "evolutionBot": EvolutionBotService,
    "evoai": EvoaiService,
}
