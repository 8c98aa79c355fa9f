"""Evolution 2.3.6's Dify integration at work: `sendMessageToBot` (dify/services/dify.service.ts), under the
controller and base service every integration shares (sim/bot_services.py).

The media_wedge fault stands in for upstream #1359: a media message leaves the contact's turn busy for good,
silently, until its session is deleted.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx

from watchdog.sim.bot_services import BotService
from watchdog.sim.bot_turn import Inbound, Turn
from watchdog.sim.bots import Bot, Session
from watchdog.sim.messages import MEDIA_KINDS
from watchdog.sim.triggers import JsTypeError

if TYPE_CHECKING:
    from watchdog.sim.evolution import Instance


class DifyService(BotService):
    async def process_bot(self, turn: Turn, session: Session | None) -> None:
        if turn.jid in turn.inst.wedged:
            return  # the media_wedge fault: this contact's turn never finishes
        await super().process_bot(turn, session)

    async def send_to_bot(self, turn: Turn, session: Session) -> bool:
        """`sendMessageToBot`; False when the turn never finishes (a wedge, a reply that cannot be sent)."""
        inst, bot, msg, content = turn.inst, turn.bot, turn.msg, turn.content
        if not bot.api_url:
            self.log("ERROR", "No Dify endpoint defined")
            return True
        if content is None:  # isAudioMessage(undefined)
            self.log("ERROR", str(JsTypeError("includes")))
            return True
        if "audioMessage" in content:  # speechToText without OpenAI settings
            self.sim.log.evolution(
                "ERROR", "OpenaiService", f"OpenAI settings not found. InstanceId: {inst.id}"
            )
        if bot.bot_type not in ("chatBot", "textGenerator", "agent"):
            return True  # workflow bots have no code path in 2.3.0-2.3.6: silently nothing
        wedge = self.sim.faults.get("media_wedge")
        if msg.kind in MEDIA_KINDS and wedge is not None and wedge["remoteJid"] in ("", msg.remote_jid):
            inst.wedged.add(msg.remote_jid)  # busy forever, silently: upstream #1359
            return False
        path, body = dify_request(self.sim.webhooks.server_url, inst, session, bot, msg, content)
        self.calls += 1
        try:
            response = await self.sim.http.post(
                bot.api_url + path,
                json=body,
                headers={"Authorization": f"Bearer {bot.api_key}"},
                timeout=None,
            )
            if response.status_code >= 400:
                self.log("ERROR", _json_or_text(response))
                return True
            answer, conversation_id = parse_answer(response, agent=bot.bot_type == "agent")
        except (httpx.HTTPError, ValueError) as exc:
            self.log("ERROR", {"message": str(exc) or type(exc).__name__})
            return True
        if answer and not await self.reply(turn, answer):
            return False
        if self.answered(turn, session) and session.session_id == session.remote_jid and conversation_id:
            session.session_id = conversation_id  # the conversation Dify opened: later turns continue it
            self.sim.persist()
        return True


def dify_request(
    server_url: str, inst: Instance, session: Session, bot: Bot, msg: Inbound, content: str
) -> tuple[str, dict[str, Any]]:
    """Path and body of the call, per bot type, media included as dify.service.ts builds them."""
    inputs = {
        "remoteJid": msg.remote_jid,
        "pushName": msg.push_name,
        "instanceName": inst.name,
        "serverUrl": server_url,
        "apiKey": inst.token,
    }
    conversation = None if session.session_id == msg.remote_jid else session.session_id
    body: dict[str, Any] = {"inputs": inputs, "query": content}
    if bot.bot_type == "textGenerator":
        body = {"inputs": {"query": content, **inputs}}
    body["response_mode"] = "streaming" if bot.bot_type == "agent" else "blocking"
    if conversation is not None:
        body["conversation_id"] = conversation
    body["user"] = msg.remote_jid
    if "imageMessage" in content:
        media = content.split("|")
        caption = media[2] if len(media) > 2 and media[2] else content
        if msg.base64:  # the instance's webhook has base64 on: the data itself, as a "remote_url"
            body["files"] = [{"type": "image", "transfer_method": "remote_url", "url": msg.base64}]
            if bot.bot_type == "chatBot":
                body["query"] = caption
        else:  # else the media id (the message id without S3): not a URL either
            url = media[1].split("?")[0] if len(media) > 1 else ""
            body["files"] = [{"type": "image", "transfer_method": "remote_url", "url": url}]
            if bot.bot_type == "textGenerator":
                body["inputs"]["query"] = caption
            else:
                body["query"] = caption
    path = "/completion-messages" if bot.bot_type == "textGenerator" else "/chat-messages"
    return path, body


def parse_answer(response: httpx.Response, *, agent: bool) -> tuple[str, str]:
    """Blocking JSON; an agent's stream is buffered whole and only its `agent_message` events count."""
    if not agent:
        body = response.json()
        return str(body.get("answer") or ""), str(body.get("conversation_id") or "")
    answer, conversation_id = "", ""
    for line in response.text.replace("data: ", "").split("\n"):
        if not line.strip().startswith("{"):
            continue
        event = json.loads(line)
        if event.get("event") == "agent_message":
            conversation_id = conversation_id or str(event.get("conversation_id") or "")
            answer += str(event.get("answer") or "")
    return answer, conversation_id


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
