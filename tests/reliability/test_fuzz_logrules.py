"""Generated log lines for the classifier: it never raises, names only public rules, and its time per
line is bounded (linear): it runs on the event loop, so a slow line delays webhooks and probes.

Found by this test: `X.*Y` rules (`[DifyService].*ERROR`, `[Webhook].*error`, `[Redis].*ERROR`) were
quadratic; a 16 KiB line of repeated `[DifyService]` took ~0.4 s, a 200-line record over a minute.
"""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.signals.logrules import MAX_LINE, RULE_NAMES, _then, classify, clean, records

# Fragments of real upstream lines, so generated lines reach deep into the rules, not only the catch-all.
FRAGMENTS = [
    "[Evolution API] [loja] v2.3.0 123 - Tue Oct 21 2025 08:40:39 ",
    "ERROR ",
    "[DifyService] ",
    "[Webhook] ",
    "[WebhookController] ",
    "[Redis] ",
    "[string] ",
    "stream errored out",
    '"code":"401"',
    'Instance "loja" - ',
    "LOGOUT",
    "2024-07-24 06:33:40.123 ERROR [Dummy-1] [app.py:12] - ",
    "[2024-07-24 06:33:40 +0000] [1] [CRITICAL] ",
    "WORKER TIMEOUT",
    '{"level":50,"msg":"',
    '"}',
    "Conversation Not Exists",
    "Tentativa 3/10 falhou",
    "\x1b[31m",
    "\x1b[0m",
    "api-1  | ",
    "status: 500",
    "\n",
    "\t",
]
lines = st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=40), max_size=12).map("".join)


def check(batch: list[str]) -> None:
    for line in batch:
        result = classify(clean(line))
        assert result.rule is None or result.rule in RULE_NAMES
    for record in records(batch):
        assert classify(record).rule in (None, *RULE_NAMES)


@settings(max_examples=300, deadline=None)
@given(batch=st.lists(lines, max_size=5))
def test_generated_lines_never_raise_and_name_only_public_rules(batch: list[str]) -> None:
    check(batch)


@pytest.mark.fuzz
@settings(max_examples=5000, deadline=None)
@given(batch=st.lists(lines, min_size=3, max_size=5))
def test_five_thousand_generated_batches_of_lines(batch: list[str]) -> None:
    """5,000 batches of 3-5 lines, each line alone and the batch as records."""
    check(batch)


pairs = [
    (r"\[DifyService\]", "ERROR"),
    ("ERROR", r"\[DifyService\]"),
    (r"\[Webhook(?:Controller)?\]", "ERROR|error"),
    (r"\[Redis\]", "ERROR"),
]


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from([*FRAGMENTS, "x", " "]), max_size=20).map("".join))
def test_linear_form_matches_exactly_what_first_dot_star_later_matched(text: str) -> None:
    """The rewrite of `first.*later` changes the cost, never the answer."""
    for first, later in pairs:
        slow = re.search(f"(?:{first}).*(?:{later})", text, re.IGNORECASE) is not None
        fast = re.search(_then(first, later), text, re.IGNORECASE) is not None
        assert slow == fast, (first, later, text)


def test_adversarial_lines_take_linear_time() -> None:
    """A 200-line record of 16 KiB lines each repeating a rule's first token (never its second) classifies
    in about a second here; the quadratic rules needed over a minute. The bound is generous on purpose."""
    tokens = ["[DifyService]", "[Webhook]", "[Redis]", "ERROR "]
    body = [(tokens[i % 4] * (MAX_LINE // len(tokens[i % 4])))[:MAX_LINE] for i in range(199)]
    record = "\n".join(["[Evolution API] 1 - Tue Oct 21 2025 08:40:39 LOG [X] [string] start", *body])
    started = time.monotonic()
    result = classify(record)
    took = time.monotonic() - started
    assert result.rule in (None, *RULE_NAMES)
    assert took < 20, f"classify took {took:.1f}s for one record"
