"""Standard-library loggers come out through loguru in one format; chatty ones are kept quiet."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from loguru import logger

from watchdog.logsetup import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    yield
    logger.remove()
    logging.basicConfig(force=True)


def test_request_urls_are_dropped_warnings_kept(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging(fmt="json", level="DEBUG", stream=out)
    logging.getLogger("httpx").info("HTTP Request: GET http://evolution/?token=secret")
    logging.getLogger("httpx").warning("a warning of httpx still comes through")
    logging.getLogger("tests.logsetup").info("any other library keeps its INFO lines")
    messages = [json.loads(line)["record"]["message"] for line in out.getvalue().splitlines()]
    assert messages == ["a warning of httpx still comes through", "any other library keeps its INFO lines"]
