"""Evolution 2.3.6's bot integrations other than Dify at work (Dify is sim/chatbot.py): the controller's
`emit`, the base service's `process`, and the webhook-style bots' calls (Flowise, n8n, EvolutionBot,
EvoAI). Typebot and OpenAI have services of their own (sim/typebot_service.py, sim/openai_service.py).

Sources in src/api/integrations/chatbot/: base-chatbot.controller.ts `emit` (:788-949), chatbot.controller.ts
(`emit` :74-107 calls every integration, none awaited; `getSession` :170-189; `processDebounce` :109-134),
base-chatbot.service.ts (`process` :117-172, `initNewSession` :343-397) and each service's
`sendMessageToBot`. Backends are called with no timeout (axios' default), as upstream does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

from watchdog.integrations import BY_NAME, Integration
from watchdog.sim.bots import Bot, Session, bots_of, cuid, merged_settings, settings_of
from watchdog.sim.chatbot import RECORD_GONE, Inbound, send_reply
from watchdog.sim.triggers import JsTypeError, find_bot_by_trigger, ignored

if TYPE_CHECKING:
    from watchdog.sim.evolution import EvolutionSim, Instance

EMIT_ORDER = ("evolutionBot", "typebot", "openai", "dify", "n8n", "evoai", "flowise")  # chatbot.controller.ts


class AxiosError(Exception):
    """What axios throws: a non-2xx answer (`response.data` kept) or no answer at all."""

    def __init__(self, message: str, status: int | None = None, data: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.data = data


class BotService:
    """One integration's controller and service, as the base classes run them."""

    def __init__(self, sim: EvolutionSim, integ: Integration) -> None:
        self.sim = sim
        self.integ = integ
        self.calls = 0
        self._debounce: dict[str, tuple[asyncio.TimerHandle, str | None]] = {}

    def log(self, level: str, message: Any, *, service: bool = True) -> None:
        part = "Service" if service else "Controller"
        self.sim.log.evolution(level, f"{self.integ.label}{part}", message)

    def concerned(self, inst: Instance) -> bool:
        """Whether its emit can do anything here: it has a bot or a settings row on the instance."""
        return self.integ.name not in self.sim.disabled_integrations and (
            settings_of(inst, self.integ) is not None
            or any(b.integration == self.integ.name for b in inst.bots)
        )

    # ---- the controller's emit ---------------------------------------------------------------------

    async def emit(self, inst: Instance, msg: Inbound) -> None:
        try:
            settings = settings_of(inst, self.integ)
            if ignored(settings.get("ignoreJids") if settings else None, msg.remote_jid):
                self.log("WARN", f"Ignoring message from jid: {msg.remote_jid}", service=False)
                return
            session = self._session(inst, msg.remote_jid)
            bot = self._find_bot(inst, msg.content, session, settings)
            if bot is None:
                return
            merged = merged_settings(bot, settings)
        except JsTypeError as exc:
            self.log("ERROR", str(exc), service=False)
            return
        except LookupError as exc:
            self.log("ERROR", f"TypeError: Cannot read properties of null (reading '{exc}')", service=False)
            return
        if merged["stopBotFromMe"] and msg.from_me and session is not None:
            session.status = "paused"
            self.sim.touch(session)
            return
        if (not merged["listeningFromMe"] and msg.from_me) or (session and session.status == "closed"):
            return

        async def run(content: str | None) -> None:
            try:
                await self.process_bot(inst, bot, session, merged, msg, content)
            except AxiosError as exc:  # thrown past the service: emit's catch logs it (:946-948)
                self.log("ERROR", {"message": str(exc), "status": exc.status}, service=False)

        debounce = merged["debounceTime"]
        if debounce and debounce > 0:
            self._debounced(msg.remote_jid, msg.content, float(debounce), run)
        else:
            await run(msg.content)

    def _session(self, inst: Instance, jid: str) -> Session | None:
        """`getSession`: the contact's latest session on this instance, of any integration."""
        session = inst.sessions.get(jid)
        if session is not None and session.bot_id is None:
            if session.status != "closed":
                self.log("WARN", "Session is already opened in another integration", service=False)
            return None
        return session

    def _find_bot(
        self, inst: Instance, content: str | None, session: Session | None, settings: dict[str, Any] | None
    ) -> Bot | None:
        """Another integration's session names a bot this table does not have: no bot, then the fallback.
        n8n reads `settings.fallbackId`, a column N8nSetting lacks (n8n.controller.ts:35-37): never one."""
        mine = bots_of(inst, self.integ)
        if session is None:
            bot = find_bot_by_trigger(mine, content)
        else:
            bot = next((b for b in mine if b.id == session.bot_id), None)
        fallback = (settings or {}).get(self.integ.settings_fallback) if self.integ.name != "n8n" else None
        if bot is None and fallback:
            bot = self.sim.bot_by_id(str(fallback), self.integ.name)
        return bot

    def _debounced(
        self, jid: str, content: str | None, seconds: float, run: Callable[[str | None], Awaitable[None]]
    ) -> None:
        pending = self._debounce.pop(jid, None)
        message = content
        if pending is not None:
            pending[0].cancel()
            message = f"{pending[1] or 'undefined'}\n{content or 'undefined'}"
        handle = asyncio.get_running_loop().call_later(
            seconds * self.sim.time_scale,
            lambda: self.sim.spawn(run(self._debounce.pop(jid, (None, message))[1])),
        )
        self._debounce[jid] = (handle, message)

    def cancel_debounces(self) -> None:
        for handle, _ in self._debounce.values():
            handle.cancel()
        self._debounce.clear()

    # ---- the base service's process -------------------------------------------------------------------

    async def process_bot(
        self,
        inst: Instance,
        bot: Bot,
        session: Session | None,
        settings: dict[str, Any],
        msg: Inbound,
        content: str | None,
    ) -> None:
        try:
            if session is None:  # initNewSession: created opened, awaitUser false; no update after the call
                session = self.new_session(inst, bot, msg)
                await self.send_to_bot(inst, session, settings, bot, msg, content)
                return
            if session.status == "paused":
                return
            if content is None:
                raise AxiosError(str(JsTypeError("toLowerCase")))
            finish = settings.get("keywordFinish") or ""
            if finish and content.lower().strip() == finish.lower():
                session.status = "closed"
                self.sim.touch(session)
                return
            if not await self.send_to_bot(inst, session, settings, bot, msg, content):
                return
            if inst.sessions.get(msg.remote_jid) is not session:
                raise AxiosError(RECORD_GONE)  # deleted meanwhile: the update throws
            session.status, session.await_user = "opened", True
            self.sim.touch(session)
        except AxiosError as exc:
            self.log("ERROR", f"Error in process: {exc}")

    def new_session(self, inst: Instance, bot: Bot, msg: Inbound) -> Session:
        jid = msg.remote_jid
        session = Session(cuid(), jid, jid, bot.id, msg.push_name, type=self.integ.session_type)
        inst.sessions[jid] = session
        self.sim.touch(session)
        return session

    async def send_to_bot(
        self,
        inst: Instance,
        session: Session,
        settings: dict[str, Any],
        bot: Bot,
        msg: Inbound,
        content: str | None,
    ) -> bool:
        """One turn; False when it never ends (the reply cannot be sent)."""
        raise NotImplementedError

    async def post(self, url: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        """axios.post with no timeout: a non-2xx answer or a failed connection throws."""
        self.calls += 1
        try:
            response = await self.sim.http.post(url, json=body, headers=headers or {}, timeout=None)
        except httpx.HTTPError as exc:
            raise AxiosError(str(exc) or type(exc).__name__) from None
        try:
            data = response.json()
        except ValueError:
            data = response.text
        if response.status_code >= 300:
            raise AxiosError(
                f"Request failed with status code {response.status_code}", response.status_code, data
            )
        return data

    async def reply(self, inst: Instance, jid: str, text: str, settings: dict[str, Any]) -> bool:
        return await send_reply(self.sim, inst, jid, text, settings)


def bot_services(sim: EvolutionSim) -> dict[str, BotService]:
    from watchdog.sim.openai_service import OpenaiService
    from watchdog.sim.typebot_service import TypebotService
    from watchdog.sim.webhook_bots import WEBHOOK_BOTS

    services: dict[str, BotService] = {
        "typebot": TypebotService(sim, BY_NAME["typebot"]),
        "openai": OpenaiService(sim, BY_NAME["openai"]),
    }
    for name, kind in WEBHOOK_BOTS.items():
        services[name] = kind(sim, BY_NAME[name])
    return services
