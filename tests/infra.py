"""Real infrastructure for tests: a Debian program, or a skip (a failure under
WATCHDOG_REQUIRE_REAL_INFRA=1, as CI runs, so a missing program can never pass as a skip)."""

from __future__ import annotations

import os
import shutil

import pytest

from watchdog.serving import free_port

__all__ = ["free_port", "missing", "require_binary"]

REQUIRE_REAL_INFRA = os.environ.get("WATCHDOG_REQUIRE_REAL_INFRA") == "1"


def missing(message: str) -> None:
    """Skip, or fail when real infrastructure is required."""
    if REQUIRE_REAL_INFRA:
        pytest.fail(message)
    pytest.skip(message)


def require_binary(name: str, package: str) -> str:
    """The path of `name` (from Debian's `package`, installed by scripts/install-system-deps.sh)."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} not found: install Debian's {package} (scripts/install-system-deps.sh)")
    assert path is not None
    return path
