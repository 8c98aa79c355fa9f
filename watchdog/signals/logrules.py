"""Classify Evolution API and Dify log lines. Pure: text in, a rule name (or nothing) out.

Rule names are a public contract (metrics `watchdog_log_events_total{rule}` and alerts).
Each rule cites the upstream source that prints what it matches (Evolution API 2.3.6, Dify 1.12.1, Baileys
7.0.0-rc.6, gunicorn 23), with an example it must match and a near miss it must not; tests/data/log_corpus.txt
holds real upstream output. A line upstream never prints gets no rule: `message_processor_error` is gone
(2.3.x's message handler catches its own errors, baileysMessage.processor.ts never reaches those lines; a
dead processor is silent, and is found from inbound silence instead).
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
    formats: str  # who prints it, with the upstream source line (Evolution API 2.3.6, Dify 1.12.1)
    example: str
    near_miss: str
    # Lower-case literals, one of which is in every text the pattern matches (tests/unit/test_logkeywords.py
    # checks that against the pattern, the example and the corpus): a record naming none skips the regex,
    # one naming some searches only the alternatives that spell them (`gates`).
    keywords: tuple[str, ...]
    # The service the line is evidence about, whichever container printed it ("" = the printer itself):
    # Dify's answers printed by Evolution are Dify evidence.
    about: str = ""


def _r(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# Evolution's head up to the value: `ERROR [DifyService] [object]`, whatever the colour mode's spacing.
_DIFY_SERVICE_ERROR = r"ERROR\s+\[DifyService\]\s+\[\w+\]"
# What DifyService logs that is not Dify's answer: BaseChatbotService's own errors (base-chatbot.service.ts:
# 106,169,234,377), the Whisper step (dify.service.ts:60), and a reply that Baileys or Prisma failed to
# send or save (the WhatsApp and database rules take those).
_NOT_DIFYS_ANSWER = (
    r"(?!\s*(?:\[Dify\] Failed to transcribe|Error in process:|Error sending media:|Failed to create new|"
    r"Error: Connection (?:Closed|Terminated)|PrismaClient))"
)

# First match wins. Rules that read the head's context come first (Evolution's `[unhandledRejection]` and
# `[DifyService]` records dump request bodies, customers' text among them, that the content rules below
# would misread); a WhatsApp send or session write failing inside DifyService is left to the WhatsApp and
# database rules; Dify's answers are never `http_500` (a Dify 500 that Evolution printed is Dify's); the
# catch-all `error` is last. `dify_error` has two entries: Evolution's DifyService here, Dify's own 500s
# after the database and redis rules (a 500 from a lost database is `database_error`).
RULES: tuple[Rule, ...] = (
    Rule(
        "unhandled_rejection",
        _r(r"\[(?:unhandledRejection|uncaughtException)\]"),
        "Evolution config/error.config.ts:4-18, the process handlers' logger contexts",
        "ERROR [unhandledRejection] [object] { origin: Promise { <rejected> Error: send failed } }",
        "rejection handled",
        keywords=("[unhandledrejection]", "[uncaughtexception]"),
    ),
    Rule(
        "dify_stream_parse_error",
        _r(_DIFY_SERVICE_ERROR + r"\s*SyntaxError\b"),
        "Evolution dify.service.ts:316 logging the SyntaxError of JSON.parse on an agent app's stream",
        "ERROR [DifyService] [object]\nSyntaxError: Unexpected end of JSON input",
        "ERROR [DifyService] [object]\n{ code: 'invalid_param', message: 'SyntaxError', status: 400 }",
        keywords=("[difyservice]",),
        about="dify",
    ),
    Rule(
        "dify_error",
        _r(_DIFY_SERVICE_ERROR + _NOT_DIFYS_ANSWER),
        "Evolution dify.service.ts:316 (Dify's error body, or the call's error: `error.response?.data || "
        "error`) and :46 (`No Dify endpoint defined`)",
        "ERROR [DifyService] [object] { code: 'not_found', message: 'Conversation Not Exists.', status: 404 }",
        "INFO [DifyService] [string] sending message",
        keywords=("[difyservice]",),
        about="dify",
    ),
    Rule(
        "webhook_delivery_failed",
        _r(r"Tentativa \d+/\d+ falhou|Todas as tentativas falharam|Erro não recuperável"),
        "Evolution webhook.controller.ts:247 (a retry), :237 (a 4xx: no retry), :134/:184 (given up)",
        "message: 'Tentativa 3/10 falhou: connect ECONNREFUSED 127.0.0.1:8787',",
        "message: 'Aguardando 5.4 segundos antes da próxima tentativa',",
        keywords=("tentativa", "erro não recuperável"),
    ),
    Rule(
        "whatsapp_logged_out",
        _r(r'Instance "[^"]+" - LOGOUT|^(?=.*stream errored out)(?=.*(?:"code":\s*"?401\b|device_removed))'),
        # `REMOVED` (monitor.service.ts:367) is an operator deleting the instance: not a logout.
        "Evolution monitor.service.ts:386 (after Baileys reports loggedOut, whatsapp.baileys.service.ts:433, "
        "or /instance/logout); Baileys 7.0.0-rc.6 lib/Socket/socket.js:739 pino JSON with code 401",
        'Instance "loja" - LOGOUT',
        'Instance "loja" - REMOVED',
        keywords=('" - logout', "401", "device_removed"),
        about="whatsapp",
    ),
    Rule(
        "whatsapp_stream_error",
        _r(r"stream errored out"),
        "Baileys 7.0.0-rc.6 lib/Socket/socket.js:739 `logger.error({ node }, 'stream errored out')`, pino JSON "
        "(LOG_BAILEYS=error): 515 restart required, 503, conflict/replaced",
        '{"level":50,"msg":"stream errored out","node":{"tag":"stream:error","attrs":{"code":"515"}}}',
        '{"level":30,"msg":"connected to WA"}',
        keywords=("stream errored out",),
        about="whatsapp",
    ),
    Rule(
        "whatsapp_connection_closed",
        _r(r"Connection Closed|Instance \"[^\"]+\" - NOT CONNECTION|Connection Terminated"),
        "Baileys Boom errors `Connection Closed` (socket.js:50,86,243,472) and `Connection Terminated` "
        "(socket.js:648,650) in the errors Evolution logs; Evolution monitor.service.ts:407 `NOT CONNECTION`",
        "Error: Connection Closed",
        "Connection opened",
        keywords=("connection closed", '" - not connection', "connection terminated"),
        about="whatsapp",
    ),
    Rule(
        "redis_error",
        _r(r"redis disconnected|redis connect exception|redis\.exceptions\.|Error \d+ connecting to redis"),
        "Evolution cache/rediscache.client.ts:33,47; Dify redis-py exceptions in tracebacks",
        "redis.exceptions.ConnectionError: Error 111 connecting to redis:6379. Connection refused.",
        "redis connected",
        keywords=("redis",),
    ),
    Rule(
        "database_error",
        _r(
            r"\bP10\d\d\b|Can't reach database server|Migration failed|PrismaClient\w*Error|"
            r"psycopg2\.OperationalError|sqlalchemy\.exc\.OperationalError|server closed the connection unexpectedly"
        ),
        "Evolution: Prisma errors in logged objects, Docker/scripts/deploy_database.sh:17; Dify: "
        "SQLAlchemy/psycopg2 tracebacks, libpq's `server closed the connection unexpectedly`",
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
        "dify_plugin_daemon_error",
        _r(r"Failed to request plugin daemon|Request to Plugin Daemon Service failed|PluginDaemon\w*Error"),
        "Dify core/plugin/impl/base.py:88,237,241 (the daemon unreachable or failing, on every chat when it is "
        "gone; tracebacks follow), core/plugin/impl/exc.py error classes",
        "2026-12-01 00:22:25,983 ERROR [base.py:241] 738562e393 Failed to request plugin daemon, url: "
        "plugin/x/management/models",
        "2026-12-01 00:22:25,983 INFO [base.py:200] 738562e393 request plugin daemon",
        keywords=(
            "failed to request plugin daemon",
            "request to plugin daemon service failed",
            "plugindaemon",
        ),
        about="dify",
    ),
    Rule(
        "dify_app_error",
        _r(
            r"Unknown Error when workflow entry running|failed with ABORT strategy|node \S+ failed to run|"
            r"Request to URL \S+ failed on attempt|for URL \S+ which is in the force list|"
            r"Failed to process generate task pipeline"
        ),
        "Dify up, an app failing: core/workflow/workflow_entry.py:124, graph_engine/error_handler.py:101, "
        "nodes/base/node.py:357, nodes/http_request/node.py:137, core/helper/ssrf_proxy.py:194,201, "
        "core/app/apps/advanced_chat/app_generator.py:615 (blocking mode)",
        "2026-12-01 00:22:25,983 ERROR [workflow_entry.py:124] 738562e393 Unknown Error when workflow entry running",
        "2026-12-01 00:22:25,983 INFO [workflow_entry.py:80] 738562e393 workflow entry running",
        keywords=(
            "unknown error when workflow entry running",
            "failed with abort strategy",
            "failed to run",
            "failed on attempt",
            "in the force list",
            "failed to process generate task pipeline",
        ),
        about="dify",
    ),
    Rule(
        "dify_error",
        _r(r"Exception on /|(?-i:internal server error\.)"),
        "Dify's own 500s: flask app.py:875 `Exception on /...` (flask-restx logs every 5xx), "
        "controllers/service_api/app/completion.py:142,241 `internal server error.`",
        "2026-12-01 00:22:25.983 ERROR [Dummy-2] [app.py:875]  - Exception on /v1/chat-messages [POST]",
        "2026-12-01 00:22:25.983 INFO [Dummy-2] [app.py:875]  - Exception handled",
        keywords=("exception on /", "internal server error."),
        about="dify",
    ),
    Rule(
        "worker_timeout",
        _r(r"WORKER TIMEOUT|was sent SIGKILL|terminated due to signal 9"),
        "gunicorn in Dify's api container: arbiter.py:503 and :548-552 (gunicorn 23); `terminated due to "
        "signal 9` is gunicorn 20.x only (arbiter.py:531)",
        "[2024-07-24 06:33:40 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:35)",
        "[2024-07-24 06:33:41 +0000] [1] [INFO] Booting worker with pid: 39",
        keywords=("worker timeout", "was sent sigkill", "terminated due to signal 9"),
        about="dify",
    ),
    Rule(
        "http_500",
        # Not the bare words `Internal Server Error`: Dify's httpx logs them (INFO) for an app's HTTP node
        # whose target answered 500, which is the app's trouble (dify_app_error's lines follow), not Dify's.
        _r(r'"?status"?\s*:\s*500\b|Request failed with status code 50\d'),
        "Evolution main.ts:102 (the error event it logs when WEBHOOK_EVENTS_ERRORS and an ERRORS_WEBHOOK are "
        "set); axios `Request failed with status code 5xx` in the errors it logs for other HTTP calls",
        "{ event: 'error', data: { error: 'Internal Server Error', status: 500 } }",
        "{ status: 200, message: 'ok' }",
        keywords=("500", "status code 50"),
    ),
)
ERROR_RULE = "error"
ERROR_LEVELS = {"ERROR", "CRITICAL", "FATAL"}
# Levels upstream uses for routine output: Evolution's LOG/INFO/VERBOSE/DEBUG/DARK (webhook and websocket
# payload dumps print customers' text and Baileys' disconnect objects there), Dify's and gunicorn's INFO and
# DEBUG (httpx's `HTTP Request: ... 500 Internal Server Error` for an app's HTTP node). No rule reads them;
# every line a rule cites is printed at WARN(ING) or above, or without a level (tracebacks, scripts' echo).
ROUTINE_LEVELS = {"LOG", "INFO", "VERBOSE", "DEBUG", "DARK"}
RULE_NAMES = tuple(dict.fromkeys((*(r.name for r in RULES), ERROR_RULE)))
RULE_ABOUT = {r.name: r.about for r in RULES if r.about}  # rule -> the service its lines are evidence about
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
    rule = None if level in ROUTINE_LEVELS else first_rule(record)
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
        return m.groupdict().get("lvl") or "", None  # an access line has no level
    if head.startswith("{"):
        try:
            data = json.loads(head)
        except ValueError:
            return "", None
        if isinstance(
            data, dict
        ):  # Baileys' pino `level` (a number); Dify's LOG_OUTPUT_FORMAT=json `severity`
            level = data.get("level", data.get("severity"))
            if isinstance(level, int):
                return ("ERROR" if level >= 50 else "WARN" if level >= 40 else "INFO"), None
            if isinstance(level, str):
                return level.upper(), None
    if m := INSTANCE_IN_TEXT.search(head):
        return "", m["inst"]
    return "", None
