"""Evolution 2.3.6's Dify integration at work: whether a message is due a reply, the call, the reply.

Sources in src/api/integrations/chatbot/: base-chatbot.controller.ts `emit` (ignoreJids, trigger, fallback,
stopBotFromMe, listeningFromMe, closed sessions, debounce), chatbot.controller.ts (`getSession`,
`processDebounce`), base-chatbot.service.ts (`process`, `initNewSession`, `sendSingleMessage`) and
dify/services/dify.service.ts `sendMessageToBot`. Every wait upstream makes is multiplied by the
emulator's `time_scale` (1.0 = upstream's own timing).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from watchdog.sim.bots import Bot, Session, cuid, merged_settings
from watchdog.sim.messages import MEDIA_KINDS, new_message_id, reply_data
from watchdog.sim.triggers import JsTypeError, find_bot_by_trigger, ignored

if TYPE_CHECKING:
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


class DifyIntegration:
    def __init__(self, sim: EvolutionSim) -> None:
        self.sim = sim
        self.calls = 0
        # userMessageDebounce is keyed by remoteJid alone: one contact's burst on two instances merges.
        self._debounce: dict[str, tuple[asyncio.TimerHandle, str | None]] = {}

    def _scaled(self, seconds: float) -> float:
        return seconds * self.sim.time_scale

    def _log(self, level: str, context: str, message: Any) -> None:
        self.sim.log.evolution(level, context, message)

    # ---- the controller's emit --------------------------------------------------------------------

    async def emit(self, inst: Instance, msg: Inbound) -> None:
        try:
            settings = inst.dify_settings
            if ignored(settings.get("ignoreJids") if settings else None, msg.remote_jid):
                self._log("WARN", "DifyController", f"Ignoring message from jid: {msg.remote_jid}")
                return
            session = self._session(inst, msg.remote_jid)
            bot = self._find_bot(inst, msg.content, session)
            if bot is None:
                return
            merged = merged_settings(bot, settings)
        except JsTypeError as exc:
            self._log("ERROR", "DifyController", str(exc))
            return
        except LookupError as exc:
            self._log(
                "ERROR", "DifyController", f"TypeError: Cannot read properties of null (reading '{exc}')"
            )
            return
        if merged["stopBotFromMe"] and msg.from_me and session is not None:
            session.status = "paused"
            self.sim.touch(session)
            return
        if not merged["listeningFromMe"] and msg.from_me:
            return
        if session is not None and session.status == "closed":
            return
        debounce = merged["debounceTime"]

        async def run(content: str | None) -> None:
            await self.process(inst, bot, session, merged, msg, content)

        if debounce and debounce > 0:
            self._debounced(msg.remote_jid, msg.content, float(debounce), run)
        else:
            await run(msg.content)

    def _session(self, inst: Instance, jid: str) -> Session | None:
        """`getSession`: the contact's latest session on this instance, of any integration."""
        session = inst.sessions.get(jid)
        if session is not None and session.bot_id is None:
            if session.status != "closed":
                self._log("WARN", "DifyController", "Session is already opened in another integration")
            return None
        return session

    def _find_bot(self, inst: Instance, content: str | None, session: Session | None) -> Bot | None:
        """A session names its bot (another integration's bot id finds no Dify bot: no reply, whatever
        its status); without one the triggers choose; then the settings' fallback bot."""
        if session is None:
            bot = find_bot_by_trigger([b for b in inst.bots if b.integration == "dify"], content)
        else:
            bot = self.sim.bot_by_id(session.bot_id or "")
        if bot is None and inst.dify_settings and inst.dify_settings.get("difyIdFallback"):
            bot = self.sim.bot_by_id(str(inst.dify_settings["difyIdFallback"]))
        return bot

    def _debounced(
        self, jid: str, content: str | None, seconds: float, run: Callable[[str | None], Awaitable[None]]
    ) -> None:
        pending = self._debounce.pop(jid, None)
        message = content
        if pending is not None:
            pending[0].cancel()
            message = f"{_js(pending[1])}\n{_js(content)}"
            self._log("LOG", "DifyController", f"message debounced: {message}")

        def fire() -> None:
            joined = self._debounce.pop(jid, (None, message))[1]
            self._log("LOG", "DifyController", f"Debounce complete. Processing message: {_js(joined)}")
            self.sim.spawn(run(joined))

        handle = asyncio.get_running_loop().call_later(self._scaled(seconds), fire)
        self._debounce[jid] = (handle, message)

    def cancel_debounces(self) -> None:
        for handle, _ in self._debounce.values():
            handle.cancel()
        self._debounce.clear()

    # ---- the service's process ----------------------------------------------------------------------

    async def process(
        self,
        inst: Instance,
        bot: Bot,
        session: Session | None,
        settings: dict[str, Any],
        msg: Inbound,
        content: str | None,
    ) -> None:
        jid = msg.remote_jid
        if jid in inst.wedged:
            return  # the media_wedge fault: this contact's turn never finishes
        if session is None:  # initNewSession: created opened, awaitUser false
            session = Session(
                id=cuid(), remote_jid=jid, session_id=jid, bot_id=bot.id, push_name=msg.push_name
            )
            inst.sessions[jid] = session
            self.sim.touch(session)
            await self._send_to_bot(inst, session, settings, bot, msg, content)
            return
        if session.status == "paused":
            return
        if content is None:
            self._log("ERROR", "DifyService", f"Error in process: {JsTypeError('toLowerCase')}")
            return
        finish = settings.get("keywordFinish") or ""
        if finish and content.lower().strip() == finish.lower():
            session.status = "closed"
            self.sim.touch(session)
            return
        if not await self._send_to_bot(inst, session, settings, bot, msg, content):
            return
        if inst.sessions.get(jid) is not session:
            self._log("ERROR", "DifyService", f"Error in process: {RECORD_GONE}")  # deleted meanwhile
            return
        session.status, session.await_user = "opened", True
        self.sim.touch(session)

    async def _send_to_bot(
        self,
        inst: Instance,
        session: Session,
        settings: dict[str, Any],
        bot: Bot,
        msg: Inbound,
        content: str | None,
    ) -> bool:
        """`sendMessageToBot`; False when the turn never finishes (a wedge, a reply that cannot be sent)."""
        if not bot.api_url:
            self._log("ERROR", "DifyService", "No Dify endpoint defined")
            return True
        if content is None:  # isAudioMessage(undefined)
            self._log("ERROR", "DifyService", str(JsTypeError("includes")))
            return True
        if "audioMessage" in content:  # speechToText without OpenAI settings
            self._log("ERROR", "OpenaiService", f"OpenAI settings not found. InstanceId: {inst.id}")
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
                self._log("ERROR", "DifyService", _json_or_text(response))
                return True
            answer, conversation_id = parse_answer(response, agent=bot.bot_type == "agent")
        except (httpx.HTTPError, ValueError) as exc:
            self._log("ERROR", "DifyService", {"message": str(exc) or type(exc).__name__})
            return True
        if answer and not await self._reply(inst, msg.remote_jid, answer, settings):
            return False
        if inst.sessions.get(msg.remote_jid) is session:
            session.status, session.await_user = "opened", True
            if session.session_id == session.remote_jid and conversation_id:
                session.session_id = conversation_id
            self.sim.touch(session)
        return True

    async def _reply(self, inst: Instance, jid: str, text: str, settings: dict[str, Any]) -> bool:
        return await send_reply(self.sim, inst, jid, text, settings)


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


def _js(value: str | None) -> str:
    return "undefined" if value is None else value


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text
