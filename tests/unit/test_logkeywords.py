"""The keyword prefilter never hides a match: every text a rule's pattern matches names one of its keywords,
and the fast classification answers exactly what trying every rule in order answers."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.signals.logrules import (
    ERROR_LEVELS,
    ERROR_RULE,
    FOLDS_TO_ASCII,
    GATES,
    ROUTINE_LEVELS,
    RULES,
    Classified,
    Rule,
    _level_and_instance,
    alternatives,
    classify,
    clean,
    first_rule,
    records,
)

CORPUS = Path(__file__).resolve().parents[1] / "data" / "log_corpus.txt"
LINES = [line for line in CORPUS.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
RECORDS = list(records(LINES))
FOLDING = "\u0130\u0131\u017f\u212a"


def slow_classify(record: str) -> Classified:
    """Classification as it was before the keywords: every rule's regex, in table order (none for records
    at a routine level)."""
    level, instance = _level_and_instance(record.split("\n", 1)[0])
    for rule in RULES:
        if level not in ROUTINE_LEVELS and rule.pattern.search(record):
            return Classified(rule.name, level, instance, record)
    return Classified(ERROR_RULE if level in ERROR_LEVELS else None, level, instance, record)


def names_a_keyword(rule: Rule, text: str) -> bool:
    low = text.lower()
    return any(keyword in low for keyword in rule.keywords)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_keywords_are_lower_case_and_named_by_the_example(rule: Rule) -> None:
    assert isinstance(rule.keywords, tuple) and rule.keywords
    assert all(len(k) >= 3 and k == k.lower() for k in rule.keywords)  # short ones would let all through
    assert rule.pattern.search(rule.example) and names_a_keyword(rule, rule.example)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_every_corpus_record_a_pattern_matches_names_its_keywords(rule: Rule) -> None:
    matched = [r for r in [*RECORDS, *LINES, rule.near_miss] if rule.pattern.search(r)]
    assert all(names_a_keyword(rule, r) for r in matched), rule.name


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_alternatives_split_each_pattern_at_its_top_level_bars(rule: Rule) -> None:
    parts = alternatives(rule.pattern.pattern)
    assert "|".join(parts) == rule.pattern.pattern
    assert all(re.compile(part) for part in parts)  # each is a whole regex on its own


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_texts_generated_from_each_alternative_pass_one_of_the_rules_gates(
    rule: Rule, data: st.DataObject
) -> None:
    """hypothesis writes texts an alternative of the pattern matches (any case, any surroundings): one of the
    rule's keywords must be named and its gate must match, unless the text holds a letter `lower()` does not
    fold (that text takes the slow path)."""
    alternative = re.compile(
        data.draw(st.sampled_from(alternatives(rule.pattern.pattern))), rule.pattern.flags
    )
    text = data.draw(st.from_regex(alternative))
    if alternative.search(text) and not FOLDS_TO_ASCII.search(text):
        assert names_a_keyword(rule, text), (rule.name, text)
        low = text.lower()
        assert any(k in low and gate.search(text) for k, gate, name in GATES if name == rule.name), text


def test_folds_to_ascii_lists_every_letter_ignorecase_matches_to_ascii_letters() -> None:
    ascii_letter = re.compile("|".join("abcdefghijklmnopqrstuvwxyz"), re.IGNORECASE)
    folding = {chr(c) for c in range(128, sys.maxunicode + 1) if ascii_letter.fullmatch(chr(c))}
    assert folding == set(FOLDING)
    assert all(FOLDS_TO_ASCII.search(c) for c in folding)


def test_corpus_records_classify_exactly_as_before() -> None:
    assert [classify(r) for r in RECORDS] == [slow_classify(r) for r in RECORDS]


pieces = st.sampled_from([*LINES, *(r.example for r in RULES), *(r.near_miss for r in RULES)])
variation = st.tuples(
    pieces,
    st.integers(0, 400),
    st.integers(0, 400),
    st.sampled_from([str.lower, str.upper, str.swapcase, str]),
    st.text(alphabet=st.sampled_from([*FOLDING, "é", "ß", "\n", " ", '"', "[", "]", ":"]), max_size=3),
    pieces,
)


@settings(max_examples=400, deadline=None)
@given(parts=st.lists(variation, min_size=1, max_size=3))
def test_generated_variations_classify_exactly_as_before(parts: list[tuple]) -> None:  # type: ignore[type-arg]
    """Corpus lines cut, re-cased, joined and salted with letters that fold: same answer as the slow path."""
    text = "".join(case(a[i:j]) + salt + b[:j] for a, i, j, case, salt, b in parts)
    record = "\n".join(clean(line) for line in text.split("\n"))
    assert classify(record) == slow_classify(record)
    assert first_rule(record) == next((r.name for r in RULES if r.pattern.search(record)), None)
