"""Settings: one typed object; a bad value stops start-up with one line naming the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from watchdog.config import SETTINGS, Settings
from watchdog.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

# One bad value per variable; each must be refused with a line naming the variable.
BAD_VALUES = {
    "EVOLUTION_URL": "ftp://evolution:8080",
    "EVOLUTION_API_KEY": "key with spaces",
    "EVOLUTION_INSTANCES": "loja,lo ja",
    "EVOLUTION_CONTAINER": "evolution_api,other",
    "DIFY_URL": "not-a-url",
    "DIFY_API_KEY": "app-\tkey",
    "DIFY_HEALTH_URL": "http://",
    "DIFY_CONTAINERS": "docker-api-1,docker-api-1",
    "WATCHDOG_TURNAROUND_THRESHOLD_SECONDS": "fast",
    "WATCHDOG_STALL_SECONDS": "-5",
    "WATCHDOG_PROBE_INTERVAL_SECONDS": "0",
    "WATCHDOG_PROBE_TIMEOUT_SECONDS": "1e9",
    "WATCHDOG_PROBE_CONCURRENCY": "many",
    "WATCHDOG_SLOW_PROBE_EVERY": "0",
    "WATCHDOG_CANARY_INTERVAL_SECONDS": "-1",
    "WATCHDOG_MAX_PENDING": "10",
    "WATCHDOG_TRACK_GROUPS": "maybe",
    "WATCHDOG_DOCKER_URL": "/var/run/docker.sock",
    "WATCHDOG_LOG_BURST_COUNT": "0",
    "WATCHDOG_LOG_BURST_WINDOW_SECONDS": "week",
    "WATCHDOG_DIFY_SILENT_SECONDS": "0.5",
    "WATCHDOG_E2E_FROM_INSTANCE": "sonda,outra",
    "WATCHDOG_E2E_FROM_URL": "evolution-two",
    "WATCHDOG_E2E_FROM_API_KEY": "key with spaces",
    "WATCHDOG_E2E_TO_NUMBER": "loja=not-a-number",
    "WATCHDOG_E2E_MESSAGE": "   ",
    "WATCHDOG_E2E_INTERVAL_SECONDS": "0",
    "WATCHDOG_LISTEN": "8787",
    "WATCHDOG_WEBHOOK_TOKEN": " padded",
    "WATCHDOG_ALLOW_OPEN_WEBHOOKS": "sometimes",
    "WATCHDOG_ADMIN_TOKEN": "two words",
    "WATCHDOG_WEBHOOK_URL": "evolution-webhook",
    "WATCHDOG_RECOVERY_MODE": "yolo",
    "WATCHDOG_MAX_RESTARTS_PER_HOUR": "1000",
    "WATCHDOG_GLOBAL_RESTARTS_PER_HOUR": "-1",
    "WATCHDOG_RECOVERY_HOLD_SECONDS": "0",
    "WATCHDOG_CONFIRM_CYCLES": "0",
    "WATCHDOG_SETTLE_SECONDS": "-1",
    "WATCHDOG_FALLBACK_MESSAGE": "oi\x00",
    "WATCHDOG_RESTART_COMMAND_EVOLUTION": "pm2 restart evolution\nrm -rf /",
    "WATCHDOG_RESTART_COMMAND_DIFY": "x" * 1001,
    "WATCHDOG_RESTART_TIMEOUT_SECONDS": "forever",
    "WATCHDOG_NOTIFY_URLS": "not a url",
    "WATCHDOG_STATE_PATH": "   ",
    "WATCHDOG_CONTACT_KEY": "short-key-15chr",
    "WATCHDOG_REDIS_URL": "http://redis:6379",
    "WATCHDOG_LEASE_SECONDS": "0.5",
    "WATCHDOG_LEASE_KEY": "two words",
    "WATCHDOG_LOG_FORMAT": "xml",
    "WATCHDOG_LOG_LEVEL": "loud",
}


def test_every_setting_has_a_bad_value_case() -> None:
    assert set(BAD_VALUES) == {spec.env for spec in SETTINGS}


@pytest.mark.parametrize("spec", SETTINGS, ids=lambda s: s.env)
def test_bad_value_names_the_variable_in_one_line(spec) -> None:  # type: ignore[no-untyped-def]
    bad = BAD_VALUES[spec.env]
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({spec.env: bad})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{spec.env}=")
    assert "expected" in message
    if spec.secret:
        assert bad.strip() not in message and "<hidden>" in message
    else:
        assert repr(bad) in message


def test_defaults_resolve_without_any_environment() -> None:
    settings = Settings.from_env({})
    assert settings.turnaround_threshold_seconds == 5.0
    assert settings.recovery_mode == "dry-run"
    assert settings.listen == ("127.0.0.1", 8787)
    assert settings.evolution_instances == ()


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.stall_seconds = 1  # type: ignore[misc]


def test_environment_wins_over_env_file_which_wins_over_defaults(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "WATCHDOG_STALL_SECONDS=90\nEVOLUTION_INSTANCES=loja, suporte\nWATCHDOG_LOG_FORMAT=json\n"
    )
    settings = Settings.from_env({"WATCHDOG_LOG_FORMAT": "text"}, env_file)
    assert settings.stall_seconds == 90
    assert settings.evolution_instances == ("loja", "suporte")
    assert settings.log_format == "text"


def test_missing_env_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.from_env({}, tmp_path / "nope.env")


def test_stall_must_exceed_the_turnaround_threshold() -> None:
    with pytest.raises(ConfigError, match=r"^WATCHDOG_STALL_SECONDS=4 is invalid: must be greater than"):
        Settings.from_env({"WATCHDOG_STALL_SECONDS": "4"})


def test_probe_timeout_cannot_exceed_the_interval() -> None:
    with pytest.raises(ConfigError, match="WATCHDOG_PROBE_TIMEOUT_SECONDS=20"):
        Settings.from_env({"WATCHDOG_PROBE_TIMEOUT_SECONDS": "20", "WATCHDOG_PROBE_INTERVAL_SECONDS": "10"})


def test_public_view_hides_every_secret() -> None:
    secrets = {
        "EVOLUTION_API_KEY": "EVO-SECRET-123",
        "DIFY_API_KEY": "app-SECRET-456",
        "WATCHDOG_WEBHOOK_TOKEN": "TOKEN-789",
        "WATCHDOG_NOTIFY_URLS": "tgram://BOT-SECRET/123",
        "WATCHDOG_CONTACT_KEY": "CONTACT-KEY-SECRET-0123",
    }
    shown = repr(Settings.from_env(secrets).public())
    for value in secrets.values():
        assert value not in shown
    assert "'evolution_api_key': 'set'" in shown and "'contact_key': 'set'" in shown
    assert "CONTACT-KEY-SECRET-0123" not in repr(Settings.from_env(secrets))


@pytest.mark.parametrize("key", ["fifteen-chars-1", "sixteen chars 01", "sixteen-chars-0\x01", "é" * 7])
def test_a_contact_key_too_short_or_with_blanks_is_refused_without_showing_it(key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"WATCHDOG_CONTACT_KEY": key})
    assert str(caught.value) == (
        "WATCHDOG_CONTACT_KEY=<hidden> is invalid: expected a key of at least 16 characters without "
        "spaces or control codes"
    )


def test_a_contact_key_of_16_characters_is_taken_as_given() -> None:
    assert Settings.from_env({"WATCHDOG_CONTACT_KEY": "sixteen-chars-01"}).contact_key == "sixteen-chars-01"
    assert Settings.from_env({}).contact_key == ""  # generated into the state directory at start


def test_urls_lose_their_trailing_slash_and_lists_their_blanks() -> None:
    settings = Settings.from_env({"DIFY_URL": "http://127.0.0.1/v1/", "DIFY_CONTAINERS": " a , ,b "})
    assert settings.dify_url == "http://127.0.0.1/v1"
    assert settings.dify_containers == ("a", "b")


@pytest.mark.parametrize("doc", ["docs/settings.md", ".env.example"])
def test_every_setting_is_documented_with_its_default(doc: str) -> None:
    text = (ROOT / doc).read_text()
    for spec in SETTINGS:
        if doc == ".env.example":
            assert re.search(rf"^#? ?{spec.env}={re.escape(spec.default)}$", text, re.M), spec.env
        else:
            default = f"`{spec.default}`" if spec.default else "*(empty)*"
            assert re.search(rf"`{spec.env}`\s*\|\s*{re.escape(default)}\s*\|", text), spec.env
