"""Evolution's bot integration routes, the same for every integration (watchdog/integrations.py says where).

`EvolutionClient.chatbots` is one of these, sharing its connection, key and timeout. `read_instance` reads
every integration's bots and sessions on one instance at once; an integration that is off there (disabled,
or not in this release) is listed as such, never an error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from watchdog.clients.http import JsonClient, as_dict
from watchdog.errors import UpstreamError, UpstreamProtocolError
from watchdog.integrations import BY_NAME, INTEGRATIONS, Integration, is_absent


@dataclass(frozen=True)
class ChatBot:
    integration: str
    id: str
    enabled: bool
    bot_type: str  # Dify's and OpenAI's botType; "" where there is none
    backend: str  # where turns go (apiUrl, url, webhookUrl, agentUrl; OpenAI's model): may hold a secret
    api_key: str = field(default="", repr=False)  # secret: compared, never shown
    # None = not set on the bot: Evolution falls back to the instance's settings row.
    expire: int | None = None  # minutes
    keyword_finish: str | None = None
    stop_bot_from_me: bool | None = None
    keep_open: bool | None = None
    trigger_type: str | None = None


@dataclass(frozen=True)
class BotSettings:
    """`{integration}/fetchSettings`: the instance-wide defaults a bot's unset options fall back to."""

    expire: int | None
    keyword_finish: str | None
    stop_bot_from_me: bool | None
    keep_open: bool | None
    fallback_id: str | None


@dataclass(frozen=True)
class ChatSession:
    id: str
    remote_jid: str
    session_id: str  # = remoteJid until the backend names its own (Dify conversation, OpenAI thread, Typebot)
    status: str  # opened | paused | closed
    await_user: bool
    updated_at: str  # ISO 8601 as stored by Prisma
    bot_id: str = ""

    @property
    def conversation_id(self) -> str | None:
        return None if self.session_id == self.remote_jid else self.session_id


@dataclass(frozen=True)
class InstanceBots:
    """One instance's bots and sessions per integration, and the integrations that are off there."""

    bots: Mapping[str, Sequence[ChatBot]]
    sessions: Mapping[str, Sequence[ChatSession]]  # bot id -> its sessions
    off: tuple[str, ...] = ()


class ChatbotClient:
    def __init__(self, api: JsonClient, headers: Mapping[str, str]) -> None:
        self._api = api
        self._headers = dict(headers)

    async def bots(self, integ: Integration, instance: str) -> list[ChatBot]:
        rows = await self._api.json("GET", integ.find_path(instance), headers=self._headers)
        if rows is None:
            return []
        if not isinstance(rows, list):
            raise UpstreamProtocolError("evolution", f"{integ.name}/find did not return a list")
        return [_bot(integ, r) for r in rows if isinstance(r, dict) and r.get("id")]

    async def settings(self, integ: Integration, instance: str) -> BotSettings:
        body = as_dict(
            await self._api.json("GET", integ.settings_path(instance), headers=self._headers),
            "evolution",
            f"{integ.name}/fetchSettings",
        )
        return BotSettings(
            expire=_int(body.get("expire")),
            keyword_finish=_str(body.get("keywordFinish")),
            stop_bot_from_me=_bool(body.get("stopBotFromMe")),
            keep_open=_bool(body.get("keepOpen")),
            fallback_id=_str(body.get("fallbackId")) or None,
        )

    async def sessions(self, integ: Integration, instance: str, bot_id: str) -> list[ChatSession]:
        rows = await self._api.json("GET", integ.sessions_path(bot_id, instance), headers=self._headers)
        if not isinstance(rows, list):
            raise UpstreamProtocolError("evolution", f"{integ.name}/fetchSessions did not return a list")
        return [_session(r) for r in rows if isinstance(r, dict) and r.get("remoteJid")]

    async def change_status(self, integ: Integration, instance: str, remote_jid: str, status: str) -> None:
        """`POST /{integration}/changeStatus/{i}`; `delete` clears the contact on every instance."""
        await self._api.json(
            "POST",
            integ.change_status_path(instance),
            headers=self._headers,
            json_body={"remoteJid": remote_jid, "status": status},
        )

    async def read_instance(
        self, instance: str, integrations: Sequence[Integration] = INTEGRATIONS
    ) -> InstanceBots:
        """Every integration's bots, then each bot's sessions, side by side. Raises the first failure
        that is not an integration being off (the instance cannot be judged on half its sessions)."""
        found = await asyncio.gather(*(self.bots(i, instance) for i in integrations), return_exceptions=True)
        bots: dict[str, list[ChatBot]] = {}
        off: list[str] = []
        for integ, answer in zip(integrations, found, strict=True):
            if isinstance(answer, UpstreamError) and is_absent(answer):
                off.append(integ.name)
            elif isinstance(answer, BaseException):
                raise answer
            else:
                bots[integ.name] = answer
        every = [(BY_NAME[b.integration], b) for rows in bots.values() for b in rows]
        rows = await asyncio.gather(*(self.sessions(i, instance, b.id) for i, b in every))
        sessions = {
            bot.id: [replace(s, bot_id=bot.id) for s in got]
            for (_, bot), got in zip(every, rows, strict=True)
        }
        return InstanceBots(bots, sessions, tuple(off))


def _bot(integ: Integration, row: dict[str, Any]) -> ChatBot:
    key = str(row.get("apiKey") or "") if "apiKey" in integ.backend else ""
    return ChatBot(
        integration=integ.name,
        id=str(row["id"]),
        enabled=bool(row.get("enabled", True)),
        bot_type=str(row.get("botType") or ""),
        backend=str(row.get(integ.backend[0]) or ""),
        api_key=key,
        expire=_int(row.get("expire")),
        keyword_finish=_str(row.get("keywordFinish")),
        stop_bot_from_me=_bool(row.get("stopBotFromMe")),
        keep_open=_bool(row.get("keepOpen")),
        trigger_type=_str(row.get("triggerType")),
    )


def _session(row: dict[str, Any]) -> ChatSession:
    return ChatSession(
        id=str(row.get("id") or ""),
        remote_jid=str(row["remoteJid"]),
        session_id=str(row.get("sessionId") or row["remoteJid"]),
        status=str(row.get("status") or ""),
        await_user=bool(row.get("awaitUser")),
        updated_at=str(row.get("updatedAt") or ""),
        bot_id=str(row.get("botId") or ""),
    )


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return str(value) if isinstance(value, str) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None
