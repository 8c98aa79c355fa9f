"""Generated log lines for the classifier: it never raises, names only public rules, and its time per
line is bounded (linear): it runs on the event loop, so a slow line delays webhooks and probes.

Found by this test: `X.*Y` rules (`[DifyService].*ERROR`, `[Webhook].*error`, `[Redis].*ERROR`) were
quadratic; a 16 KiB line of repeated `[DifyService]` took ~0.4 s, a 200-line record over a minute. The rules
now match fixed text (`ERROR [DifyService] [object]`, `Request to URL <token> failed on attempt`) with no
`.*` between two parts.
"""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from watchdog.signals.logrules import MAX_LINE, RULE_NAMES, RULES, classify, clean, records

# Fragments of real upstream lines, so generated lines reach deep into the rules, not only the catch-all.
FRAGMENTS = [
    "[Evolution API] [loja] 123 - Tue Dec 01 2026 00:22:26   ",
    "[Evolution API]    v2.3.6  1   -  Tue Dec 01 2026 00:22:26     ",
    "ERROR ",
    "WARN ",
    "[DifyService] ",
    "[WebhookController] ",
    "[WAMonitoringService] ",
    "[unhandledRejection] ",
    "[Redis] ",
    "[string] ",
    "[object] ",
    "{\n",
    "  code: 'internal_server_error',\n",
    "  status: 500\n}",
    "SyntaxError: Unexpected end of JSON input",
    "stream errored out",
    '"code":"401"',
    'Instance "loja" - ',
    "LOGOUT",
    "REMOVED",
    "2026-12-01 00:22:25.983 ERROR [Dummy-2] [workflow_entry.py:124]  - ",
    "2026-12-01 00:22:25,983 WARNING [ssrf_proxy.py:201] 738562e393 ",
    "Request to URL ",
    "http://127.0.0.1:18083/x",
    " failed on attempt 1",
    "http request node 17 failed to run",
    "Failed to request plugin daemon",
    "Unknown Error when workflow entry running",
    "[2026-12-01 00:22:25 +0000] [1] [CRITICAL] ",
    '127.0.0.1 - - [01/Dec/2026:00:22:29 +0000] "POST /v1/chat-messages HTTP/1.1" 200',
    "WORKER TIMEOUT",
    '{"level":50,"msg":"',
    '"}',
    "Conversation Not Exists",
    "Tentativa 3/10 falhou",
    "Erro não recuperável (404)",
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


def test_adversarial_lines_take_linear_time() -> None:
    """A 200-line record of 16 KiB lines each repeating a rule's first token (never its second) classifies
    in about a second here; the quadratic rules needed over a minute. The bound is generous on purpose."""
    tokens = ["[DifyService]", "ERROR [DifyService] ", "Request to URL x", "node x", 'Instance "', "ERROR "]
    body = [
        (tokens[i % len(tokens)] * (MAX_LINE // len(tokens[i % len(tokens)])))[:MAX_LINE] for i in range(199)
    ]
    record = "\n".join(["[Evolution API] 1 - Tue Dec 01 2026 00:22:26 LOG [X] [string] start", *body])
    started = time.monotonic()
    result = classify(record)
    took = time.monotonic() - started
    assert result.rule in (None, *RULE_NAMES)
    assert took < 20, f"classify took {took:.1f}s for one record"


def test_no_rule_scans_a_line_twice_from_each_start() -> None:
    """The `.*` between two parts of a pattern was what made rules quadratic: none has one now."""
    assert not [rule.name for rule in RULES if ".*" in rule.pattern.pattern.replace("(?=.*", "")]
