"""Generated environments for Settings.from_env: it resolves, or refuses with one ConfigError line naming
a variable; no other exception, and never a secret's value in the message.

Found by this test: `WATCHDOG_LISTEN=host:²` (a digit to isdigit(), not to int()) and a port of
thousands of digits raised ValueError; `EVOLUTION_URL=http://[::1` raised ValueError from urlsplit.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from watchdog.config import SETTINGS, Settings
from watchdog.errors import ConfigError

MARKER = "SECRETMARKER9f3e"
SECRET_NAMES = {spec.env for spec in SETTINGS if spec.secret}
NAMES = {spec.env for spec in SETTINGS}

# Values near what each parser expects, plus anything at all.
plausible = st.sampled_from(
    [
        "",
        "0",
        "1",
        "-1",
        "5",
        "1e9",
        "nan",
        "inf",
        "true",
        "maybe",
        "127.0.0.1:0",
        "0.0.0.0:8787",
        "[::1]:8787",
        "http://",
        "http://[::1",
        "http://h:99999",
        "https://evolution:8080/",
        "unix:///var/run/docker.sock",
        "tcp://h:2375",
        "loja,suporte",
        "a,a",
        "json://127.0.0.1:1/x",
        "9" * 5000,
        "127.0.0.1:²",
        "127.0.0.1:" + "9" * 5000,
        "\uff11\uff12\uff13",  # fullwidth digits: float() takes them
    ]
)
values = plausible | st.text(max_size=60) | st.from_regex(r"[0-9.:/\[\]a-z_-]{0,30}", fullmatch=True)


@st.composite
def environments(draw: st.DrawFn) -> dict[str, str]:
    env: dict[str, str] = {}
    for name in draw(st.sets(st.sampled_from(sorted(NAMES)), max_size=8)):
        value = draw(values)
        if name in SECRET_NAMES:
            value = draw(st.sampled_from(["", " ", "x"])) + MARKER + value  # findable if it leaked
        env[name] = value
    return env


def check(env: dict[str, str]) -> None:
    try:
        Settings.from_env(env)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and "\r" not in message
        assert message.split("=", 1)[0] in NAMES, message
        assert MARKER not in message, message


@settings(max_examples=300, deadline=None)
@given(env=environments())
@example(env={"WATCHDOG_LISTEN": "127.0.0.1:²"})
@example(env={"WATCHDOG_LISTEN": "127.0.0.1:" + "9" * 5000})
@example(env={"EVOLUTION_URL": "http://[::1"})
@example(env={"WATCHDOG_NOTIFY_URLS": f"json://user:{MARKER}@h/x bad"})
@example(env={"WATCHDOG_E2E_FROM_INSTANCE": "0"})  # a relation: the heartbeat without a number
def test_any_environment_resolves_or_refuses_in_one_line_without_secrets(env: dict[str, str]) -> None:
    check(env)


@pytest.mark.fuzz
@settings(max_examples=5000, deadline=None)
@given(env=environments())
def test_five_thousand_generated_environments(env: dict[str, str]) -> None:
    """5,000 environments of up to 8 variables each."""
    check(env)
