"""Log lines to records: strip colours and compose prefixes, join continuation lines to their head line.
Pure, and run on every line a followed container writes, so every check here is cheap first."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
COMPOSE_PREFIX = re.compile(r"^[A-Za-z0-9][\w.-]*\s*\|\s?")
# Evolution's console logger (src/config/logger.config.ts, 2.3.6): `[Evolution API] [instance] pid - date
# LEVEL [context] [typeof] value`; the colour mode adds `v<version>` and spaces, the `[instance]` tag is there
# only for loggers an instance owns. The product name varies in forks.
EVOLUTION_HEAD = re.compile(
    r"^\[(?P<product>[^\]]+)\]\s+(?:\[(?P<inst>[^\]]+)\]\s+)?(?:v(?P<ver>\d[\w.-]*)\s+)?(?P<pid>\d+)\s+-\s+"
    r"(?P<ts>\w{3} \w{3} \d{2} \d{4} \d\d:\d\d:\d\d)\s+(?P<lvl>LOG|INFO|WARN|ERROR|DEBUG|VERBOSE|DARK)\s+"
    r"\[(?P<ctx>[^\]]+)\]\s+\[(?P<type>\w+)\]\s*(?P<msg>.*)$"
)
# Dify 1.12.1's default LOG_FORMAT (api/configs/feature/__init__.py, LoggingConfig; Docker deployments keep
# it, with docker-compose's LOG_DATEFORMAT `%Y-%m-%d %H:%M:%S`): `%(asctime)s.%(msecs)03d %(levelname)s
# [%(threadName)s] [%(filename)s:%(lineno)d] %(trace_id)s - %(message)s`, the trace id 32 hex or empty (then
# two spaces before `-`). Also read: no LOG_DATEFORMAT (`,msecs` in asctime) and the pre-trace-id `] - `.
DIFY_HEAD = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:,\d{3})?\.\d{3}) (?P<lvl>DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"\[(?P<thread>[^\]]*)\] \[(?P<where>[^:\]]+):\d+\] +(?:(?P<trace>[0-9a-f]{32}) +)?- (?P<msg>.*)$"
)
# A source install copying api/.env.example: `%(asctime)s,%(msecs)d %(levelname)-2s [%(filename)s:%(lineno)d]
# %(req_id)s %(message)s`, the request id 10 hex or empty (core/logging/context.py), no ` - `.
DIFY_SOURCE_HEAD = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:,\d{1,3})+) (?P<lvl>DEBUG|INFO|WARNING|ERROR|CRITICAL) "
    r"\[(?P<where>[^:\]]+):\d+\] (?:(?P<req>[0-9a-f]{10}) | )(?P<msg>.*)$"
)
# gunicorn 23 (Dify's api server): its own log (glogging.py error_fmt, datefmt `[%Y-%m-%d %H:%M:%S %z]`) and,
# with `--access-logfile -`, the default access_log_format `%(h)s %(l)s %(u)s %(t)s "%(r)s" ...`.
GUNICORN_HEAD = re.compile(
    r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[(?P<lvl>[A-Z]+)\] (?P<msg>.*)$"
)
GUNICORN_ACCESS = re.compile(
    r'^(?P<addr>[^\s\[]+) \S+ \S+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "(?P<msg>.*)$'
)
MAX_LINE = 16 * 1024


def clean(line: str) -> str:
    line = line[:MAX_LINE]
    if "\x1b" in line:  # it runs on every line: skip the regexes that cannot apply
        line = ANSI.sub("", line)
    line = line.rstrip("\r\n")
    return COMPOSE_PREFIX.sub("", line, count=1) if "|" in line[:40] and COMPOSE_PREFIX.match(line) else line


@functools.lru_cache(maxsize=16)
def head_match(line: str) -> re.Match[str] | None:
    """The Evolution, Dify or gunicorn head regex that matches, tried by the line's first character.
    Cached: `classify` reads the level from the head line that `is_head` has just matched."""
    first = line[:1]
    if first == "[":
        return EVOLUTION_HEAD.match(line) or GUNICORN_HEAD.match(line)
    if first == "{" or first.isspace() or not first:
        return None
    if first.isdigit():
        return DIFY_HEAD.match(line) or DIFY_SOURCE_HEAD.match(line) or GUNICORN_ACCESS.match(line)
    return GUNICORN_ACCESS.match(line)


def is_head(line: str) -> bool:
    """A line that starts a record; anything else continues the previous one (objects, tracebacks)."""
    return bool(
        head_match(line)
        # one-line JSON (Baileys' pino, Dify's LOG_OUTPUT_FORMAT=json); Evolution's util.inspect objects
        # (`{ key: 'value' }` or `{` alone) continue the head line before them
        or (line.startswith('{"') and line.rstrip().endswith("}"))
    )


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
