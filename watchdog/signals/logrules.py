"""Classify Evolution API and Dify log lines. Pure: text in, a rule name (or nothing) out.

Rule names are a public contract (metrics `watchdog_log_events_total{rule}` and alerts).
Each rule lists the upstream formats it covers, an example it must match and a near miss it must not.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import NamedTuple

from watchdog.signals.logrecords import (
    EVOLUTION_HEAD,
    MAX_LINE,
    RecordAssembler,
    clean,
    head_match,
    is_head,
    records,
)

# Record assembly lives in logrecords; importers of these names from here keep working.
__all__ = ["MAX_LINE", "RecordAssembler", "clean", "is_head", "records"]

INSTANCE_IN_TEXT = re.compile(r'Instance "(?P<inst>[^"]+)"')


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    formats: str
    example: str
    near_miss: str
    # Lower-case literals, one of which is in every text the pattern matches (tests/unit/test_logkeywords.py
    # checks that against the pattern, the example and the corpus): a record naming none skips the regex,
    # one naming some searches only the alternatives that spell them (`gates`).
    keywords: tuple[str, ...]


def _r(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _then(first: str, later: str) -> str:
    """`first.*later` on one line in linear time: a plain `first.*later` rescans the rest of the line
    from every `first` it finds (quadratic: a 16 KiB line of `[DifyService]` took ~0.4 s on the event
    loop); here only the line's first `first` is tried, which is enough."""
    return rf"(?m:^)(?>[^\n]*?(?:{first}))[^\n]*(?:{later})"


# First match wins: specific rules before the catch-all `error`.
RULES: tuple[Rule, ...] = (
    Rule(
        "whatsapp_logged_out",
        _r(
            r'Instance "[^"]+" - (?:LOGOUT|REMOVED)|^(?=.*stream errored out)(?=.*(?:"code":\s*"?401\b|device_removed))'
        ),
        "Evolution text; Baileys pino JSON",
        'Instance "loja" - LOGOUT',
        'Instance "loja" - CONNECTED',
        keywords=('" - logout', '" - removed', "401", "device_removed"),
    ),
    Rule(
        "whatsapp_stream_error",
        _r(r"stream errored out"),
        "Baileys pino JSON (515 restart required, 503, replaced/conflict)",
        '{"level":50,"msg":"stream errored out","node":{"tag":"stream:error","attrs":{"code":"515"}}}',
        '{"level":30,"msg":"connected to WA"}',
        keywords=("stream errored out",),
    ),
    Rule(
        "whatsapp_connection_closed",
        _r(
            r"Connection Closed|Instance \"[^\"]+\" - NOT CONNECTION|connection closed by remote|Connection Terminated"
        ),
        "Evolution text; Baileys errors",
        "Error: Connection Closed",
        "Connection opened",
        keywords=("connection closed", '" - not connection', "connection terminated"),
    ),
    Rule(
        "unhandled_rejection",
        _r(
            r"\[(?:unhandledRejection|uncaughtException)\]|UnhandledPromiseRejection|Unhandled promise rejection"
        ),
        "Evolution process handlers",
        "[unhandledRejection] Error: send failed",
        "rejection handled",
        keywords=("unhandled", "[uncaughtexception]"),
    ),
    Rule(
        "message_processor_error",
        _r(r"Message stream error:|Error processing message batch:|Retrying message batch due to error:"),
        "Evolution message processor (dies until the container restarts)",
        "Message stream error: TypeError: Cannot read properties of undefined",
        "Message batch processed",
        keywords=("message stream error:", "message batch"),
    ),
    Rule(
        "webhook_delivery_failed",
        _r(
            r"Tentativa \d+/\d+ falhou|Todas as tentativas falharam|"
            + _then(r"\[Webhook(?:Controller)?\]", "ERROR|error")
        ),
        "Evolution webhook retries (Portuguese upstream strings)",
        "Tentativa 3/10 falhou: connect ECONNREFUSED 127.0.0.1:8787",
        "Tentativa de envio agendada",
        keywords=("tentativa", "[webhook"),
    ),
    Rule(
        "redis_error",
        _r(
            r"redis disconnected|redis\.exceptions\.|Error \d+ connecting to redis|ECONNREFUSED \S+:6379|"
            + _then(r"\[Redis\]", "ERROR")
        ),
        "Evolution [Redis] lines; Dify redis-py tracebacks",
        "redis.exceptions.ConnectionError: Error 111 connecting to redis:6379. Connection refused.",
        "redis connected",
        keywords=("redis", "econnrefused"),
    ),
    Rule(
        "database_error",
        _r(
            r"\bP10\d\d\b|Can't reach database server|Migration failed|PrismaClient\w*Error|"
            r"psycopg2\.OperationalError|sqlalchemy\.exc\.OperationalError|server closed the connection unexpectedly"
        ),
        "Evolution Prisma; Dify SQLAlchemy/psycopg2",
        "PrismaClientInitializationError: Can't reach database server at `postgres:5432`",
        "database migrated",
        keywords=(
            "p10",
            "can't reach database server",
            "migration failed",
            "prismaclient",
            "operationalerror",
            "server closed the connection unexpectedly",
        ),
    ),
    Rule(
        "worker_timeout",
        _r(r"WORKER TIMEOUT|was sent SIGKILL|terminated due to signal 9"),
        "gunicorn in Dify's api container",
        "[2024-07-24 06:33:40 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:35)",
        "[2024-07-24 06:33:41 +0000] [1] [INFO] Booting worker with pid: 39",
        keywords=("worker timeout", "was sent sigkill", "terminated due to signal 9"),
    ),
    Rule(
        "dify_stream_parse_error",
        _r(
            r"Error parsing (?:SSE|stream)|"
            + _then(r"\[DifyService\]", r"Unexpected (?:token|end of JSON)|SyntaxError|JSON\.parse")
        ),
        "Evolution DifyService reading an agent stream",
        "ERROR [DifyService] [string] SyntaxError: Unexpected end of JSON input",
        "INFO [DifyService] [string] stream finished",
        keywords=(
            "error parsing ",
            "unexpected ",
            "syntaxerror",
            "json.parse",
        ),
    ),
    Rule(
        "http_500",
        _r(r'"?status"?\s*:\s*500\b|(?-i:\bInternal Server Error\b)|Request failed with status code 50\d'),
        "HTTP error envelopes printed in logs (Evolution, Dify)",
        '{"status":500,"error":"Internal Server Error","response":{"message":"Connection Closed"}}',
        '{"status":200,"message":"ok"}',
        keywords=("500", "status code 50", "internal server error"),
    ),
    Rule(
        "dify_error",
        _r(
            _then(r"\[DifyService\]", "ERROR")
            + "|"
            + _then("ERROR", r"\[DifyService\]")
            + r"|No Dify endpoint defined|Conversation Not Exists|"
            r"Exception on /v1/|internal server error\.|PluginDaemon\w*|PluginInvokeError|Run failed:|"
            r"completion_request_error|provider_not_initialize|provider_quota_exceeded|Too many requests"
        ),
        "Evolution DifyService errors; Dify api/worker errors",
        'ERROR [DifyService] [object] {"code":"not_found","message":"Conversation Not Exists.","status":404}',
        "INFO [DifyService] [string] sending message",
        keywords=(
            "[difyservice]",
            "no dify endpoint defined",
            "conversation not exists",
            "exception on /v1/",
            "internal server error.",
            "plugindaemon",
            "plugininvokeerror",
            "run failed:",
            "completion_request_error",
            "provider_not_initialize",
            "provider_quota_exceeded",
            "too many requests",
        ),
    ),
)
ERROR_RULE = "error"
ERROR_LEVELS = {"ERROR", "CRITICAL", "FATAL"}
RULE_NAMES = (*(r.name for r in RULES), ERROR_RULE)
# The only non-ASCII letters that re.IGNORECASE matches to ASCII letters (i, s, k) where `str.lower()`
# does not turn them into those letters; tests/unit/test_logkeywords.py checks the list over all of Unicode.
FOLDS_TO_ASCII = re.compile("[\u0130\u0131\u017f\u212a]")


def alternatives(source: str) -> list[str]:
    """A pattern's top-level alternatives (`a|b|c`), split outside groups, classes and escapes."""
    parts: list[str] = []
    current: list[str] = []
    depth, in_class, escaped = 0, False, False
    for ch in source:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch in "([":
            depth, in_class = depth + (ch == "("), ch == "["
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    return [*parts, "".join(current)]


def gates(rule: Rule) -> list[tuple[str, re.Pattern[str]]]:
    """Per keyword, what to search when a record names it: the alternatives of the pattern that spell the
    keyword plus those spelling none (the whole pattern if none spells it). Searching `a|b` is searching
    `a` or `b`, and one alternative costs a fraction of all; the tests check no match is lost."""
    alts = alternatives(rule.pattern.pattern)
    spelled = [re.sub(r"\\(.)", r"\1", alt).lower() for alt in alts]
    unnamed = [
        alt for alt, text in zip(alts, spelled, strict=True) if not any(k in text for k in rule.keywords)
    ]
    found = []
    for keyword in rule.keywords:
        mine = [alt for alt, text in zip(alts, spelled, strict=True) if keyword in text]
        found.append(
            (keyword, re.compile("|".join(mine + unnamed), rule.pattern.flags) if mine else rule.pattern)
        )
    return found


GATES = tuple((keyword, gate, rule.name) for rule in RULES for keyword, gate in gates(rule))  # table order


class Classified(NamedTuple):  # a tuple: built once per record, twice as fast as a frozen dataclass
    rule: str | None  # None: a routine line
    level: str
    instance: str | None
    text: str  # the record, continuation lines joined with "\n", ANSI and compose prefix removed


def classify(record: str) -> Classified:
    """Classify one record (a head line plus its continuation lines, already cleaned)."""
    level, instance = _level_and_instance(record.partition("\n")[0])
    rule = first_rule(record)
    if rule is None and level in ERROR_LEVELS:
        rule = ERROR_RULE
    return Classified(rule, level, instance, record)


def first_rule(record: str) -> str | None:
    """The first rule whose pattern matches, trying only those whose keywords the record names: a plain
    `in` on the lowered text, exact for the patterns' case-insensitive literals unless the text holds one
    of the non-ASCII letters they fold to ASCII (then every rule is tried, as before the keywords)."""
    if record.isascii() or not FOLDS_TO_ASCII.search(record):
        low = record.lower()
        for keyword, gate, name in GATES:
            if keyword in low and gate.search(record):
                return name
        return None
    return next((rule.name for rule in RULES if rule.pattern.search(record)), None)


def _level_and_instance(head: str) -> tuple[str, str | None]:
    if m := head_match(head):
        if m.re is EVOLUTION_HEAD:
            inst = m["inst"] or (i["inst"] if (i := INSTANCE_IN_TEXT.search(m["msg"])) else None)
            return m["lvl"], inst
        return m["lvl"], None
    if head.startswith("{"):
        try:
            data = json.loads(head)
        except ValueError:
            return "", None
        if isinstance(data, dict):
            level = data.get("level")
            if isinstance(level, int):
                return ("ERROR" if level >= 50 else "WARN" if level >= 40 else "INFO"), None
            if isinstance(level, str):
                return level.upper(), None
    if m := INSTANCE_IN_TEXT.search(head):
        return "", m["inst"]
    return "", None
