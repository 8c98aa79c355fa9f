"""Log classification against a corpus of upstream-format records and each rule's example and near miss."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchdog.signals.logrules import RULE_NAMES, RULES, classify, clean, records

CORPUS = Path(__file__).resolve().parents[1] / "data" / "log_corpus.txt"
CONTRACT = {
    "http_500",
    "redis_error",
    "database_error",
    "whatsapp_stream_error",
    "whatsapp_logged_out",
    "whatsapp_connection_closed",
    "webhook_delivery_failed",
    "dify_error",
    "dify_stream_parse_error",
    "unhandled_rejection",
    "worker_timeout",
    "error",
}


def corpus() -> list[tuple[str, list[str]]]:
    blocks: list[tuple[str, list[str]]] = []
    for line in CORPUS.read_text().splitlines():
        if line.startswith("# "):
            continue
        if line.startswith("### "):
            blocks.append((line[4:], []))
        else:
            blocks[-1][1].append(line)
    return blocks


def test_contract_rule_names_exist() -> None:
    assert set(RULE_NAMES) >= CONTRACT


def test_corpus_is_big_enough_and_covers_every_rule() -> None:
    blocks = corpus()
    assert sum(len(lines) for _, lines in blocks) >= 60
    assert {rule for rule, _ in blocks} >= set(RULE_NAMES)


def test_corpus_as_one_stream_joins_continuations_and_classifies_each_record() -> None:
    blocks = corpus()
    stream = [line for _, lines in blocks for line in lines]
    got = [classify(record).rule or "none" for record in records(stream)]
    assert got == [rule for rule, _ in blocks]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_each_rule_matches_its_example_and_not_its_near_miss(rule) -> None:  # type: ignore[no-untyped-def]
    assert rule.pattern.search(rule.example), rule.name
    assert not rule.pattern.search(rule.near_miss), rule.name


def test_instance_and_level_are_read_from_the_head() -> None:
    result = classify(
        clean("[Evolution API] [loja]  1  -  Tue Oct 21 2025 11:41:02   WARN     [X]  [string] hi")
    )
    assert (result.level, result.instance, result.rule) == ("WARN", "loja", None)
    logout = classify(
        '[Evolution API]  1  -  Tue Oct 21 2025 11:41:02   WARN     [X]  [string] Instance "vendas" - LOGOUT'
    )
    assert logout.instance == "vendas" and logout.rule == "whatsapp_logged_out"


def test_ansi_and_compose_prefix_are_removed() -> None:
    assert clean("evolution_api  | \x1b[31mERROR\x1b[0m x") == "ERROR x"
    assert clean("plain line") == "plain line"


def test_long_lines_are_cut_and_runaway_continuations_bounded() -> None:
    assert len(clean("x" * 100_000)) == 16 * 1024
    head = "[Evolution API]  1  -  Tue Oct 21 2025 11:41:02   ERROR    [X]  [object]"
    joined = list(records([head, *(f"  line {i}" for i in range(1000))]))
    assert len(joined) == 1 and joined[0].count("\n") == 199
    wide = list(records([head, *("y" * 16_000 for _ in range(199)), head, "  after"]))
    assert len(wide) == 2 and len(wide[0]) < 64 * 1024  # a record's size is bounded in bytes too
    assert wide[1] == head + "\n  after"  # and the next record is whole
