"""Evolution's bot triggers as the emulator ports them (src/utils/findBotByTrigger.ts and friends)."""

from __future__ import annotations

import pytest

from watchdog.sim.bots import Bot
from watchdog.sim.triggers import JsTypeError, find_bot_by_trigger, ignored


def bot(trigger: str, operator: str | None = None, value: str | None = None, *, enabled: bool = True) -> Bot:
    return Bot(
        id=f"c{trigger}{operator}{value}",
        api_url="http://x/v1",
        api_key="k",
        enabled=enabled,
        trigger_type=trigger,
        trigger_operator=operator,
        trigger_value=value,
    )


def test_all_or_none_takes_every_message_before_any_keyword() -> None:
    keyword, anything = bot("keyword", "equals", "oi"), bot("none")
    assert find_bot_by_trigger([keyword, anything], "oi") is anything
    assert find_bot_by_trigger([bot("all", enabled=False), keyword], "tchau") is None


@pytest.mark.parametrize(
    ("operator", "value", "text", "hit"),
    [
        ("equals", "menu", "menu", True),
        ("equals", "menu", "menu ", False),
        ("startsWith", "pedido", "pedido 42", True),
        ("endsWith", "?", "tem frete?", True),
        ("contains", "preço", "qual o preço do frete", True),
        ("regex", r"^\d{5}-\d{3}$", "01310-100", True),
        ("contains", "preço", "frete", False),
    ],
)
def test_keyword_operators(operator: str, value: str, text: str, hit: bool) -> None:
    chosen = bot("keyword", operator, value)
    assert (find_bot_by_trigger([chosen], text) is chosen) is hit


def test_advanced_operators_normalise_accents_and_case() -> None:
    advanced = bot("advanced", value="contains:preco startsWith:qual")
    assert find_bot_by_trigger([advanced], "Qual o PREÇO?") is advanced
    assert find_bot_by_trigger([advanced], "o preço") is None


def test_a_message_without_content_matches_equals_and_breaks_startswith() -> None:
    """Prisma drops an undefined filter (any `equals` bot matches); `undefined.startsWith` throws."""
    equals = bot("keyword", "equals", "menu")
    assert find_bot_by_trigger([equals], None) is equals
    with pytest.raises(JsTypeError, match="reading 'startsWith'"):
        find_bot_by_trigger([bot("keyword", "startsWith", "menu")], None)


def test_ignore_jids_groups_contacts_and_exact_jids() -> None:
    assert ignored(["@g.us"], "1203630@g.us") and not ignored(["@g.us"], "5511@s.whatsapp.net")
    assert ignored(["@s.whatsapp.net"], "5511@s.whatsapp.net")
    assert ignored(["5511@s.whatsapp.net"], "5511@s.whatsapp.net") and not ignored([], "5511@s.whatsapp.net")
