"""Classify Evolution API and Dify log lines. Pure: text in, a rule name (or nothing) out.

Rule names are a public contract (metrics `watchdog_log_events_total{rule}` and alerts).
Each rule lists the upstream formats it covers, an example it must match and a near miss it must not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
COMPOSE_PREFIX = re.compile(r"^[A-Za-z0-9][\w.-]*\s*\|\s?")
# Evolution's console logger; the product name varies in forks, `[instance]` and `v<version>` are optional.
EVOLUTION_HEAD = re.compile(
    r"^\[(?P<product>[^\]]+)\]\s+(?:\[(?P<inst>[^\]]+)\]\s+)?(?:v(?P<ver>[\d.]+)\s+)?(?P<pid>\d+)\s+-\s+"
    r"(?P<ts>\w{3} \w{3} \d{2} \d{4} \d\d:\d\d:\d\d)\s+(?P<lvl>LOG|INFO|WARN|ERROR|DEBUG|VERBOSE|DARK)\s+"
    r"\[(?P<ctx>[^\]]+)\]\s+\[(?P<type>\w+)\]\s*(?P<msg>.*)$"
)
DIFY_HEAD = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (?P<lvl>DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"\[(?P<thread>[^\]]+)\] \[(?P<where>[^:\]]+):\d+\] (?:[0-9a-f]{32} )?- (?P<msg>.*)$"
)
GUNICORN_HEAD = re.compile(
    r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[(?P<lvl>[A-Z]+)\] (?P<msg>.*)$"
)
INSTANCE_IN_TEXT = re.compile(r'Instance "(?P<inst>[^"]+)"')
MAX_LINE = 16 * 1024


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    formats: str
    example: str
    near_miss: str


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
    ),
    Rule(
        "whatsapp_stream_error",
        _r(r"stream errored out"),
        "Baileys pino JSON (515 restart required, 503, replaced/conflict)",
        '{"level":50,"msg":"stream errored out","node":{"tag":"stream:error","attrs":{"code":"515"}}}',
        '{"level":30,"msg":"connected to WA"}',
    ),
    Rule(
        "whatsapp_connection_closed",
        _r(
            r"Connection Closed|Instance \"[^\"]+\" - NOT CONNECTION|connection closed by remote|Connection Terminated"
        ),
        "Evolution text; Baileys errors",
        "Error: Connection Closed",
        "Connection opened",
    ),
    Rule(
        "unhandled_rejection",
        _r(
            r"\[(?:unhandledRejection|uncaughtException)\]|UnhandledPromiseRejection|Unhandled promise rejection"
        ),
        "Evolution process handlers",
        "[unhandledRejection] Error: send failed",
        "rejection handled",
    ),
    Rule(
        "message_processor_error",
        _r(r"Message stream error:|Error processing message batch:|Retrying message batch due to error:"),
        "Evolution message processor (dies until the container restarts)",
        "Message stream error: TypeError: Cannot read properties of undefined",
        "Message batch processed",
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
    ),
    Rule(
        "worker_timeout",
        _r(r"WORKER TIMEOUT|was sent SIGKILL|terminated due to signal 9"),
        "gunicorn in Dify's api container",
        "[2024-07-24 06:33:40 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:35)",
        "[2024-07-24 06:33:41 +0000] [1] [INFO] Booting worker with pid: 39",
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
    ),
    Rule(
        "http_500",
        _r(r'"?status"?\s*:\s*500\b|(?-i:\bInternal Server Error\b)|Request failed with status code 50\d'),
        "HTTP error envelopes printed in logs (Evolution, Dify)",
        '{"status":500,"error":"Internal Server Error","response":{"message":"Connection Closed"}}',
        '{"status":200,"message":"ok"}',
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
    ),
)
ERROR_RULE = "error"
ERROR_LEVELS = {"ERROR", "CRITICAL", "FATAL"}
RULE_NAMES = (*(r.name for r in RULES), ERROR_RULE)


@dataclass(frozen=True)
class Classified:
    rule: str | None  # None: a routine line
    level: str
    instance: str | None
    text: str  # the record, continuation lines joined with "\n", ANSI and compose prefix removed


def clean(line: str) -> str:
    line = ANSI.sub("", line[:MAX_LINE]).rstrip("\r\n")
    return COMPOSE_PREFIX.sub("", line, count=1) if COMPOSE_PREFIX.match(line) and "|" in line[:40] else line


def is_head(line: str) -> bool:
    """A line that starts a record; anything else continues the previous one (objects, tracebacks)."""
    return bool(
        EVOLUTION_HEAD.match(line)
        or DIFY_HEAD.match(line)
        or GUNICORN_HEAD.match(line)
        or (line.startswith("{") and line.rstrip().endswith("}") and len(line) > 2)  # one-line pino JSON
    )


def classify(record: str) -> Classified:
    """Classify one record (a head line plus its continuation lines, already cleaned)."""
    head = record.split("\n", 1)[0]
    level, instance = _level_and_instance(head)
    for rule in RULES:
        if rule.pattern.search(record):
            return Classified(rule.name, level, instance, record)
    return Classified(ERROR_RULE if level in ERROR_LEVELS else None, level, instance, record)


def _level_and_instance(head: str) -> tuple[str, str | None]:
    if m := EVOLUTION_HEAD.match(head):
        inst = m["inst"] or (i["inst"] if (i := INSTANCE_IN_TEXT.search(m["msg"])) else None)
        return m["lvl"], inst
    if m := DIFY_HEAD.match(head):
        return m["lvl"], None
    if m := GUNICORN_HEAD.match(head):
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


def records(lines: Iterable[str]) -> Iterator[str]:
    """Join continuation lines to their head line; yields each record when the next head starts."""
    assembler = RecordAssembler()
    for raw in lines:
        done = assembler.feed(raw)
        if done is not None:
            yield done
    last = assembler.flush()
    if last is not None:
        yield last


class RecordAssembler:
    """Incremental `records()`: feed lines as they stream in, flush when the stream goes idle."""

    def __init__(self, max_lines: int = 200, max_chars: int = 64 * 1024) -> None:
        # A record is classified on the event loop: its size bounds the time one record may take there
        # (a head line plus a stack trace or an object dump fit well inside both limits).
        self.max_lines = max_lines
        self.max_chars = max_chars
        self._current: list[str] = []
        self._chars = 0

    def feed(self, raw: str) -> str | None:
        """Returns the previous record when `raw` starts a new one."""
        line = clean(raw)
        if not line.strip() and not self._current:
            return None
        if self._current and not is_head(line):
            if len(self._current) < self.max_lines and self._chars + len(line) < self.max_chars:
                self._current.append(line)
                self._chars += len(line) + 1
            return None
        done = self.flush()
        self._current, self._chars = [line], len(line)
        return done

    def flush(self) -> str | None:
        if not self._current:
            return None
        record, self._current, self._chars = "\n".join(self._current), [], 0
        return record
