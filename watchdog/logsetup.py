"""Configure loguru once for the process: text for people, json for log shippers."""

from __future__ import annotations

import logging
import sys
from types import FrameType
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
    # One format for everything: uvicorn and other libraries log through the standard library.
    logging.basicConfig(handlers=[_InterceptHandler()], level=0, force=True)
    # httpx logs every request URL at INFO; keep it quiet so query strings never reach the logs.
    logging.getLogger("httpx").setLevel(logging.WARNING)


class _InterceptHandler(logging.Handler):
    """Forward standard-library records to loguru (the recipe from loguru's documentation)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame: FrameType | None = logging.currentframe()
        depth = 2
        while frame is not None and frame.f_code.co_filename == logging.__file__:
            frame, depth = frame.f_back, depth + 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())
