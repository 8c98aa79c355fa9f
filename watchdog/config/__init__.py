"""The watchdog's settings: what each accepts (values.py), the table of every variable (table.py), and the
one typed, frozen Settings object resolved from the environment and `.env` (settings.py)."""

from watchdog.config.settings import Settings, e2e_targets
from watchdog.config.table import SETTINGS, Spec
from watchdog.config.values import E2E_MIN_INTERVAL_SECONDS, contact_key, e2e_numbers, is_loopback

__all__ = [
    "E2E_MIN_INTERVAL_SECONDS",
    "SETTINGS",
    "Settings",
    "Spec",
    "contact_key",
    "e2e_numbers",
    "e2e_targets",
    "is_loopback",
]
