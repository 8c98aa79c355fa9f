"""`{integration}/create`: the checks Evolution 2.3.6 makes before it stores a bot, per integration.

base-chatbot.controller.ts:88-241 (`createBot`: the settings row made when missing, one enabled "all"
trigger, keyword triggers unique) after each controller's own checks (`createBot` overrides in
dify/flowise/n8n/evoai/openai controllers; Typebot and EvolutionBot check duplicates on update only).
Every refusal is a plain Error: HTTP 500 with the message.
"""

from __future__ import annotations

from typing import Any

from watchdog.integrations import BY_NAME, DIFY, Integration
from watchdog.sim.bots import (
    BOT_COLUMNS,
    SETTING_COLUMNS,
    Bot,
    BotHolder,
    RowError,
    bot_from_body,
    bots_of,
    put_settings,
    settings_of,
    settings_row,
)

ALL_TAKEN = 'You already have a {} with an "All" trigger, you cannot have more bots while it is active'
# The controllers' own duplicate checks on create (column tuple, message).
DUPLICATES: dict[str, tuple[tuple[str, ...], str]] = {
    "dify": (("botType", "apiUrl", "apiKey"), "Dify already exists"),  # dify.controller.ts:95-107
    "flowise": (("apiUrl", "apiKey"), "Flowise already exists"),  # flowise.controller.ts:86-98
    "n8n": (("webhookUrl", "basicAuthUser", "basicAuthPass"), "N8n already exists"),  # n8n...ts:95-107
    "evoai": (("agentUrl", "apiKey"), "Evoai already exists"),  # evoai.controller.ts:95-107
}


def create_bot(holder: BotHolder, body: dict[str, Any], integ: Integration = DIFY) -> Bot:
    if integ.name == "openai":
        _openai_checks(holder, body)
    same = DUPLICATES.get(integ.name)
    if same is not None:
        given = tuple(body.get(c) for c in same[0])
        if any(tuple(_column(b, c) for c in same[0]) == given for b in bots_of(holder, integ)):
            raise RowError(500, same[1])
    settings = settings_of(holder, integ)
    bot = bot_from_body(body, instance_id=holder.id, settings=settings, integ=integ)
    if settings is None:  # a missing column is (nearly) always the case: the row is made
        values = {c: body.get(c) for c in SETTING_COLUMNS}
        values["splitMessages"] = values["splitMessages"] or False
        values["timePerChar"] = values["timePerChar"] or 0
        put_settings(holder, integ, settings_row(values, instance_id=holder.id, integ=integ))
    mine = bots_of(holder, integ)
    if body.get("triggerType") == "all" and any(b.enabled and b.trigger_type == "all" for b in mine):
        raise RowError(500, ALL_TAKEN.format(integ.label))
    if body.get("triggerType") == "keyword":
        if not body.get("triggerOperator") or not body.get("triggerValue"):
            raise RowError(500, "Trigger operator and value are required")
        pair = (body["triggerOperator"], body["triggerValue"])
        if any((b.trigger_operator, b.trigger_value) == pair for b in mine):
            raise RowError(500, "Trigger already exists")
    holder.bots.append(bot)
    return bot


def _column(bot: Bot, column: str) -> Any:
    return getattr(bot, BOT_COLUMNS[column]) if bot.integration == DIFY.name else bot.extra.get(column)


def _openai_checks(holder: BotHolder, body: dict[str, Any]) -> None:
    """openai.controller.ts:120-206: per botType, what is required and what is a duplicate; then the
    settings row is made with the bot's credentials, which must exist (Prisma's `connect`)."""
    bot_type = body.get("botType")
    if bot_type == "assistant":
        if not body.get("assistantId"):
            raise RowError(500, "Assistant ID is required")
        same: tuple[str, ...] = ("assistantId", "botType")
    elif bot_type == "chatCompletion":
        if not body.get("model"):
            raise RowError(500, "Model is required")
        if not body.get("maxTokens"):
            raise RowError(500, "Max tokens is required")
        same = ("model", "maxTokens", "botType")
    else:
        raise RowError(500, "Bot type is required")
    openai = BY_NAME["openai"]
    if any(all(b.extra.get(c) == body.get(c) for c in same) for b in bots_of(holder, openai)):
        raise RowError(500, "Openai Bot already exists")
    if settings_of(holder, openai) is not None:
        return
    creds = body.get("openaiCredsId")
    if not any(c["id"] == creds for c in holder.openai_creds):
        raise RowError(500, "Error setting default settings")  # the `connect` to a missing row throws
    values = {
        "openaiCredsId": creds,
        "expire": body.get("expire") or 300,
        "keywordFinish": body.get("keywordFinish") or "bye",
        "delayMessage": body.get("delayMessage") or 1000,
        "unknownMessage": body.get("unknownMessage") or "Sorry, I dont understand",
        "listeningFromMe": body.get("listeningFromMe", True),
        "stopBotFromMe": body.get("stopBotFromMe", True),
        "keepOpen": body.get("keepOpen", False),
        "debounceTime": body.get("debounceTime") or 1,
        "ignoreJids": body.get("ignoreJids") or [],
        "speechToText": False,
    }
    put_settings(holder, openai, settings_row(values, instance_id=holder.id, integ=openai))
