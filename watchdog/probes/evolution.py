"""Evolution API probes: version, instance list, each instance's live state and its bot sessions in every
bot integration Evolution runs (watchdog/integrations.py), Dify's conversations checked where we hold its key.

The instance list (`fetchInstances`) is Evolution's liveness. `GET /` only reads the version: since 2.3.1
it fetches web.whatsapp.com with no timeout before answering (index.router.ts), so it gets a short
deadline of its own and its failure leaves the version unknown, never Evolution down.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from watchdog.clients.chatbots import ChatBot, ChatSession, InstanceBots
from watchdog.clients.dify import DifyClient
from watchdog.clients.evolution import EvolutionClient, EvolutionInfo
from watchdog.errors import UpstreamError, UpstreamProtocolError
from watchdog.integrations import BY_NAME, DIFY, Integration
from watchdog.model import ProbeResult, contact_id, instance_target
from watchdog.probes.base import SUBJECTS, Observation, ProbeRunner
from watchdog.probes.cadence import SlowCadence
from watchdog.probes.offhere import OffIntegrations
from watchdog.probes.webhook import webhook_probe

SESSIONS_DEADLINE_FACTOR = 4
VERSION_TIMEOUT = 2.0  # seconds for GET / (capped by the probe timeout); it waits on web.whatsapp.com


class EvolutionProbes:
    def __init__(
        self,
        client: EvolutionClient,
        runner: ProbeRunner,
        *,
        contact_key: bytes,
        instances: Sequence[str] = (),
        dify: DifyClient | None = None,
        dify_api_key: str = "",
        webhook_url: str = "",
        slow_every: int = 1,
        exclude: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.runner = runner
        self._contact_key = contact_key  # keys the contact ids (model.contact_id); never shown
        self.configured = tuple(instances)
        self.exclude = frozenset(exclude)  # the heartbeat's prober: never watched (probes/heartbeat.py)
        self.dify = dify
        self._dify_key = dify_api_key
        self.webhook_url = webhook_url
        self.cadence = SlowCadence(slow_every)
        self.off_here = OffIntegrations()
        self.version_timeout = min(VERSION_TIMEOUT, runner.deadline)
        self._known: EvolutionInfo | None = None  # the last version read: it changes only with a restart

    async def version(self) -> ProbeResult:
        """Always ok: a GET / that fails or is slow says nothing about Evolution's health."""

        async def call() -> Observation:
            try:
                async with asyncio.timeout(self.version_timeout):  # total, not per read
                    info = await self.client.info(timeout=self.version_timeout)
            except TimeoutError:
                return self._version_unknown(f"GET / timed out after {self.version_timeout:g}s", "timeout")
            except UpstreamError as exc:
                return self._version_unknown(exc.message, exc.kind)
            self._known = info
            web = f", WhatsApp Web {info.whatsapp_web_version}" if info.whatsapp_web_version else ""
            return (
                True,
                f"Evolution API {info.version}{web}",
                {"version": info.version, "whatsapp_web_version": info.whatsapp_web_version},
            )

        return await self.runner.run("evolution", "version", call, deadline=self.version_timeout + 1)

    def _version_unknown(self, reason: str, kind: str) -> Observation:
        known = self._known
        data = {
            "version": known.version if known else "",
            "whatsapp_web_version": known.whatsapp_web_version if known else "",
            "version_error": kind,
        }
        last = f" (last read {known.version})" if known else ""
        return True, f"version unknown{last}: {reason} (GET / waits on web.whatsapp.com)", data

    async def instances(self) -> ProbeResult:
        async def call() -> Observation:
            rows = await self.client.instances()
            stored = {row.name: row.stored_status for row in rows}
            watched = [n for n in (self.configured or sorted(stored)) if n not in self.exclude]
            missing = [name for name in watched if name not in stored]
            return (
                not missing,
                f"{len(rows)} instances, watching {len(watched)}",
                {
                    "watched": watched,
                    "stored_status": {name: stored[name] for name in watched if name in stored},
                    "missing": missing,
                },
            )

        return await self.runner.run("evolution", "instances", call)

    async def connection_state(self, instance: str) -> ProbeResult:
        async def call() -> Observation:
            state = await self.client.connection_state(instance)
            if state is None:
                raise UpstreamProtocolError(
                    "evolution", "connectionState has no 'state': instance is in the database but not loaded"
                )
            return state == "open", state, {"state": state}

        return await self.runner.run(instance_target(instance), "connection_state", call)

    async def sessions(self, instance: str) -> ProbeResult:
        async def call() -> Observation:
            asked = self.off_here.to_read(self.runner.clock.monotonic())
            read = await self.client.chatbots.read_instance(instance, asked)
            now = self.runner.clock.monotonic()
            self.off_here.learn(asked, read.off, now)
            known_off = set(read.off) | set(self.off_here.skipped(now))
            read = replace(read, off=tuple(i.name for i in self.off_here.integrations if i.name in known_off))
            summaries: list[dict[str, Any]] = []
            subjects: dict[str, str] = {}
            bots = [bot for name in read.bots for bot in read.bots[name]]
            for bot in bots:
                integ = BY_NAME[bot.integration]
                verify = integ is DIFY and self._can_verify(bot.api_key)
                for session in read.sessions.get(bot.id, ()):
                    summaries.append(await self._summary(session, bot, integ, verify))
                    subjects[summaries[-1]["contact"]] = session.remote_jid
            _mark_shared(summaries)
            return (
                True,
                _detail(read, bots, len(summaries)),
                {
                    "bots": [
                        {
                            "id": b.id,
                            "enabled": b.enabled,
                            "bot_type": b.bot_type,
                            "integration": b.integration,
                        }
                        for b in bots
                    ],
                    "sessions": summaries,
                    "off": list(read.off),
                    SUBJECTS: subjects,
                },
            )

        # Several calls in one probe: room for them, while each call keeps its own deadline.
        return await self.runner.run(
            instance_target(instance),
            "sessions",
            call,
            deadline=self.runner.deadline * SESSIONS_DEADLINE_FACTOR,
        )

    async def run_all(self) -> list[ProbeResult]:
        version, listing = await asyncio.gather(self.version(), self.instances())
        results = [version, listing]
        if "watched" not in listing.data:
            return results
        watched = [name for name in listing.data["watched"] if name not in listing.data["missing"]]
        due = self.cadence.due(watched)
        per_instance = await asyncio.gather(
            *(self.connection_state(name) for name in watched),
            *(self.sessions(name) for name in due),
            *(webhook_probe(self.client, self.runner, name, self.webhook_url) for name in due),
        )
        fresh = list(per_instance)
        return results + fresh + self.cadence.carry(watched, fresh[len(watched) :])

    def _can_verify(self, bot_key: str) -> bool:
        """Only the Dify app whose key we hold can tell whether a conversation still exists."""
        return bool(
            self.dify is not None
            and self._dify_key
            and bot_key
            and hmac.compare_digest(bot_key.encode(), self._dify_key.encode())
        )

    async def _summary(
        self, session: ChatSession, bot: ChatBot, integ: Integration, verify: bool
    ) -> dict[str, Any]:
        conversation = "none"
        if session.conversation_id is not None:
            conversation = "unverified"
            if verify and self.dify is not None and session.status == "opened":
                try:
                    known = await self.dify.conversation_ids(session.remote_jid)
                    conversation = "known" if session.conversation_id in known else "unknown"
                except UpstreamError:
                    conversation = "unverified"
        return {
            "contact": contact_id(session.remote_jid, key=self._contact_key),
            "status": session.status,
            "await_user": session.await_user,
            "updated_at": _epoch(session.updated_at),
            "conversation": conversation,
            "bot_type": bot.bot_type,
            "integration": integ.name,
            "expire": bot.expire,  # minutes, the bot's own (None: the settings row's, not read here)
            # awaitUser tells a busy turn only where the first turn's answer sets it (integrations.py)
            "busy_visible": integ.marks_answered,
        }


def _mark_shared(summaries: list[dict[str, Any]]) -> None:
    """A contact with sessions of several integrations on one instance: getSession (chatbot.controller.ts:
    170-189) hands every integration the newest of them alone, so the others are shadowed, and a newest
    one that is closed silences them all."""
    held: dict[str, set[str]] = {}
    for s in summaries:
        held.setdefault(s["contact"], set()).add(s["integration"])
    for s in summaries:
        others = sorted(held[s["contact"]] - {s["integration"]})
        if others:
            s["shared_with"] = others


def _detail(read: InstanceBots, bots: Sequence[ChatBot], sessions: int) -> str:
    counts = ", ".join(f"{name} {len(rows)}" for name, rows in read.bots.items() if rows)
    text = f"{len(bots)} bots" + (f" ({counts})" if counts else "") + f", {sessions} sessions"
    return text + (f"; off here: {', '.join(read.off)}" if read.off else "")


def _epoch(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
