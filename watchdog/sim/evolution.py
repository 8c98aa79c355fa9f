"""Evolution API 2.3 emulator core: instances, the Dify integration, message flow and faults.

Faithful to shared/reference/evolution-api.md where the watchdog depends on it: Dify is called with
no timeout, a stale conversation_id fails every later message of that contact, errors are only
logged, bot replies arrive as `send.message`. Persistent rows (instances, bots, sessions, webhooks)
can live in a JSON file standing in for Postgres; connection state, faults and the message
processor live in memory and are lost when the process restarts, as upstream.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
import uuid
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from watchdog.sim.faults import FaultSet, FaultType
from watchdog.sim.logfmt import SimLog
from watchdog.sim.messages import MEDIA_KINDS, dify_query, message_data, new_message_id, reply_data
from watchdog.sim.webhooks import WebhookConfig, WebhookSender

EVOLUTION_FAULTS = [
    FaultType(
        "processor_dead",
        "an instance's message processor died: its inbound stops until the process restarts",
        {"instance": ""},
    ),
    FaultType("socket_closed", "the WhatsApp socket dropped and sticks in 'connecting'", {"instance": ""}),
    FaultType(
        "instance_unloaded",
        "the instance is in the database but not in memory (connectionState has no state)",
        {"instance": ""},
    ),
    FaultType(
        "media_wedge",
        "a media message wedges the contact's bot session until it is deleted (remoteJid: one contact only)",
        {"remoteJid": ""},
    ),
    FaultType("api_500", "authenticated API calls answer 500"),
    FaultType("slow", "every API answer is delayed", {"seconds": 2.0}),
    FaultType("hang", "every route accepts the connection and never answers"),
]
STATE_FAULTS = {"socket_closed", "instance_unloaded"}
# `dify/fetchSettings` when nothing was saved (reference: defaults of the Dify settings row).
DIFY_SETTINGS_DEFAULTS: dict[str, Any] = {
    "expire": 300,
    "keywordFinish": "bye",
    "delayMessage": 1000,
    "unknownMessage": "",
    "listeningFromMe": True,
    "stopBotFromMe": True,
    "keepOpen": False,
    "debounceTime": 1,
    "ignoreJids": [],
    "difyIdFallback": None,
}
OFFLINE_QUEUE_LIMIT = 1000


@dataclass
class Bot:
    id: str
    api_url: str
    api_key: str
    bot_type: str = "chatBot"
    enabled: bool = True
    trigger_type: str = "all"
    keyword_finish: str = "#sair"
    debounce_time: float = 1.0
    delay_message_ms: int = 0
    stop_bot_from_me: bool = True
    expire: int = 300


@dataclass
class Session:
    id: str
    remote_jid: str
    session_id: str
    bot_id: str
    push_name: str = ""
    status: str = "opened"
    await_user: bool = False
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)


@dataclass
class Instance:
    name: str
    id: str
    token: str
    owner_jid: str
    profile_name: str = "Loja"
    bots: list[Bot] = field(default_factory=list)
    sessions: dict[str, Session] = field(default_factory=dict)
    webhook: WebhookConfig | None = None
    created_at: float = field(default_factory=time.time)
    # connectionStatus as persisted: written on open and close only, so it says open while connecting
    stored_status: str = "open"
    dify_settings: dict[str, Any] | None = None  # None = never saved: fetchSettings answers the defaults
    # in memory only
    state: str = "open"
    loaded: bool = True
    wedged: set[str] = field(default_factory=set)
    offline: deque[tuple[str, str, str, str]] = field(
        default_factory=lambda: deque(maxlen=OFFLINE_QUEUE_LIMIT)
    )
    debounce: dict[str, tuple[asyncio.TimerHandle, list[tuple[str, str]]]] = field(default_factory=dict)
    message_count: int = 0


class EvolutionSim:
    def __init__(
        self,
        *,
        api_key: str,
        http: httpx.AsyncClient,
        webhooks: WebhookSender,
        faults: FaultSet | None = None,
        log: SimLog | None = None,
        version: str = "2.3.6",
        whatsapp_web_version: str = "2.3000.1023204200",
        state_file: Path | None = None,
        reconnect_seconds: float = 0.5,
    ) -> None:
        self.api_key = api_key
        self.http = http
        self.webhooks = webhooks
        self.faults = faults or FaultSet(EVOLUTION_FAULTS)
        self.log = log or SimLog()
        self.version = version
        self.whatsapp_web_version = whatsapp_web_version
        self.state_file = state_file
        self.reconnect_seconds = reconnect_seconds
        self.instances: dict[str, Instance] = {}
        self.dify_calls = 0
        self._processor_error_logged: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._load()

    # ---- set-up -------------------------------------------------------------------------------

    def add_instance(self, name: str, *, number: str | None = None) -> Instance:
        if name in self.instances:
            return self.instances[name]
        number = number or f"55119{len(self.instances) + 1:08d}"
        inst = Instance(
            name=name,
            id=str(uuid.uuid4()),
            token=secrets.token_hex(16).upper(),
            owner_jid=f"{number}@s.whatsapp.net",
        )
        self.instances[name] = inst
        self._persist()
        return inst

    def add_dify_bot(self, name: str, *, api_url: str, api_key: str, **options: Any) -> Bot:
        bot = Bot(id=_cuid(), api_url=api_url.rstrip("/"), api_key=api_key, **options)
        self.instances[name].bots.append(bot)
        self._persist()
        return bot

    def startup_logs(self, port: int) -> None:
        self.log.evolution("INFO", "ServerUP", f"HTTP - ON: {port}")
        for inst in self.instances.values():
            self.log.evolution("INFO", "ChannelStartupService", "Baileys version: 6.7.18", instance=inst.name)
            self.log.evolution("INFO", "ChannelStartupService", "CONNECTED TO WHATSAPP", instance=inst.name)

    # ---- faults applied as state ---------------------------------------------------------------

    def apply_fault(self, name: str) -> None:
        """Faults that are events (a socket drops, an instance unloads) happen once, when set, and leave
        state behind that only a repair clears; the other faults are conditions read where they act."""
        if name not in STATE_FAULTS:
            return
        params = self.faults.get(name) or {}
        self.faults.clear(name)
        targets = [
            i for i in self.instances.values() if not params.get("instance") or i.name == params["instance"]
        ]
        if name == "socket_closed":
            for inst in targets:
                self._set_state(inst, "connecting", 200)
                self.log.evolution("WARN", "ChannelStartupService", "Connection Closed", instance=inst.name)
        elif name == "instance_unloaded":
            for inst in targets:
                inst.loaded = False

    # ---- inbound ---------------------------------------------------------------------------

    def receive(
        self, name: str, remote_jid: str, *, kind: str = "text", text: str = "", push_name: str = ""
    ) -> str:
        """A contact's message reaches WhatsApp. Returns delivered, queued or lost."""
        inst = self.instances[name]
        if inst.state != "open" or not inst.loaded:
            inst.offline.append((remote_jid, kind, text, push_name))
            return "queued"
        dead = self.faults.get("processor_dead")
        if dead is not None and dead["instance"] in ("", name):
            if name not in self._processor_error_logged:
                self._processor_error_logged.add(name)
                self.log.evolution("ERROR", "BaileysStartupService", "Message stream error:", instance=name)
                self.log.evolution(
                    "ERROR",
                    "BaileysStartupService",
                    {"message": "Cannot read properties of undefined (reading 'next')"},
                    instance=name,
                )
            return "lost"
        inst.message_count += 1
        msg_id = new_message_id()
        data = message_data(inst, remote_jid, msg_id, kind=kind, text=text, push_name=push_name)
        self._emit(inst, "messages.upsert", data)
        self._spawn(self._chatbot(inst, remote_jid, kind, text, push_name, msg_id))
        return "delivered"

    def phone_reply(self, name: str, remote_jid: str, text: str) -> None:
        """The owner types on the phone: fromMe upsert, and stopBotFromMe pauses the session."""
        inst = self.instances[name]
        data = message_data(inst, remote_jid, new_message_id(), kind="text", text=text, from_me=True)
        self._emit(inst, "messages.upsert", data)
        session = inst.sessions.get(remote_jid)
        bot = next((b for b in inst.bots if b.enabled), None)
        if session is not None and bot is not None and bot.stop_bot_from_me and session.status == "opened":
            session.status = "paused"
            self._touch(session)

    async def _chatbot(
        self, inst: Instance, jid: str, kind: str, text: str, push_name: str, msg_id: str
    ) -> None:
        bot = next((b for b in inst.bots if b.enabled), None)
        if bot is None or jid in inst.wedged:
            return
        session = inst.sessions.get(jid)
        if session is not None and session.status in ("closed", "paused"):
            return  # closed (keywordFinish) or paused (stopBotFromMe) stays so upstream
        if kind == "text" and text.strip().lower() == bot.keyword_finish.lower() and session is not None:
            session.status = "closed"
            self._touch(session)
            return
        if session is None:
            session = Session(id=_cuid(), remote_jid=jid, session_id=jid, bot_id=bot.id, push_name=push_name)
            inst.sessions[jid] = session
        session.await_user = False
        self._touch(session)
        wedge = self.faults.get("media_wedge")
        if kind in MEDIA_KINDS and wedge is not None and wedge["remoteJid"] in ("", jid):
            inst.wedged.add(jid)  # busy forever, silently: upstream #1359
            return
        query = dify_query(kind, text, msg_id)
        if bot.debounce_time <= 0:
            await self._ask_dify(inst, bot, session, [(kind, query)])
            return
        loop = asyncio.get_running_loop()
        pending = inst.debounce.pop(jid, None)
        parts = pending[1] if pending else []
        if pending:
            pending[0].cancel()
        parts.append((kind, query))
        handle = loop.call_later(bot.debounce_time, self._flush_debounce, inst, bot, session, jid)
        inst.debounce[jid] = (handle, parts)

    def _flush_debounce(self, inst: Instance, bot: Bot, session: Session, jid: str) -> None:
        pending = inst.debounce.pop(jid, None)
        if pending is not None:
            self._spawn(self._ask_dify(inst, bot, session, pending[1]))

    async def _ask_dify(
        self, inst: Instance, bot: Bot, session: Session, parts: list[tuple[str, str]]
    ) -> None:
        """One call to Dify as upstream makes it: Bearer key, no timeout, conversation_id once known."""
        if bot.bot_type == "workflow":
            return  # 2.3.0-2.3.6 have no code path for workflow bots: silently nothing
        query = "\n".join(q for _, q in parts)
        body: dict[str, Any] = {
            "inputs": {
                "remoteJid": session.remote_jid,
                "pushName": session.push_name,
                "instanceName": inst.name,
                "serverUrl": self.webhooks.server_url,
                "apiKey": inst.token,
            },
            "query": query,
            "response_mode": "streaming" if bot.bot_type == "agent" else "blocking",
            "user": session.remote_jid,
        }
        if session.session_id != session.remote_jid:
            body["conversation_id"] = session.session_id
        if parts[-1][0] == "image":
            body["files"] = [{"type": "image", "transfer_method": "remote_url", "url": _FAKE_BASE64}]
        path = "/completion-messages" if bot.bot_type == "textGenerator" else "/chat-messages"
        self.dify_calls += 1
        try:
            response = await self.http.post(
                bot.api_url + path,
                json=body,
                headers={"Authorization": f"Bearer {bot.api_key}"},
                timeout=None,
            )
            if response.status_code >= 400:
                error: Any = _json_or_text(response)
                self.log.evolution("ERROR", "DifyService", error, instance=inst.name)
                session.await_user = True
                self._touch(session)
                return
            answer, conversation_id = _parse_answer(response, streaming=bot.bot_type == "agent")
        except httpx.HTTPError as exc:
            self.log.evolution(
                "ERROR", "DifyService", {"message": str(exc) or type(exc).__name__}, instance=inst.name
            )
            session.await_user = True
            self._touch(session)
            return
        if conversation_id and session.session_id == session.remote_jid:
            session.session_id = conversation_id
        if bot.delay_message_ms:
            await asyncio.sleep(bot.delay_message_ms / 1000)
        if inst.state == "open" and answer:
            self._emit(inst, "send.message", reply_data(inst, session.remote_jid, new_message_id(), answer))
        session.await_user = True
        self._touch(session)

    # ---- API operations --------------------------------------------------------------------

    def send_text(self, name: str, number: str, text: str) -> dict[str, Any]:
        inst = self.instances[name]
        jid = number if "@" in number else f"{number}@s.whatsapp.net"
        data = reply_data(inst, jid, new_message_id(), text)
        self._emit(inst, "send.message", data)
        return data

    def restart(self, name: str) -> bool:
        """`instance/restart`: reconnects an open or connecting socket; fails on close or unloaded."""
        inst = self.instances[name]
        if not inst.loaded or inst.state == "close":
            return False
        self._set_state(inst, "connecting", 200)
        loop = asyncio.get_running_loop()
        loop.call_later(self.reconnect_seconds, self._reconnected, inst)
        return True

    def _reconnected(self, inst: Instance) -> None:
        if inst.state != "connecting":
            return
        self._set_state(inst, "open", 200)
        self.log.evolution("INFO", "ChannelStartupService", "CONNECTED TO WHATSAPP", instance=inst.name)
        while inst.offline:
            jid, kind, text, push_name = inst.offline.popleft()
            self.receive(inst.name, jid, kind=kind, text=text, push_name=push_name)

    def change_status(self, name: str, remote_jid: str, status: str) -> None:
        inst = self.instances[name]
        session = inst.sessions.get(remote_jid)
        inst.wedged.discard(remote_jid)
        if status == "delete":
            inst.sessions.pop(remote_jid, None)
        elif session is not None:
            session.status = status
            if status == "opened":
                session.await_user = False
            self._touch(session)
        self._persist()

    def set_webhook(self, name: str, config: WebhookConfig) -> None:
        self.instances[name].webhook = config
        self._persist()

    def dify_settings(self, name: str) -> dict[str, Any]:
        return {**DIFY_SETTINGS_DEFAULTS, **(self.instances[name].dify_settings or {})}

    def save_dify_settings(self, name: str, settings: dict[str, Any]) -> dict[str, Any]:
        known = {k: v for k, v in settings.items() if k in DIFY_SETTINGS_DEFAULTS}
        self.instances[name].dify_settings = {**self.dify_settings(name), **known}
        self._persist()
        return self.dify_settings(name)

    # ---- helpers -----------------------------------------------------------------------------

    def _set_state(self, inst: Instance, state: str, reason: int) -> None:
        inst.state = state
        if state in ("open", "close"):
            inst.stored_status = state
            self._persist()
        data: dict[str, Any] = {"instance": inst.name, "state": state, "statusReason": reason}
        if state == "open":
            data.update(wuid=inst.owner_jid, profileName=inst.profile_name, profilePictureUrl=None)
        self._emit(inst, "connection.update", data)

    def _emit(self, inst: Instance, event: str, data: dict[str, Any]) -> None:
        self.webhooks.emit(
            event,
            instance=inst.name,
            data=data,
            sender=inst.owner_jid,
            apikey=inst.token,
            instance_hook=inst.webhook,
        )

    def _touch(self, session: Session) -> None:
        session.updated_at = time.time()
        self._persist()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ---- the "database" ------------------------------------------------------------------------

    def _persist(self) -> None:
        if self.state_file is None:
            return
        rows = [
            {
                "name": i.name,
                "id": i.id,
                "token": i.token,
                "owner_jid": i.owner_jid,
                "profile_name": i.profile_name,
                "created_at": i.created_at,
                "bots": [asdict(b) for b in i.bots],
                "sessions": [asdict(s) for s in i.sessions.values()],
                "webhook": asdict(i.webhook) if i.webhook else None,
                "stored_status": i.stored_status,
                "dify_settings": i.dify_settings,
            }
            for i in self.instances.values()
        ]
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows))
        os.replace(tmp, self.state_file)

    def _load(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        for row in json.loads(self.state_file.read_text()):
            inst = Instance(
                name=row["name"],
                id=row["id"],
                token=row["token"],
                owner_jid=row["owner_jid"],
                profile_name=row["profile_name"],
                created_at=row["created_at"],
                bots=[Bot(**b) for b in row["bots"]],
                sessions={s["remote_jid"]: Session(**s) for s in row["sessions"]},
                webhook=WebhookConfig(**row["webhook"]) if row["webhook"] else None,
                stored_status=row.get("stored_status", "open"),
                dify_settings=row.get("dify_settings"),
            )
            self.instances[inst.name] = inst


_FAKE_BASE64 = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwc"


def _cuid() -> str:
    return "c" + secrets.token_hex(12)


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _parse_answer(response: httpx.Response, *, streaming: bool) -> tuple[str, str]:
    """Blocking JSON, or the agent stream buffered whole and its `data:` lines concatenated, as upstream."""
    if not streaming:
        body = response.json()
        return str(body.get("answer") or ""), str(body.get("conversation_id") or "")
    answer, conversation_id = "", ""
    for line in response.text.splitlines():
        if not line.startswith("data: "):
            continue
        try:
            event = json.loads(line[6:])
        except ValueError:
            continue
        conversation_id = conversation_id or str(event.get("conversation_id") or "")
        if event.get("event") in ("agent_message", "message"):
            answer += str(event.get("answer") or "")
    return answer, conversation_id
