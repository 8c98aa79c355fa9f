"""Evolution 2.3.6's bot integrations at work: the controller's `emit`, the base service's `process`, and
the factory of every integration's service (Dify sim/dify_service.py, Typebot sim/typebot_service.py, OpenAI
sim/openai_service.py, the webhook-style bots sim/webhook_bots.py).

Sources in src/api/integrations/chatbot/: base-chatbot.controller.ts `emit` (:788-949), chatbot.controller.ts
(`emit` :74-107 calls every integration, none awaited; `getSession` :170-189; `processDebounce` :109-134;
`findBotTrigger` :191-214), base-chatbot.service.ts (`process` :117-172, `initNewSession` :343-397) and each
service's `sendMessageToBot`. Backends are called with no timeout (axios' default), as upstream does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

from watchdog.integrations import BY_NAME, Integration
from watchdog.sim.bot_turn import RECORD_GONE, Inbound, Turn, send_reply
from watchdog.sim.bots import Bot, Session, bots_of, cuid, merged_settings, settings_of
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
        # userMessageDebounce is keyed by remoteJid alone: one contact's burst on two instances merges.
        self._debounce: dict[str, tuple[asyncio.TimerHandle, str | None]] = {}

    def log(self, level: str, message: Any, *, service: bool = True) -> None:
        part = "Service" if service else "Controller"
        self.sim.log.evolution(level, f"{self.integ.label}{part}", message)

    def concerned(self, inst: Instance) -> bool:
        """Whether its emit can do anything here: it is enabled and has a bot or a settings row there."""
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
                await self.process_bot(Turn(inst, msg, bot, merged, content), session)
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
        """A session names its bot, looked up by id in this integration's table (another integration's bot
        id finds none, whatever the session's status); without one the triggers choose; then the settings'
        fallback bot. n8n reads `settings.fallbackId`, a column N8nSetting lacks (n8n.controller.ts:35-37):
        never one."""
        if session is None:
            bot = find_bot_by_trigger(bots_of(inst, self.integ), content)
        else:
            bot = self.sim.bot_by_id(session.bot_id or "", self.integ.name)
        fallback = (settings or {}).get(self.integ.settings_fallback) if self.integ.name != "n8n" else None
        if bot is None and fallback:
            bot = self.sim.bot_by_id(str(fallback), self.integ.name)
        return bot

    def _debounced(
        self, jid: str, content: str | None, seconds: float, run: Callable[[str | None], Awaitable[None]]
    ) -> None:
        """`processDebounce`: a burst is joined by newlines (undefined parts as `undefined`) and run once."""
        pending = self._debounce.pop(jid, None)
        message = content
        if pending is not None:
            pending[0].cancel()
            message = f"{_js(pending[1])}\n{_js(content)}"
            self.log("LOG", f"message debounced: {message}", service=False)

        def fire() -> None:
            joined = self._debounce.pop(jid, (None, message))[1]
            self.log("LOG", f"Debounce complete. Processing message: {_js(joined)}", service=False)
            self.sim.spawn(run(joined))

        handle = asyncio.get_running_loop().call_later(seconds * self.sim.time_scale, fire)
        self._debounce[jid] = (handle, message)

    def cancel_debounces(self) -> None:
        for handle, _ in self._debounce.values():
            handle.cancel()
        self._debounce.clear()

    # ---- the base service's process -------------------------------------------------------------------

    async def process_bot(self, turn: Turn, session: Session | None) -> None:
        try:
            if session is None:  # initNewSession: created opened, awaitUser false; no update after the call
                await self.send_to_bot(turn, self.new_session(turn))
                return
            if session.status == "paused":
                return
            if turn.content is None:
                raise AxiosError(str(JsTypeError("toLowerCase")))
            finish = turn.settings.get("keywordFinish") or ""
            if finish and turn.content.lower().strip() == finish.lower():
                session.status = "closed"
                self.sim.touch(session)
                return
            if await self.send_to_bot(turn, session) and not self.answered(turn, session):
                raise AxiosError(RECORD_GONE)  # deleted meanwhile: the update throws
        except AxiosError as exc:
            self.log("ERROR", f"Error in process: {exc}")

    def new_session(self, turn: Turn) -> Session:
        session = Session(
            cuid(), turn.jid, turn.jid, turn.bot.id, turn.msg.push_name, type=self.integ.session_type
        )
        turn.inst.sessions[turn.jid] = session
        self.sim.touch(session)
        return session

    def answered(self, turn: Turn, session: Session) -> bool:
        """The session, if still the contact's, is opened and awaits the user; False when it is gone."""
        if turn.inst.sessions.get(turn.jid) is not session:
            return False
        session.status, session.await_user = "opened", True
        self.sim.touch(session)
        return True

    def end_session(self, turn: Turn, session: Session) -> None:
        """The bot is done with the contact: with keepOpen the session is closed, else its row goes."""
        if turn.settings.get("keepOpen"):
            session.status = "closed"
            self.sim.touch(session)
        elif turn.inst.sessions.get(turn.jid) is session:
            del turn.inst.sessions[turn.jid]
            self.sim.persist()

    async def send_to_bot(self, turn: Turn, session: Session) -> bool:
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

    async def reply(self, turn: Turn, text: str, settings: dict[str, Any] | None = None) -> bool:
        """The answer to the contact, with the turn's settings unless others are given."""
        return await send_reply(
            self.sim, turn.inst, turn.jid, text, turn.settings if settings is None else settings
        )


def _js(value: str | None) -> str:
    return "undefined" if value is None else value


def bot_services(sim: EvolutionSim) -> dict[str, BotService]:
    """Every integration's service, by integration name."""
    from watchdog.sim.dify_service import DifyService
    from watchdog.sim.openai_service import OpenaiService
    from watchdog.sim.typebot_service import TypebotService
    from watchdog.sim.webhook_bots import WEBHOOK_BOTS

    kinds: dict[str, type[BotService]] = {
        "dify": DifyService,
        "typebot": TypebotService,
        "openai": OpenaiService,
        **WEBHOOK_BOTS,
    }
    return {name: kind(sim, BY_NAME[name]) for name, kind in kinds.items()}
