"""Which bot, if any, a message reaches: Evolution 2.3.6's trigger rules, ported from its source.

`findBotByTrigger` (src/utils/findBotByTrigger.ts), `advancedOperatorsSearch`
(src/utils/advancedOperatorsSearch.ts) and `checkIgnoreJids` (chatbot.controller.ts:136). A message
without text content (a sticker, a video note) has content `None`, JavaScript's `undefined`: some rules
still match it, one throws, as upstream.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Protocol, TypeVar


class JsTypeError(Exception):
    """What upstream's JavaScript throws on `undefined.startsWith(...)` and the like."""

    def __init__(self, method: str) -> None:
        super().__init__(f"TypeError: Cannot read properties of undefined (reading '{method}')")


class Triggered(Protocol):
    @property
    def enabled(self) -> bool: ...
    @property
    def trigger_type(self) -> str | None: ...
    @property
    def trigger_operator(self) -> str | None: ...
    @property
    def trigger_value(self) -> str | None: ...


B = TypeVar("B", bound=Triggered)


def find_bot_by_trigger(bots: Sequence[B], content: str | None) -> B | None:
    """The first bot whose trigger takes `content`; the order of upstream's queries."""
    live = [b for b in bots if b.enabled]
    for bot in live:
        if bot.trigger_type in ("all", "none"):
            return bot
    for bot in live:
        if bot.trigger_type == "advanced" and _advanced(_js_str(content), bot.trigger_value or ""):
            return bot
    keyword = [b for b in live if b.trigger_type == "keyword"]
    for bot in keyword:
        # Prisma drops a filter whose value is undefined: with no content, any `equals` bot matches.
        if bot.trigger_operator == "equals" and (content is None or bot.trigger_value == content):
            return bot
    for bot in keyword:
        if bot.trigger_operator == "regex" and re.search(bot.trigger_value or "", _js_str(content)):
            return bot
    for operator, method in (
        ("startsWith", "startsWith"),
        ("endsWith", "endsWith"),
        ("contains", "includes"),
    ):
        for bot in keyword:
            if bot.trigger_operator != operator:
                continue
            if content is None:
                raise JsTypeError(method)
            value = bot.trigger_value or ""
            hit = {
                "startsWith": content.startswith,
                "endsWith": content.endswith,
                "contains": content.__contains__,
            }[operator](value)
            if hit:
                return bot
    return None


def ignored(ignore_jids: Sequence[str] | None, remote_jid: str) -> bool:
    """`checkIgnoreJids`: `@g.us` ignores every group, `@s.whatsapp.net` every contact, else exact jids."""
    if not ignore_jids:
        return False
    if "@g.us" in ignore_jids and remote_jid.endswith("@g.us"):
        return True
    if "@s.whatsapp.net" in ignore_jids and remote_jid.endswith("@s.whatsapp.net"):
        return True
    return remote_jid in ignore_jids


def _js_str(content: str | None) -> str:
    return "undefined" if content is None else content


def _normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _advanced(data: str, query: str) -> bool:
    """`contains:a,b startsWith:x ...`: every operator holds for some value, every comma part of it."""
    filters: dict[str, list[str]] = {}
    for item in query.split(" "):
        operator, _, value = item.partition(":")
        filters.setdefault(operator, []).append(value)
    item = _normalize(data)

    def check(operator: str, value: str) -> bool:
        match operator.lower():
            case "contains":
                return value in item
            case "notcontains":
                return value not in item
            case "startswith":
                return item.startswith(value)
            case "endswith":
                return item.endswith(value)
            case "exact":
                return item == value
        return False

    return all(
        any(all(check(op, _normalize(part)) for part in value.split(",")) for value in values)
        for op, values in filters.items()
    )
