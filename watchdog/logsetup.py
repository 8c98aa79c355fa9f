"""Configure loguru once for the process: text for people, json for log shippers."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from loguru import logger


def configure_logging(*, fmt: str, level: str, stream: TextIO | None = None) -> None:
    logger.remove()
    sink = stream if stream is not None else sys.stderr
    if fmt == "json":
        logger.add(sink, level=level, serialize=True, backtrace=False, diagnose=False)
    else:
        logger.add(
            sink,
            level=level,
            format="{time:YYYY-MM-DD HH:mm:ss.SSS} {level: <7} {message}",
            backtrace=False,
            diagnose=False,  # never print local variables: they may hold keys
        )
    # httpx logs every request URL at INFO; keep it quiet so query strings never reach the logs.
    logging.getLogger("httpx").setLevel(logging.WARNING)
