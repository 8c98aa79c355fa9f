"""Evolution 2.3.6's bot rows, for every bot integration: bots, each integration's settings row and the
bot sessions, as its controllers keep them (watchdog/integrations.py names the integrations).

Source: src/api/integrations/chatbot/base-chatbot.controller.ts (`createBot`, `settings`, `fetchSettings`,
`changeStatus`, `fetchSessions`), each `{name}/controllers/{name}.controller.ts` (its own columns and its
duplicate checks on create) and the Prisma schema (prisma/postgresql-schema.prisma, models Dify, Typebot,
OpenaiBot, Flowise, N8n, EvolutionBot, Evoai, their *Setting, IntegrationSession), whose column defaults
fill what a request leaves out (the same for every bot table). Dify's own columns are Bot attributes;
the other integrations keep theirs in `Bot.extra` under upstream's names.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from watchdog.integrations import DIFY, Integration

# camelCase column -> Bot attribute, for the columns a bot shares with the settings row.
SETTING_COLUMNS = {
    "expire": "expire",
    "keywordFinish": "keyword_finish",
    "delayMessage": "delay_message",
    "unknownMessage": "unknown_message",
    "listeningFromMe": "listening_from_me",
    "stopBotFromMe": "stop_bot_from_me",
    "keepOpen": "keep_open",
    "debounceTime": "debounce_time",
    "ignoreJids": "ignore_jids",
    "splitMessages": "split_messages",
    "timePerChar": "time_per_char",
}
BOT_COLUMNS = {
    "enabled": "enabled",
    "description": "description",
    "botType": "bot_type",
    "apiUrl": "api_url",
    "apiKey": "api_key",
    **SETTING_COLUMNS,
    "triggerType": "trigger_type",
    "triggerOperator": "trigger_operator",
    "triggerValue": "trigger_value",
}
# Prisma column defaults (Dify and DifySetting): what a value left undefined becomes.
COLUMN_DEFAULTS: dict[str, Any] = {
    "expire": 0,
    "listeningFromMe": False,
    "stopBotFromMe": False,
    "keepOpen": False,
    "splitMessages": False,
    "timePerChar": 50,
}
# `fetchSettings` with no settings row answers these, and creates nothing (base-chatbot.controller.ts:399).
SETTINGS_WHEN_NONE: dict[str, Any] = {
    "expire": 300,
    "keywordFinish": "bye",
    "delayMessage": 1000,
    "unknownMessage": "Sorry, I dont understand",
    "listeningFromMe": True,
    "stopBotFromMe": True,
    "keepOpen": False,
    "debounceTime": 1,
    "ignoreJids": [],
    "splitMessages": False,
    "timePerChar": 0,
    "fallbackId": "",
    "fallback": None,
}
# The columns every bot table has besides its integration's own (see BOT_COLUMNS for Dify's).
_COMMON_COLUMNS = {k: v for k, v in BOT_COLUMNS.items() if k not in ("botType", "apiUrl", "apiKey")}
BOT_TYPES = ("chatBot", "textGenerator", "agent", "workflow")
TRIGGER_TYPES = ("all", "keyword", "none", "advanced")
TRIGGER_OPERATORS = ("equals", "contains", "startsWith", "endsWith", "regex")


def cuid() -> str:
    return "c" + secrets.token_hex(12)


@dataclass
class Bot:
    id: str
    api_url: str
    api_key: str
    bot_type: str = "chatBot"
    enabled: bool = True
    description: str | None = None
    trigger_type: str | None = "all"
    trigger_operator: str | None = None
    trigger_value: str | None = None
    expire: int | None = 0
    keyword_finish: str | None = None
    delay_message: int | None = None  # ms; the reply's typing time (`|| 1000`)
    unknown_message: str | None = None
    listening_from_me: bool | None = False
    stop_bot_from_me: bool | None = False
    keep_open: bool | None = False
    debounce_time: float | None = None  # s (an integer upstream; fractions let tests run fast)
    ignore_jids: list[str] | None = None
    split_messages: bool | None = False
    time_per_char: int | None = 0
    instance_id: str = ""
    created_at: float = field(default_factory=time.time)
    integration: str = DIFY.name
    extra: dict[str, Any] = field(default_factory=dict)  # another integration's own columns (camelCase)


@dataclass
class Session:
    """An IntegrationSession row. `bot_id` None is a session some other integration opened without a bot."""

    id: str
    remote_jid: str
    session_id: str
    bot_id: str | None
    push_name: str | None = None
    status: str = "opened"
    await_user: bool = False
    type: str = "dify"
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    context: Any = None  # OpenAI chat completion keeps its history here (openai.service.ts:561-571)


BOT_ATTRIBUTES = {f.name for f in fields(Bot)}


def bot_from_body(
    body: dict[str, Any], *, instance_id: str, settings: dict[str, Any] | None, integ: Integration = DIFY
) -> Bot:
    """`createBot`: a column the body leaves out comes from the settings row, else the column default."""
    values: dict[str, Any] = {}
    columns = BOT_COLUMNS if integ is DIFY else _COMMON_COLUMNS
    for column, attribute in columns.items():
        value = body.get(column)
        if value is None and column in SETTING_COLUMNS and settings is not None:
            value = settings.get(column)
        if value is None and column in ("splitMessages", "timePerChar"):
            value = False if column == "splitMessages" else 0  # `?? false`, `?? 0`
        if value is None and column in COLUMN_DEFAULTS:
            value = COLUMN_DEFAULTS[column]
        values[attribute] = value
    values["enabled"] = True if values["enabled"] is None else bool(values["enabled"])
    if integ is not DIFY:
        own = {column: body.get(column) for column in integ.bot_columns}
        values.update(api_url="", api_key="", bot_type="")
        return Bot(id=cuid(), instance_id=instance_id, integration=integ.name, extra=own, **values)
    values["api_url"] = values["api_url"] or ""
    values["api_key"] = values["api_key"] or ""
    return Bot(id=cuid(), instance_id=instance_id, **values)


def bots_settings(bot: Bot) -> dict[str, Any]:
    """A bot's settings columns by their camelCase names (what createBot copies into a new settings row)."""
    return {column: getattr(bot, attribute) for column, attribute in SETTING_COLUMNS.items()}


def settings_row(
    values: dict[str, Any], *, instance_id: str, row_id: str | None = None, integ: Integration = DIFY
) -> dict[str, Any]:
    """A settings row (DifySetting, TypebotSetting, ...) from the settings columns (undefined ones take the
    column default); OpenaiSetting also keeps its credentials and speechToText."""
    row: dict[str, Any] = {"id": row_id or cuid()}
    for column in SETTING_COLUMNS:
        value = values.get(column)
        row[column] = COLUMN_DEFAULTS.get(column) if value is None else value
    row[integ.settings_fallback] = values.get("fallbackId")
    if integ.name == "openai":
        row["openaiCredsId"] = values.get("openaiCredsId")
        row["speechToText"] = bool(values.get("speechToText") or False)
    row["createdAt"] = row["updatedAt"] = time.time()
    row["instanceId"] = instance_id
    return row


def merged_settings(bot: Bot, settings: dict[str, Any] | None) -> dict[str, Any]:
    """`emit`'s merge: the bot's value, else the settings row's (base-chatbot.controller.ts:839-862).

    With no settings row and a null bot column upstream reads a property of null and the message is
    dropped with a logged TypeError; None here means the same.
    """
    merged: dict[str, Any] = dict(settings or {})
    for column, attribute in SETTING_COLUMNS.items():
        value = getattr(bot, attribute)
        if value is None:
            if settings is None and column not in ("splitMessages", "timePerChar"):
                raise LookupError(column)
            settings = settings or {}
            value = settings.get(column)
        merged[column] = value
    merged["splitMessages"] = merged.get("splitMessages") or False
    merged["timePerChar"] = merged.get("timePerChar") or 0
    return merged


class BotHolder(Protocol):
    """The part of an emulated instance these rows live on."""

    id: str
    bots: list[Bot]
    sessions: dict[str, Session]
    dify_settings: dict[str, Any] | None
    bot_settings: dict[str, dict[str, Any]]  # the other integrations' settings rows, by integration
    openai_creds: list[dict[str, Any]]
    wedged: set[str]


def bots_of(holder: BotHolder, integ: Integration) -> list[Bot]:
    """The integration's bot table, on this instance."""
    return [b for b in holder.bots if b.integration == integ.name]


def settings_of(holder: BotHolder, integ: Integration) -> dict[str, Any] | None:
    return holder.dify_settings if integ is DIFY else holder.bot_settings.get(integ.name)


def put_settings(holder: BotHolder, integ: Integration, row: dict[str, Any]) -> None:
    if integ is DIFY:
        holder.dify_settings = row
    else:
        holder.bot_settings[integ.name] = row


class RowError(Exception):
    """A controller error: `status` 500 for upstream's plain `Error`s."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def save_settings(holder: BotHolder, body: dict[str, Any], integ: Integration = DIFY) -> dict[str, Any]:
    """`{integration}/settings`: update the row or create it; `fallbackId` is stored under the
    integration's fallback column (`difyIdFallback`, ...)."""
    old = settings_of(holder, integ)
    row = settings_row(body, instance_id=holder.id, row_id=old["id"] if old else None, integ=integ)
    if old is not None:
        row["createdAt"] = old["createdAt"]
        if integ.name == "openai" and not body.get("openaiCredsId"):
            row["openaiCredsId"] = old.get("openaiCredsId")  # `connect` only when given
    put_settings(holder, integ, row)
    return row


def change_status(
    holder: BotHolder, everyone: Iterable[BotHolder], remote_jid: str, status: str, integ: Integration = DIFY
) -> dict[str, Any]:
    """`changeStatus` (base-chatbot.controller.ts:429): `delete` and `closed` act on the contact's bot
    sessions on EVERY instance and of every integration (`deleteMany({remoteJid, botId: {not: null}})`, no
    instance or type filter); `opened`/`paused` only on this one. `closed` keeps the rows when this
    integration's settings say keepOpen. Returns the count of rows touched."""
    settings = settings_of(holder, integ)
    keep_open = bool(settings and settings.get("keepOpen"))
    scope = list(everyone) if status in ("delete", "closed") else [holder]
    touched = 0
    for each in scope:
        session = each.sessions.get(remote_jid)
        each.wedged.discard(remote_jid)
        if session is None or session.bot_id is None:
            continue
        touched += 1
        if status == "delete" or (status == "closed" and not keep_open):
            del each.sessions[remote_jid]
        else:
            session.status = status
            session.updated_at = time.time()
    return {"count": touched}


def fetch_sessions(
    holder: BotHolder, everyone: Iterable[BotHolder], bot_id: str, integ: Integration = DIFY
) -> list[Session]:
    """`fetchSessions` (base-chatbot.controller.ts:519-557): the bot's sessions of this integration's type
    here; an unknown bot id lists every bot session of that type here; another instance's bot is an error
    (re-thrown as `Error fetching sessions`)."""
    bot = next((b for each in everyone for b in bots_of(each, integ) if b.id == bot_id), None)
    if bot is not None and bot.instance_id != holder.id:
        raise RowError(500, "Error fetching sessions")
    return [
        s
        for s in holder.sessions.values()
        if s.type == integ.session_type and s.bot_id is not None and (bot is None or s.bot_id == bot_id)
    ]
