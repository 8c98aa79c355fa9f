"""Evolution API 2.3.6 emulator core: instances and their connection, inbound messages, faults, the database.

What it follows (upstream source, src/api/): connection states from whatsapp.baileys.service.ts
`connectionUpdate` (connecting and open post `connection.update`; a reconnect after a drop posts no
`close`), instance.controller.ts (`restartInstance` answers before anything changed: the state is still
`open` right after the call; on `close` or an instance not in memory, HTTP 200 `{"error": true}`),
monitor.service.ts (`remove.instance`/`logout.instance` webhooks carry `data: null`). An instance made
through the API has no WhatsApp account: it connects forever, as observed on 2.3.6 with WhatsApp out of
reach. Persistent rows (instances, bots, settings, sessions, webhooks) can live in a JSON file standing in
for Postgres; connection state, faults and the message processor live in memory, lost on restart.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from watchdog.integrations import DIFY, Integration
from watchdog.sim import store
from watchdog.sim.bot_services import EMIT_ORDER, bot_services
from watchdog.sim.bot_turn import Inbound
from watchdog.sim.bots import Bot, Session, bots_settings, change_status, cuid, settings_row
from watchdog.sim.faults import FaultSet, FaultType
from watchdog.sim.logfmt import SimLog
from watchdog.sim.messages import bot_content, message_data, new_message_id, reply_data
from watchdog.sim.network import Network
from watchdog.sim.webhooks import WebhookConfig, WebhookSender

EVOLUTION_FAULTS = [
    FaultType(
        "processor_dead",
        "an instance's message processor died, silently: its inbound is lost while it says open, until "
        "the process restarts",
        {"instance": ""},
    ),
    FaultType(
        "socket_closed",
        "the WhatsApp socket dropped and sticks in 'connecting' (reconnect_after > 0: Baileys reconnects on "
        "its own after that many seconds, as it does for a passing drop)",
        {"instance": "", "reconnect_after": 0.0},
    ),
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
    FaultType(
        "slow_root",
        "GET / answers late: upstream's version lookup waits on web.whatsapp.com (shared/upstream/README.md)",
        {"seconds": 10.0},
    ),
]
STATE_FAULTS = {"socket_closed", "instance_unloaded"}
OFFLINE_QUEUE_LIMIT = 1000
BAILEYS_RETRY_SECONDS = 0.5  # observed: an unpaired instance retries about every 0.5 s, forever
RESTART_DROP_SECONDS = 0.2  # how long after `instance/restart` answers the old socket is gone


@dataclass
class Instance:
    name: str
    id: str
    token: str
    owner_jid: str | None  # None: no WhatsApp account paired (made through the API here)
    profile_name: str | None = "Loja"
    bots: list[Bot] = field(default_factory=list)
    sessions: dict[str, Session] = field(default_factory=dict)
    webhook: WebhookConfig | None = None
    created_at: float = field(default_factory=time.time)
    # connectionStatus as persisted: written on open and on a final close only, so it lags the live state
    stored_status: str = "close"
    dify_settings: dict[str, Any] | None = None
    bot_settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # other integrations' (sim/bots.py)
    openai_creds: list[dict[str, Any]] = field(default_factory=list)
    # in memory only
    state: str = "close"
    loaded: bool = True
    wuid: str | None = None  # set once connected in this process; webhooks carry it as `sender`
    processor_dead: bool = False  # a logout destroys the message processor for good (until restart)
    wedged: set[str] = field(default_factory=set)
    offline: deque[tuple[str, str, str, str]] = field(
        default_factory=lambda: deque(maxlen=OFFLINE_QUEUE_LIMIT)
    )
    message_count: int = 0
    connect_task: asyncio.TimerHandle | None = None


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
        time_scale: float = 1.0,
        peers: Sequence[str] = (),
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
        self.time_scale = time_scale
        self.instances: dict[str, Instance] = {}
        self.bot_services = bot_services(self)  # every bot integration at work (sim/bot_services.py)
        self.disabled_integrations: set[str] = set()  # `<label> is disabled` (their ENABLED setting off)
        self.network = Network(self, peers)  # instances write to each other by number (sim/network.py)
        self.customers_writing = (
            True  # the simulated customers (scenario.ContactTraffic); false: a quiet night
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        for inst in store.load(state_file, Instance):
            self.instances[inst.name] = inst
            if inst.owner_jid is not None:
                inst.state, inst.wuid = "open", inst.owner_jid  # reconnected with its saved credentials

    @property
    def dify_calls(self) -> int:
        return self.bot_services["dify"].calls

    # ---- set-up -------------------------------------------------------------------------------

    def add_instance(self, name: str, *, number: str | None = None) -> Instance:
        """An instance already paired with a WhatsApp account, connected."""
        if name in self.instances:
            return self.instances[name]
        number = number or f"55119{len(self.instances) + 1:08d}"
        jid = f"{number}@s.whatsapp.net"
        inst = Instance(name=name, id=str(uuid.uuid4()), token=_token(), owner_jid=jid, stored_status="open")
        inst.state, inst.wuid = "open", jid
        self.instances[name] = inst
        self.persist()
        return inst

    def create_instance(self, name: str, *, token: str | None = None) -> Instance:
        """`instance/create`: a row with status close; Baileys starts only on connect (or qrcode:true)."""
        inst = Instance(name=name, id=str(uuid.uuid4()), token=token or _token(), owner_jid=None)
        inst.profile_name = None
        self.instances[name] = inst
        self.persist()
        self.emit(inst, "instance.create", {"instanceName": name, "instanceId": inst.id})
        return inst

    def add_dify_bot(self, name: str, *, api_url: str, api_key: str, **options: Any) -> Bot:
        """A bot as the manager creates it (every column filled), with the settings row createBot makes."""
        inst = self.instances[name]
        bot = Bot(id=cuid(), api_url=api_url.rstrip("/"), api_key=api_key, instance_id=inst.id, **options)
        inst.bots.append(bot)
        if inst.dify_settings is None:
            inst.dify_settings = settings_row(bots_settings(bot), instance_id=inst.id)
        self.persist()
        return bot

    def bot_by_id(self, bot_id: str, integration: str = "dify") -> Bot | None:
        """`botRepository.findFirst({id})`: a bot of that integration's table, on any instance."""
        bots = (b for i in self.instances.values() for b in i.bots if b.integration == integration)
        return next((b for b in bots if b.id == bot_id), None)

    def startup_logs(self, port: int) -> None:
        self.log.evolution("INFO", "ServerUP", f"HTTP - ON: {port}")
        for inst in self.instances.values():
            if inst.state == "open":
                self.log.evolution(
                    "INFO", "ChannelStartupService", "Baileys version: 7.0.0", instance=inst.name
                )
                self.log.evolution(
                    "INFO", "ChannelStartupService", "CONNECTED TO WHATSAPP", instance=inst.name
                )
            elif inst.stored_status == "connecting" or inst.owner_jid is None:
                self.connect(inst.name)  # every instance in the database is loaded and started

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
        for inst in targets:
            if name == "socket_closed":
                self._set_state(inst, "connecting")
                self.log.evolution("WARN", "ChannelStartupService", "Connection Closed", instance=inst.name)
                if float(params.get("reconnect_after", 0)) > 0:
                    self._schedule(inst, float(params["reconnect_after"]), self._connected)
            else:
                inst.loaded = False

    # ---- connection ----------------------------------------------------------------------------

    def connect(self, name: str) -> None:
        """Start Baileys: a paired instance opens; an unpaired one posts `connecting` on every retry."""
        inst = self.instances[name]
        self._set_state(inst, "connecting")
        delay = self.reconnect_seconds if inst.owner_jid else BAILEYS_RETRY_SECONDS * self.time_scale
        self._schedule(inst, delay, self._connected if inst.owner_jid else self._retry)

    def restart(self, name: str) -> bool:
        """`instance/restart`: False (the HTTP 200 error body) on close or when not in memory. Otherwise
        it answers first; the old socket ends a moment later and the instance reconnects."""
        inst = self.instances[name]
        if not inst.loaded or inst.state == "close":
            return False
        self._schedule(inst, RESTART_DROP_SECONDS * self.time_scale, lambda i: self.connect(i.name))
        return True

    def delete(self, name: str) -> None:
        """`instance/delete`: `instance.delete`, then `remove.instance` with data null, then the rows go."""
        inst = self.instances[name]
        self._cancel(inst)
        self.emit(inst, "instance.delete", {"instanceName": name, "instanceId": inst.id})
        self.emit(inst, "remove.instance", None)
        self.log.evolution("WARN", "WAMonitoringService", f'Instance "{name}" - REMOVED')
        del self.instances[name]
        self.persist()

    def logout(self, name: str) -> None:
        """`instance/logout` (the watchdog never calls it): the processor is destroyed, silently; WhatsApp
        answers 401, so `status.instance`, `logout.instance` (data null) and a final close follow."""
        inst = self.instances[name]
        self._cancel(inst)
        inst.processor_dead = True  # baileys.service.ts:264 `messageProcessor.onDestroy()`
        inst.owner_jid = None
        self.emit(
            inst, "status.instance", {"instance": name, "status": "closed", "disconnectionReasonCode": 401}
        )
        inst.stored_status = "close"
        self.emit(inst, "logout.instance", None)
        self.log.evolution("WARN", "WAMonitoringService", f'Instance "{name}" - LOGOUT')
        self._set_state(inst, "close", 401)

    def _connected(self, inst: Instance) -> None:
        if inst.state != "connecting" or inst.owner_jid is None:
            return
        inst.wuid = inst.owner_jid
        self._set_state(inst, "open")
        self.log.evolution("INFO", "ChannelStartupService", "CONNECTED TO WHATSAPP", instance=inst.name)
        while inst.offline:
            jid, kind, text, push_name = inst.offline.popleft()
            self.receive(inst.name, jid, kind=kind, text=text, push_name=push_name)

    def _retry(self, inst: Instance) -> None:
        if inst.name in self.instances and inst.state == "connecting":
            self.connect(inst.name)

    def _schedule(self, inst: Instance, delay: float, action: Any) -> None:
        self._cancel(inst)
        inst.connect_task = asyncio.get_running_loop().call_later(delay, action, inst)

    def _cancel(self, inst: Instance) -> None:
        if inst.connect_task is not None:
            inst.connect_task.cancel()
            inst.connect_task = None

    # ---- inbound ---------------------------------------------------------------------------

    def receive(
        self, name: str, remote_jid: str, *, kind: str = "text", text: str = "", push_name: str = ""
    ) -> str:
        """A contact's message reaches WhatsApp. Returns delivered, queued or lost."""
        inst = self.instances[name]
        if inst.state != "open" or not inst.loaded:
            inst.offline.append((remote_jid, kind, text, push_name))
            return "queued"
        return self._upsert(inst, remote_jid, kind, text, push_name, from_me=False)

    def phone_reply(self, name: str, remote_jid: str, text: str) -> str:
        """The owner types on the phone: a fromMe upsert, which the bot sees (stopBotFromMe pauses)."""
        return self._upsert(self.instances[name], remote_jid, "text", text, "", from_me=True)

    def _upsert(
        self, inst: Instance, jid: str, kind: str, text: str, push_name: str, *, from_me: bool
    ) -> str:
        dead = self.faults.get("processor_dead")
        if inst.processor_dead or (dead is not None and dead["instance"] in ("", inst.name)):
            return "lost"  # 2.3.x prints nothing: the processor's stream is simply gone
        inst.message_count += 1
        msg_id = new_message_id()
        data = message_data(inst, jid, msg_id, kind=kind, text=text, push_name=push_name, from_me=from_me)
        hook = inst.webhook
        base64 = _FAKE_BASE64 if kind != "text" and hook and hook.enabled and hook.base64 else None
        if base64:
            data["message"]["base64"] = base64
        self.emit(inst, "messages.upsert", data)
        content = bot_content(kind, text, msg_id)
        inbound = Inbound(jid, from_me, data["pushName"], kind, content, msg_id, base64)
        for name in EMIT_ORDER:  # chatbot.controller.ts:94-106: every integration, none awaited
            if self.bot_services[name].concerned(inst):  # off, or no bot and no settings: it does nothing
                self.spawn(self.bot_services[name].emit(inst, inbound))
        return "delivered"

    # ---- API operations --------------------------------------------------------------------

    def send_text(self, name: str, number: str, text: str) -> dict[str, Any]:
        inst = self.instances[name]
        jid = number if "@" in number else f"{number}@s.whatsapp.net"
        data = reply_data(inst, jid, new_message_id(), text)
        self.emit(inst, "send.message", data)
        return data

    def change_status(
        self, name: str, remote_jid: str, status: str, integ: Integration = DIFY
    ) -> dict[str, Any]:
        result = change_status(self.instances[name], self.instances.values(), remote_jid, status, integ)
        self.persist()
        return result

    def set_webhook(self, name: str, config: WebhookConfig) -> None:
        self.instances[name].webhook = config
        self.persist()

    # ---- helpers -----------------------------------------------------------------------------

    def _set_state(self, inst: Instance, state: str, reason: int = 200) -> None:
        inst.state = state
        if state == "open" or (state == "close" and reason != 200):
            inst.stored_status = state
            self.persist()
        data: dict[str, Any] = {"instance": inst.name}
        if state == "open":
            data.update(wuid=inst.wuid, profileName=inst.profile_name, profilePictureUrl=None)
        data.update(state=state, statusReason=reason)
        self.emit(inst, "connection.update", data)

    def emit(self, inst: Instance, event: str, data: dict[str, Any] | None) -> None:
        self.webhooks.emit(
            event,
            instance=inst.name,
            data=data,
            sender=inst.wuid,
            apikey=inst.token,
            instance_hook=inst.webhook,
        )
        if event == "send.message" and data is not None:
            self.network.sent(inst, data)  # to another instance's number: it arrives there

    def touch(self, session: Session) -> None:
        session.updated_at = time.time()
        self.persist()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def persist(self) -> None:
        store.save(self.state_file, self.instances.values())

    async def aclose(self) -> None:
        for inst in self.instances.values():
            self._cancel(inst)
        for service in self.bot_services.values():
            service.cancel_debounces()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


_FAKE_BASE64 = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwc"


def _token() -> str:
    return str(uuid.uuid4()).upper()  # instance.controller.ts:59 `v4().toUpperCase()`
