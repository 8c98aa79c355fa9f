"""Evolution API probes: version, instance list, each instance's live state and its Dify bot sessions.

The instance list (`fetchInstances`) is Evolution's liveness. `GET /` only reads the version: since 2.3.1
it fetches web.whatsapp.com with no timeout before answering (index.router.ts), so it gets a short
deadline of its own and its failure leaves the version unknown, never Evolution down.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from watchdog.clients.dify import DifyClient
from watchdog.clients.evolution import BotSession, EvolutionClient, EvolutionInfo
from watchdog.errors import UpstreamError, UpstreamProtocolError
from watchdog.model import ProbeResult, contact_id, instance_target
from watchdog.probes.base import SUBJECTS, Observation, ProbeRunner
from watchdog.probes.cadence import SlowCadence
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
    ) -> None:
        self.client = client
        self.runner = runner
        self._contact_key = contact_key  # keys the contact ids (model.contact_id); never shown
        self.configured = tuple(instances)
        self.dify = dify
        self._dify_key = dify_api_key
        self.webhook_url = webhook_url
        self.cadence = SlowCadence(slow_every)
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
            watched = list(self.configured) if self.configured else sorted(stored)
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
            bots = await self.client.dify_bots(instance)
            summaries: list[dict[str, Any]] = []
            subjects: dict[str, str] = {}
            for bot in bots:
                verify = self._can_verify(bot.api_key)
                for session in await self.client.dify_sessions(instance, bot.id):
                    summaries.append(await self._summary(session, bot.bot_type, verify))
                    subjects[contact_id(session.remote_jid, key=self._contact_key)] = session.remote_jid
            return (
                True,
                f"{len(bots)} Dify bots, {len(summaries)} sessions",
                {
                    "bots": [{"id": b.id, "enabled": b.enabled, "bot_type": b.bot_type} for b in bots],
                    "sessions": summaries,
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

    async def _summary(self, session: BotSession, bot_type: str, verify: bool) -> dict[str, Any]:
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
            "bot_type": bot_type,
        }


def _epoch(iso: str) -> float | None:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None
