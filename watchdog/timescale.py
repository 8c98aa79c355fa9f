"""The shipped defaults with every duration multiplied by one factor, for demos, benchmarks and tests.

A faster run may change the pace of everything, never one setting on its own: each `*_SECONDS` setting's
default (and the emulators' waits, see `watchdog sim --time-scale`) is multiplied by the same factor, so
what the watchdog decides at factor 0.2 is what it decides at the defaults, five times sooner. The
budgets (restarts per hour) are counts in a window the runs here never reach, so they stay as shipped.
"""

from __future__ import annotations

from watchdog.config import SETTINGS, Settings
from watchdog.errors import ConfigError

DURATION_SUFFIX = "_SECONDS"


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
