"""Read everything `doctor` judges, through the existing clients; a failed read is recorded, not raised.
Every bot integration is read (watchdog/integrations.py); one that is off on this Evolution is noted."""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Awaitable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from watchdog.clients.chatbots import BotSettings, ChatBot, ChatSession
from watchdog.clients.dify import DifyClient
from watchdog.clients.evolution import EvolutionClient
from watchdog.doctor.snapshot import (
    KNOWN,
    NO_CONVERSATION,
    UNKNOWN,
    UNVERIFIED,
    BotView,
    InstanceView,
    SessionView,
    Snapshot,
)
from watchdog.errors import UpstreamAuthError, UpstreamError
from watchdog.health import EVOLUTION_AUTH, EVOLUTION_DOWN
from watchdog.integrations import DIFY, INTEGRATIONS, Integration, is_absent
from watchdog.model import Finding, Severity, contact_id

T = TypeVar("T")
Read = tuple[list[BotView] | None, list[SessionView], BotSettings | None]  # bots None: off here


async def take_snapshot(
    evolution: EvolutionClient,
    dify: DifyClient | None,
    *,
    dify_key: str,
    contact_key: bytes,
    instances: Sequence[str] = (),
    webhook_url: str = "",
    stall_seconds: float | None = None,
) -> Snapshot:
    """Version and instances first (nothing else makes sense without the instances), then every instance.

    A failed `GET /` only costs the version checks: from 2.3.1 it calls web.whatsapp.com with no
    timeout, so an Evolution host without internet access hangs there while the rest works."""
    unread: list[str] = []
    info, listing = await asyncio.gather(
        _try("version (GET /)", evolution.info(), unread),
        evolution.instances(),
        return_exceptions=True,
    )
    if isinstance(listing, UpstreamError):
        return Snapshot(unreachable=_unreachable(listing), webhook_url=webhook_url)
    if isinstance(listing, BaseException):
        raise listing
    if isinstance(info, BaseException):
        raise info
    rows = listing
    stored = {row.name: row.stored_status for row in rows}
    watched = list(instances) if instances else sorted(stored)
    reader = _InstanceReader(evolution, dify, dify_key, contact_key)
    views = await asyncio.gather(*(reader.read(name, stored[name]) for name in watched if name in stored))
    return Snapshot(
        version=info.version if info is not None else "",
        whatsapp_web_version=info.whatsapp_web_version if info is not None else "",
        instances=tuple(views),
        missing=tuple(name for name in watched if name not in stored),
        webhook_url=webhook_url,
        dify_configured=dify is not None and bool(dify_key),
        unread=tuple(unread),
        taken_at=time.time(),
        stall_seconds=stall_seconds,
    )


class _InstanceReader:
    def __init__(
        self, evolution: EvolutionClient, dify: DifyClient | None, dify_key: str, contact_key: bytes
    ) -> None:
        self.evolution = evolution
        self.dify = dify
        self.dify_key = dify_key
        self._contact_key = contact_key  # keys the contact ids (model.contact_id); never shown

    async def read(self, name: str, stored_status: str) -> InstanceView:
        unread: list[str] = []
        (live_read, live), hook, per = await asyncio.gather(
            self._live(name, unread),
            _try("webhook (webhook/find)", self.evolution.webhook(name), unread),
            asyncio.gather(*(self._integration(name, integ, unread) for integ in INTEGRATIONS)),
        )
        read = list(zip(INTEGRATIONS, per, strict=True))
        return InstanceView(
            name=name,
            stored_status=stored_status,
            live_state=live,
            live_read=live_read,
            bots=tuple(bot for _, (bots, _, _) in read for bot in bots or ()),
            sessions=tuple(_shared([s for _, (_, found, _) in read for s in found])),
            webhook=hook,
            unread=tuple(dict.fromkeys(unread)),  # one line per distinct failure, not per session
            settings={i.name: got for i, (_, _, got) in read if got is not None},
            off=tuple(i.name for i, (bots, _, _) in read if bots is None),
        )

    async def _integration(self, name: str, integ: Integration, unread: list[str]) -> Read:
        """(bots, their sessions, the settings row); bots None when the integration is off here."""
        try:
            bots = await self.evolution.chatbots.bots(integ, name)
        except UpstreamError as exc:
            if is_absent(exc):
                return None, [], None
            unread.append(f"{integ.label} bots ({integ.name}/find): {exc.message}")
            return [], [], None
        what = f"{integ.label} settings ({integ.name}/fetchSettings)"
        settings = await _try(what, self.evolution.chatbots.settings(integ, name), unread)
        views = [self._bot(bot, settings) for bot in bots]
        sessions: list[SessionView] = []
        for bot in views:
            rows = await _try(
                f"sessions of bot {bot.id}", self.evolution.chatbots.sessions(integ, name, bot.id), unread
            )
            # Lookups side by side: the HTTP pool (WATCHDOG_PROBE_CONCURRENCY) bounds them.
            sessions += await asyncio.gather(*(self._session(bot, row, unread) for row in rows or []))
        return views, sessions, settings

    async def _live(self, name: str, unread: list[str]) -> tuple[bool, str | None]:
        """(read, state): connection_state answers None for an instance in the DB but not loaded."""
        try:
            return True, await self.evolution.connection_state(name)
        except UpstreamError as exc:
            unread.append(f"connectionState: {exc.message}")
            return False, None

    def _bot(self, bot: ChatBot, settings: BotSettings | None) -> BotView:
        """Evolution uses the bot's own option and falls back to its integration's settings row."""
        fallback = settings or BotSettings(None, None, None, None, None)
        return BotView(
            id=bot.id,
            enabled=bot.enabled,
            bot_type=bot.bot_type,
            expire=_pick(bot.expire, fallback.expire),
            keyword_finish=_pick(bot.keyword_finish, fallback.keyword_finish),
            stop_bot_from_me=_pick(bot.stop_bot_from_me, fallback.stop_bot_from_me),
            key_held=bool(
                bot.integration == DIFY.name
                and self.dify is not None
                and self.dify_key
                and bot.api_key
                and hmac.compare_digest(bot.api_key.encode(), self.dify_key.encode())
            ),
            integration=bot.integration,
            keep_open=_pick(bot.keep_open, fallback.keep_open),
        )

    async def _session(self, bot: BotView, row: ChatSession, unread: list[str]) -> SessionView:
        conversation = NO_CONVERSATION
        if row.conversation_id is not None:
            conversation = UNVERIFIED
            # Only an opened session is judged on its conversation: paused/closed ones get deleted anyway.
            if bot.key_held and self.dify is not None and row.status == "opened":
                known = await _try("Dify conversations", self.dify.conversation_ids(row.remote_jid), unread)
                if known is not None:
                    conversation = KNOWN if row.conversation_id in known else UNKNOWN
        return SessionView(
            bot_id=bot.id,
            contact=contact_id(row.remote_jid, key=self._contact_key),
            status=row.status,
            conversation=conversation,
            remote_jid=row.remote_jid,
            integration=bot.integration,
            await_user=row.await_user,
            updated_at=_epoch(row.updated_at),
        )


def _shared(sessions: list[SessionView]) -> list[SessionView]:
    """Contacts held by several integrations on the instance: getSession (chatbot.controller.ts:170-189)
    hands every integration the newest session alone."""
    held: dict[str, set[str]] = {}
    for s in sessions:
        held.setdefault(s.contact, set()).add(s.integration)
    return [replace(s, shared_with=tuple(sorted(held[s.contact] - {s.integration}))) for s in sessions]


def _epoch(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


def _pick(own: T | None, fallback: T | None) -> T | None:
    return own if own is not None else fallback


async def _try(what: str, call: Awaitable[T], unread: list[str]) -> T | None:
    try:
        return await call
    except UpstreamError as exc:
        unread.append(f"{what}: {exc.message}")
        return None


def _unreachable(exc: UpstreamError) -> Finding:
    if isinstance(exc, UpstreamAuthError):
        summary = f"EVOLUTION_API_KEY was refused: {exc.message}"
        return Finding(EVOLUTION_AUTH, "evolution", Severity.CRITICAL, summary)
    return Finding(EVOLUTION_DOWN, "evolution", Severity.CRITICAL, f"Evolution API: {exc.message}")
