"""The shipped defaults with every duration multiplied by one factor, for demos, benchmarks and tests.

A faster run may change the pace of everything, never one setting on its own: each `*_SECONDS` setting's
default (and the emulators' waits, see `watchdog sim --time-scale`) is multiplied by the same factor, so
what the watchdog decides at factor 0.2 is what it decides at the defaults, five times sooner. The
budgets (restarts per hour) are counts in a window the runs here never reach, so they stay as shipped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from watchdog.config import E2E_MIN_INTERVAL_SECONDS, SETTINGS, Settings
from watchdog.errors import ConfigError

DURATION_SUFFIX = "_SECONDS"
E2E_INTERVAL = "WATCHDOG_E2E_INTERVAL_SECONDS"


def scaled_defaults(factor: float) -> dict[str, str]:
    """`{VARIABLE: value}` for every duration setting, its shipped default times `factor` (0 stays 0: a
    feature that is off by default stays off). Raises ConfigError when a value falls below what the
    setting accepts, rather than silently clamping one duration."""
    if not 0 < factor <= 1:
        raise ConfigError(f"time factor {factor:g} is invalid: must be in (0, 1]")
    scaled = {
        spec.env: f"{float(spec.default) * factor:g}"
        for spec in SETTINGS
        if spec.env.endswith(DURATION_SUFFIX) and spec.default
    }
    Settings.from_env(scaled)  # the same parsers and relations a user's values go through
    return scaled


def scaled_settings(factor: float, env: Mapping[str, str]) -> Settings:
    """Settings from `env` over `scaled_defaults(factor)`. The heartbeat's interval floor (60 s: it guards a
    real WhatsApp number against being flagged) is a duration like the others, so it scales too: the
    interval is parsed at the user's floor and set on the frozen settings afterwards, which no environment
    variable can do. For emulators only, which have no number to lose."""
    merged = {**scaled_defaults(factor), **env}
    interval = float(merged[E2E_INTERVAL])
    floor = E2E_MIN_INTERVAL_SECONDS * factor
    if interval < floor:
        raise ConfigError(f"{E2E_INTERVAL}={interval:g} is invalid: at least {floor:g} at factor {factor:g}")
    settings = Settings.from_env({**merged, E2E_INTERVAL: f"{max(interval, E2E_MIN_INTERVAL_SECONDS):g}"})
    return dataclasses.replace(settings, e2e_interval_seconds=interval)
