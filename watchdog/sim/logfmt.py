"""Log lines in the real upstreams' formats, so the log rules see from the emulators what they see from
Evolution API 2.3.6 and Dify 1.12.1 (tests/data/log_corpus.txt holds the real servers' output)."""

from __future__ import annotations

import os
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TextIO

from watchdog.sim.jsinspect import inspect

# Evolution's Dockerfile sets TZ=America/Sao_Paulo; its console logger prints local time.
SAO_PAULO = timezone(timedelta(hours=-3))
UTC_TZ = UTC
_EVOLUTION_LEVELS = {"LOG", "INFO", "WARN", "ERROR", "DEBUG", "VERBOSE", "DARK"}
_DIFY_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
# src/config/logger.config.ts: Color, Background and Command.
_COLOR = {
    "LOG": "\x1b[32m",
    "INFO": "\x1b[34m",
    "WARN": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "DEBUG": "\x1b[36m",
    "VERBOSE": "\x1b[37m",
    "DARK": "\x1b[30m",
}
_BACKGROUND = {
    "LOG": "\x1b[42m",
    "INFO": "\x1b[44m",
    "WARN": "\x1b[43m",
    "DARK": "\x1b[40m",
    "ERROR": "\x1b[41m",
    "DEBUG": "\x1b[46m",
    "VERBOSE": "\x1b[47m",
}
RESET, BRIGHT = "\x1b[0m", "\x1b[1m"
DIFY_FORMATS = ("docker", "source")


def js_typeof(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "object"  # dicts, lists and None (typeof null is "object")


class SimLog:
    """Writes upstream-shaped lines to a stream (stdout by default), one write per record.

    `dify_format`: "docker" (Dify's default LOG_FORMAT, what its Docker deployments print) or "source"
    (the LOG_FORMAT of api/.env.example, what a source install prints)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        product: str = "Evolution API",
        version: str = "2.3.6",
        color: bool = False,
        pid: int | None = None,
        dify_format: str = "docker",
    ) -> None:
        if dify_format not in DIFY_FORMATS:
            raise ValueError(f"dify_format must be one of {DIFY_FORMATS}")
        self.stream = stream if stream is not None else sys.stdout
        self.product = product
        self.version = version
        self.color = color
        self.pid = pid if pid is not None else os.getpid()
        self.dify_format = dify_format
        self._lock = threading.Lock()

    def _write(self, text: str) -> None:
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()

    def evolution(
        self,
        level: str,
        context: str,
        message: Any,
        *,
        instance: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """`Logger.console` of src/config/logger.config.ts: `console.log` of its parts, joined by spaces.

        Without colour an object follows the head on the same line (util.inspect); with colour it is
        printed by a second `console.log(value, '\\n')` on the lines after the head."""
        if level not in _EVOLUTION_LEVELS:
            raise ValueError(f"unknown Evolution log level {level}")
        date = (now or datetime.now(SAO_PAULO)).astimezone(SAO_PAULO).strftime("%a %b %d %Y %H:%M:%S")
        kind = js_typeof(message)
        value = message if isinstance(message, str) else inspect(message)
        tag = f"[{instance}]" if instance else ""
        if not self.color:
            parts = [f"[{self.product}]", tag, str(self.pid), "-", f"{date}  ", f"{level} "]
            self._write(" ".join([*parts, f"[{context}]", f"[{kind}]", value]))
            return
        color = BRIGHT + _COLOR[level]
        parts = [
            f"{color}[{self.product}]{RESET}",  # the format string's `%s`
            color,
            tag,
            color,
            f"v{self.version}",
            color,
            str(self.pid),
            RESET,
            color,
            "-",
            BRIGHT + _COLOR["VERBOSE"],
            f"{date}  ",
            RESET,
            _COLOR[level] + _BACKGROUND[level] + BRIGHT,
            f"{level} {RESET}",
            _COLOR["WARN"] + BRIGHT,
            f"[{context}]{RESET}",
            _COLOR[level] + BRIGHT,
            f"[{kind}]{RESET}",
            _COLOR[level],
            value if kind != "object" else "",
            RESET,
        ]
        head = " ".join(parts)
        self._write(head if kind != "object" else f"{head}\n{value} \n")

    def dify(
        self,
        level: str,
        message: str,
        *,
        thread: str = "Dummy-1",
        where: str = "app.py:1",
        trace_id: str = "",
        now: datetime | None = None,
    ) -> None:
        """Dify 1.12.1 logging (api/extensions/ext_logging.py with LoggingConfig's LOG_FORMAT):
        docker `2026-12-01 00:22:25.983 ERROR [Dummy-2] [workflow_entry.py:124] <32-hex or empty> - msg`;
        source `2026-12-01 00:22:25,983 ERROR [workflow_entry.py:124] <10-hex or empty> msg` (the request id
        is the trace id's first 10 characters here; upstream derives the trace id from it)."""
        if level not in _DIFY_LEVELS:
            raise ValueError(f"unknown Dify log level {level}")
        stamp = (now or datetime.now(UTC_TZ)).astimezone(UTC_TZ)
        seconds, millis = stamp.strftime("%Y-%m-%d %H:%M:%S"), stamp.microsecond // 1000
        if self.dify_format == "source":
            self._write(f"{seconds},{millis} {level} [{where}] {trace_id[:10]} {message}")
        else:
            self._write(f"{seconds}.{millis:03d} {level} [{thread}] [{where}] {trace_id} - {message}")

    def gunicorn(self, level: str, message: str, *, now: datetime | None = None) -> None:
        """gunicorn 23 glogging.py: `[2024-07-24 06:33:40 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:35)`."""
        stamp = (now or datetime.now(UTC_TZ)).astimezone(UTC_TZ)
        self._write(f"[{stamp.strftime('%Y-%m-%d %H:%M:%S +0000')}] [{self.pid}] [{level}] {message}")

    def raw(self, line: str) -> None:
        """Lines printed by libraries in their own format (Baileys/pino JSON, Python tracebacks)."""
        self._write(line)
