"""Log lines to records: strip colours and compose prefixes, join continuation lines to their head line.
Pure, and run on every line a followed container writes, so every check here is cheap first."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator

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
    if first == "{" or not first:
        return None
    return DIFY_HEAD.match(line)


def is_head(line: str) -> bool:
    """A line that starts a record; anything else continues the previous one (objects, tracebacks)."""
    return bool(
        head_match(line)
        or (line.startswith("{") and line.rstrip().endswith("}") and len(line) > 2)  # one-line pino JSON
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
