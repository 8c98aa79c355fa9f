"""Log classification against the corpus of real upstream records and each rule's example and near miss."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from watchdog.signals.logrules import RULE_ABOUT, RULE_NAMES, RULES, Rule, classify, clean, records

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
    "dify_app_error",
    "dify_plugin_daemon_error",
    "dify_stream_parse_error",
    "unhandled_rejection",
    "worker_timeout",
    "error",
}


def corpus(path: Path = CORPUS) -> list[tuple[str, list[str]]]:
    """(expected rule or 'none', the record's lines) per `### rule` block; `# ` lines are comments."""
    blocks: list[tuple[str, list[str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            continue
        if line.startswith("### "):
            blocks.append((line[4:], []))
        else:
            blocks[-1][1].append(line)
    return blocks


def evolution(level: str, context: str, text: str, instance: str = "") -> str:
    tag = f"[{instance}]" if instance else ""
    return f"[Evolution API] {tag} 1 - Tue Dec 01 2026 00:22:26   {level}  [{context}] [string] {text}"


def test_contract_rule_names_exist() -> None:
    assert set(RULE_NAMES) >= CONTRACT


def test_the_dead_processor_line_upstream_never_prints_has_no_rule() -> None:
    """baileysMessage.processor.ts's `Message stream error:` is unreachable in 2.3.x (the handler catches its
    own errors): the rule and its name are gone, and the line is an ordinary error line."""
    assert "message_processor_error" not in RULE_NAMES
    line = evolution("ERROR", "BaileysMessageProcessor", "Message stream error: TypeError: x", "loja")
    assert classify(line).rule == "error"


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_every_rule_cites_the_upstream_source_that_prints_it(rule: Rule) -> None:
    assert re.search(r"\w\.(?:ts|py|js|sh):\d+", rule.formats), rule.formats


def test_corpus_is_big_enough_and_covers_every_rule_and_routine_lines() -> None:
    blocks = corpus()
    assert sum(len(lines) for _, lines in blocks) >= 300
    assert {rule for rule, _ in blocks} == {*RULE_NAMES, "none"}
    assert sum(rule == "none" for rule, _ in blocks) >= 20


def test_corpus_as_one_stream_joins_continuations_and_classifies_each_record() -> None:
    blocks = corpus()
    stream = [line for _, lines in blocks for line in lines]
    got = [classify(record).rule or "none" for record in records(stream)]
    assert got == [rule for rule, _ in blocks]


def test_the_corpus_holds_no_key() -> None:
    text = CORPUS.read_text(encoding="utf-8")
    key = r"(?:api_?key|token|password)['\"]?\s*[:=]\s*['\"]?(?!<)[A-Za-z0-9-]{8,}"
    assert not re.search(rf"\bapp-[A-Za-z0-9]{{16,}}|{key}|Bearer (?!<)", text, re.IGNORECASE)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_each_rule_matches_its_example_and_not_its_near_miss(rule: Rule) -> None:
    assert rule.pattern.search(rule.example), rule.name
    assert not rule.pattern.search(rule.near_miss), rule.name


def test_each_dify_and_gunicorn_header_line_starts_a_record() -> None:
    """Six header lines of the issue's source-install example (no ` - `) read as six records, tracebacks
    attach to theirs, and the Docker format (trace id or none), gunicorn's and its access lines too."""
    at, req = "2026-12-01 00:22:25,412", "738562e393"
    lines = [
        f"{at} WARNING [ssrf_proxy.py:201] {req} Request to URL http://x/y failed on attempt 1: timed out",
        f"{at} WARNING [node.py:137] {req} http request node 17 failed to run: timed out",
        f"{at} ERROR [error_handler.py:101] {req} Node 17 failed with ABORT strategy: timed out",
        f"{at} ERROR [workflow_entry.py:124] {req} Unknown Error when workflow entry running",
        "Traceback (most recent call last):",
        "ValueError: timed out",
        "2026-12-01 00:22:26,5 INFO [ext_request_logging.py:73]  POST /v1/chat-messages 200 98.3 ",
        "2026-12-01 00:22:27.001 INFO [Dummy-2] [app_factory.py:69]  - Finished create_app (1.0 ms)",
        "2026-12-01 00:22:27.002 ERROR [Dummy-2] [base.py:241] "
        + "a" * 32
        + " - Failed to request plugin daemon",
        "[2026-12-01 00:22:28 +0000] [4012] [CRITICAL] WORKER TIMEOUT (pid:4013)",
        '127.0.0.1 - - [01/Dec/2026:00:22:29 +0000] "POST /v1/chat-messages HTTP/1.1" 200 1483 "-" "httpx"',
    ]
    got = [(classify(r).rule, classify(r).level, r.count("\n")) for r in records(lines)]
    assert got == [
        ("dify_app_error", "WARNING", 0),
        ("dify_app_error", "WARNING", 0),
        ("dify_app_error", "ERROR", 0),
        ("dify_app_error", "ERROR", 2),
        (None, "INFO", 0),
        (None, "INFO", 0),
        ("dify_plugin_daemon_error", "ERROR", 0),
        ("worker_timeout", "CRITICAL", 0),
        (None, "", 0),
    ]


def test_difys_errors_printed_by_evolution_are_dify_evidence_never_evolution_500s() -> None:
    """dify.service.ts:316 logs Dify's error body (util.inspect style, on the head line or the lines after):
    a 500 from Dify is Dify's, and so is a body Evolution could not parse."""
    head = "[Evolution API]    v2.3.6  1   -  Tue Dec 01 2026 00:22:26     ERROR   [DifyService]  [object]   "
    body = "{\n  code: 'internal_server_error',\n  message: 'Internal Server Error, please contact support.',"
    for record in (
        f"{head}\n{body}\n  status: 500\n}} \n",
        evolution(
            "ERROR", "DifyService", "{ code: 'unknown', message: 'Internal Server Error', status: 500 }"
        ),
    ):
        assert classify(record).rule == "dify_error"
    parse = f"{head}\nSyntaxError: Unexpected end of JSON input\n    at JSON.parse (<anonymous>)"
    assert classify(parse).rule == "dify_stream_parse_error"
    assert RULE_ABOUT["dify_error"] == RULE_ABOUT["dify_stream_parse_error"] == "dify"
    whisper = evolution("ERROR", "DifyService", "[Dify] Failed to transcribe audio: Error: 401")
    assert classify(whisper).rule == "error"  # OpenAI's transcription, not Dify's answer


def test_removed_is_an_operators_deletion_not_a_logout() -> None:
    removed = classify(evolution("WARN", "WAMonitoringService", 'Instance "vendas" - REMOVED'))
    assert (removed.rule, removed.instance) == (None, "vendas")
    logout = classify(evolution("WARN", "WAMonitoringService", 'Instance "vendas" - LOGOUT'))
    assert (logout.rule, logout.instance) == ("whatsapp_logged_out", "vendas")


def test_webhook_4xx_is_a_delivery_failure() -> None:
    record = (
        evolution("ERROR", "WebhookController", "").replace("[string] ", "[object] {")
        + "\n  message: 'Erro não recuperável (404): Request failed with status code 404. Cancelando "
        "retentativas.',\n  statusCode: 404\n}"
    )
    assert classify(record).rule == "webhook_delivery_failed"


def test_instance_and_level_are_read_from_the_head() -> None:
    result = classify(clean(evolution("WARN", "X", "hi", "loja")))
    assert (result.level, result.instance, result.rule) == ("WARN", "loja", None)
    colour = (
        "[Evolution API]  [loja]  v2.3.6-rc1  1   -  Tue Dec 01 2026 00:22:26     INFO   [X]  [string]  hi"
    )
    assert classify(colour)[1:3] == ("INFO", "loja")


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
