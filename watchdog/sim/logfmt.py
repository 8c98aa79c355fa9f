"""Log lines in the upstream formats (see shared/reference), so log rules can be tested on emulator output."""

from __future__ import annotations

import json
import os
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TextIO

# Evolution's Dockerfile sets TZ=America/Sao_Paulo; its console logger prints local time.
SAO_PAULO = timezone(timedelta(hours=-3))
_EVOLUTION_LEVELS = {"LOG", "INFO", "WARN", "ERROR", "DEBUG", "VERBOSE", "DARK"}
_DIFY_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


class SimLog:
    """Writes upstream-shaped lines to a stream (stdout by default), one write per record."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        product: str = "Evolution API",
        version: str = "2.3.6",
        color: bool = False,
        pid: int | None = None,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.product = product
        self.version = version
        self.color = color
        self.pid = pid if pid is not None else os.getpid()
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
        """`[Evolution API] [inst] 1 - Tue Oct 21 2025 11:40:39   ERROR  [DifyService] [string] msg`.

        Objects are printed as `[object]` with the value on the following lines, as upstream does.
        """
        if level not in _EVOLUTION_LEVELS:
            raise ValueError(f"unknown Evolution log level {level}")
        ts = (now or datetime.now(SAO_PAULO)).astimezone(SAO_PAULO).strftime("%a %b %d %Y %H:%M:%S")
        is_object = not isinstance(message, str)
        kind = "object" if is_object else "string"
        head = f"[{self.product}]"
        if instance:
            head += f" [{instance}]"
        if self.color:
            head = f"\x1b[32m{head}\x1b[0m \x1b[33mv{self.version}\x1b[0m"
        body = f"{head}  {self.pid}  -  {ts}   {level:<7}  [{context}]  [{kind}]"
        if self.color:
            body = body.replace(f"{level:<7}", f"\x1b[31m{level:<7}\x1b[0m")
        if is_object:
            self._write(body + "\n" + json.dumps(message, indent=2, ensure_ascii=False, default=str))
        else:
            self._write(f"{body} {message}")

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
        """Dify 1.13 logging: `2025-10-26 16:47:17.076 ERROR [Dummy-502] [app.py:875] <trace> - msg`."""
        if level not in _DIFY_LEVELS:
            raise ValueError(f"unknown Dify log level {level}")
        stamp = (now or datetime.now(UTC_TZ)).astimezone(UTC_TZ)
        ts = stamp.strftime("%Y-%m-%d %H:%M:%S") + f".{stamp.microsecond // 1000:03d}"
        trace = f"{trace_id} " if trace_id else ""
        self._write(f"{ts} {level} [{thread}] [{where}] {trace}- {message}")

    def gunicorn(self, level: str, message: str, *, now: datetime | None = None) -> None:
        """`[2024-07-24 06:33:40 +0000] [1] [CRITICAL] WORKER TIMEOUT (pid:35)`."""
        stamp = (now or datetime.now(UTC_TZ)).astimezone(UTC_TZ)
        self._write(f"[{stamp.strftime('%Y-%m-%d %H:%M:%S +0000')}] [{self.pid}] [{level}] {message}")

    def raw(self, line: str) -> None:
        """Lines printed by libraries in their own format (Baileys/pino JSON)."""
        self._write(line)


UTC_TZ = UTC
