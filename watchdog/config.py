"""One typed, frozen Settings object resolved from the environment and an optional `.env` file.

Every variable is declared once in `SETTINGS` (name, default, parser, doc); docs/settings.md and
`.env.example` are checked against that table by a test. A bad value raises ConfigError with one line
naming the variable, the value (masked when secret) and what is accepted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv import dotenv_values

from watchdog.errors import ConfigError
from watchdog.model import MIN_CONTACT_KEY_BYTES

Parser = Callable[[str], Any]
# The heartbeat writes to a real WhatsApp number: more often than this may get the spare number flagged.
E2E_MIN_INTERVAL_SECONDS = 60.0


class _Invalid(ValueError):
    """Raised by a parser; its message says what is accepted."""


def _url(raw: str) -> str:
    try:
        parts = urlsplit(raw)  # raises on a malformed [IPv6] host
        host = parts.hostname
    except ValueError:
        raise _Invalid("an http:// or https:// URL with a host") from None
    if parts.scheme not in ("http", "https") or not host:
        raise _Invalid("an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise _Invalid("an http:// or https:// URL with a valid port") from None
    return raw.rstrip("/")


def _optional_url(raw: str) -> str:
    return _url(raw) if raw else ""


def _secret(raw: str) -> str:
    if raw != raw.strip() or any(c.isspace() or ord(c) < 32 for c in raw):
        raise _Invalid("a key without spaces or control characters")
    return raw


def contact_key(raw: str) -> str:
    """WATCHDOG_CONTACT_KEY or a contact.key file's text: empty (generate one) or a key long enough that
    contact ids cannot be brute-forced."""
    if raw and (len(raw.encode()) < MIN_CONTACT_KEY_BYTES or any(c.isspace() or ord(c) < 32 for c in raw)):
        raise _Invalid(
            f"a key of at least {MIN_CONTACT_KEY_BYTES} characters without spaces or control codes"
        )
    return raw


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:-]*$")


def _names(raw: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        if not _NAME.match(item):
            raise _Invalid("a comma-separated list of names (letters, digits, _ . - @ :)")
    if len(set(items)) != len(items):
        raise _Invalid("a comma-separated list of names without repeats")
    return items


def _optional_name(raw: str) -> str:
    names = _names(raw)
    if len(names) > 1:
        raise _Invalid("one container name or id")
    return names[0] if names else ""


def _ranged(convert: Callable[[str], float], what: str, low: float, high: float) -> Parser:
    accepted = f"{what} between {low:g} and {high:g}"

    def parse(raw: str) -> float:
        try:
            value = convert(raw)
        except ValueError:
            raise _Invalid(accepted) from None
        if not low <= value <= high:  # NaN fails too
            raise _Invalid(accepted)
        return value

    return parse


def _seconds(low: float, high: float) -> Parser:
    return _ranged(float, "a number of seconds", low, high)


def _count(low: int, high: int) -> Parser:
    return _ranged(int, "a whole number", low, high)


def _choice(*choices: str) -> Parser:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise _Invalid("one of " + "|".join(choices))
        return value

    return parse


def _docker_url(raw: str) -> str:
    if not re.match(r"^(unix:///\S+|tcp://[^\s/]+:\d+|https?://[^\s/]+(:\d+)?)/?$", raw):
        raise _Invalid("unix:///path/to/docker.sock, tcp://HOST:PORT or http(s)://HOST[:PORT]")
    return raw


def _message(raw: str) -> str:
    if len(raw) > 1000 or any(ord(c) < 32 and c not in "\n\t" for c in raw):
        raise _Invalid("text of at most 1000 characters without control characters")
    return raw


def _optional_instance(raw: str) -> str:
    names = _names(raw)
    if len(names) > 1:
        raise _Invalid("one instance name (letters, digits, _ . - @ :)")
    return names[0] if names else ""


_PHONE = re.compile(r"^\+?(\d{8,15})$")


def e2e_numbers(raw: str) -> tuple[tuple[str, str], ...]:
    """WATCHDOG_E2E_TO_NUMBER: `instance=number` pairs, or one bare number (instance "", resolved at use
    when exactly one instance is watched). Numbers keep their digits only."""
    accepted = (
        "comma-separated instance=number pairs (loja=5511987654321), or one bare number in international "
        "form when one instance is watched"
    )
    pairs: list[tuple[str, str]] = []
    for item in (part.strip() for part in raw.split(",") if part.strip()):
        name, sep, number = item.rpartition("=")
        digits = _PHONE.match(number.strip())
        if digits is None or (sep and not _NAME.match(name.strip())):
            raise _Invalid(accepted)
        pairs.append((name.strip(), digits[1]))
    names = [name for name, _ in pairs]
    if ("" in names and len(pairs) > 1) or len(set(names)) != len(names):
        raise _Invalid(accepted + ", each instance once")
    return tuple(pairs)


def _heartbeat_text(raw: str) -> str:
    if not raw.strip():
        raise _Invalid("text of 1 to 1000 characters without control characters")
    return _message(raw)


def _command(raw: str) -> str:
    if len(raw) > 1000 or any(ord(c) < 32 for c in raw):
        raise _Invalid("one shell command line of at most 1000 characters")
    return raw.strip()


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise _Invalid("true or false")
    return value in ("true", "1", "yes")


def _listen(raw: str) -> tuple[str, int]:
    host, sep, port = raw.rpartition(":")
    host = host.strip("[]")
    # isdigit() alone admits digits such as '²' that int() refuses, and lengths int() refuses to parse
    if not sep or not host or not (port.isascii() and port.isdigit() and len(port) <= 5) or int(port) > 65535:
        raise _Invalid("HOST:PORT, for example 127.0.0.1:8787 (port 0 picks a free one)")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: only this machine can reach a server listening there."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _notify_urls(raw: str) -> tuple[str, ...]:
    urls = tuple(u.strip() for u in re.split(r"[,\s]+", raw) if u.strip())
    for url in urls:
        if "://" not in url:
            raise _Invalid("apprise URLs separated by commas or spaces, each like scheme://...")
    return urls


def _optional_redis_url(raw: str) -> str:
    accepted = "redis://[:password@]HOST[:PORT][/DB], rediss://... or unix:///path/redis.sock"
    if not raw:
        return ""
    try:
        parts = urlsplit(raw)
        host, port = parts.hostname, parts.port  # raise on a bad port or [IPv6] host
    except ValueError:
        raise _Invalid(accepted) from None
    if parts.scheme == "unix" and parts.path:
        return raw
    if parts.scheme not in ("redis", "rediss") or not host or port == 0:
        raise _Invalid(accepted)
    return raw


def _redis_key(raw: str) -> str:
    if not raw or len(raw) > 200 or any(c.isspace() or ord(c) < 32 for c in raw):
        raise _Invalid("a Redis key of at most 200 characters without spaces")
    return raw


def _path(raw: str) -> Path:
    if not raw.strip():
        raise _Invalid("a file path")
    return Path(raw).expanduser()


@dataclass(frozen=True)
class Spec:
    env: str
    attr: str
    default: str
    parse: Parser
    doc: str
    secret: bool = False


SETTINGS: tuple[Spec, ...] = (
    Spec(
        "EVOLUTION_URL",
        "evolution_url",
        "http://127.0.0.1:8080",
        _url,
        "Base URL of Evolution API, as the watchdog reaches it.",
    ),
    Spec(
        "EVOLUTION_API_KEY",
        "evolution_api_key",
        "",
        _secret,
        "Evolution global API key (AUTHENTICATION_API_KEY); needed for instance probes.",
        secret=True,
    ),
    Spec(
        "EVOLUTION_INSTANCES",
        "evolution_instances",
        "",
        _names,
        "Comma list of instances to watch; empty watches every instance Evolution reports.",
    ),
    Spec(
        "EVOLUTION_CONTAINER",
        "evolution_container",
        "",
        _optional_name,
        "Docker container name or id of Evolution API (for logs and L3 restarts); empty disables.",
    ),
    Spec(
        "DIFY_URL",
        "dify_url",
        "",
        _optional_url,
        "Dify service API base, including /v1 (for example http://127.0.0.1/v1); empty disables Dify probes.",
    ),
    Spec(
        "DIFY_API_KEY",
        "dify_api_key",
        "",
        _secret,
        "A Dify app key (app-...) for the app probe and the canary; empty probes only liveness.",
        secret=True,
    ),
    Spec(
        "DIFY_HEALTH_URL",
        "dify_health_url",
        "",
        _optional_url,
        "Optional Dify api /health URL (for example http://dify-api:5001/health) for liveness; "
        "empty: liveness reads DIFY_URL/info.",
    ),
    Spec(
        "DIFY_CONTAINERS",
        "dify_containers",
        "",
        _names,
        "Comma list of Dify containers to follow and restart (for example docker-api-1,docker-worker-1).",
    ),
    Spec(
        "WATCHDOG_TURNAROUND_THRESHOLD_SECONDS",
        "turnaround_threshold_seconds",
        "5",
        _seconds(0.1, 3600),
        "A bot reply slower than this is a breach.",
    ),
    Spec(
        "WATCHDOG_STALL_SECONDS",
        "stall_seconds",
        "60",
        _seconds(1, 86400),
        "No bot reply after this long is a stalled conversation.",
    ),
    Spec(
        "WATCHDOG_PROBE_INTERVAL_SECONDS",
        "probe_interval_seconds",
        "15",
        _seconds(1, 3600),
        "How often the daemon probes Evolution and Dify.",
    ),
    Spec(
        "WATCHDOG_PROBE_TIMEOUT_SECONDS",
        "probe_timeout_seconds",
        "5",
        _seconds(0.1, 120),
        "Deadline of one probe request.",
    ),
    Spec(
        "WATCHDOG_PROBE_CONCURRENCY",
        "probe_concurrency",
        "16",
        _count(1, 512),
        "Most probe requests in flight at once.",
    ),
    Spec(
        "WATCHDOG_SLOW_PROBE_EVERY",
        "slow_probe_every",
        "4",
        _count(1, 1000),
        "Probe each instance's Dify bot sessions and webhook every Nth cycle, staggered across instances "
        "(connectionState runs every cycle; an instance with a finding is probed in full every cycle); "
        "1 = every cycle.",
    ),
    Spec(
        "WATCHDOG_CANARY_INTERVAL_SECONDS",
        "canary_interval_seconds",
        "0",
        _seconds(0, 86400),
        "Opt-in: send a fixed prompt through Dify (streaming) this often; 0 turns the canary off.",
    ),
    Spec(
        "WATCHDOG_MAX_PENDING",
        "max_pending",
        "100000",
        _count(100, 10_000_000),
        "Most unanswered conversations tracked at once; the oldest is dropped and counted beyond it.",
    ),
    Spec(
        "WATCHDOG_TRACK_GROUPS",
        "track_groups",
        "false",
        _flag,
        "Also time replies in groups, broadcasts and newsletters (true|false).",
    ),
    Spec(
        "WATCHDOG_DOCKER_URL",
        "docker_url",
        "unix:///var/run/docker.sock",
        _docker_url,
        "Docker API for log following and restarts (a socket proxy URL such as tcp://127.0.0.1:2375 works).",
    ),
    Spec(
        "WATCHDOG_LOG_BURST_COUNT",
        "log_burst_count",
        "5",
        _count(1, 100_000),
        "This many log lines of one rule within the burst window is an error_burst.",
    ),
    Spec(
        "WATCHDOG_LOG_BURST_WINDOW_SECONDS",
        "log_burst_window_seconds",
        "60",
        _seconds(1, 86400),
        "Window for counting error_burst lines.",
    ),
    Spec(
        "WATCHDOG_DIFY_SILENT_SECONDS",
        "dify_silent_seconds",
        "120",
        _seconds(1, 86400),
        "Dify containers writing nothing this long while customers keep writing is dify_silent.",
    ),
    Spec(
        "WATCHDOG_E2E_FROM_INSTANCE",
        "e2e_from_instance",
        "",
        _optional_instance,
        "Opt-in end-to-end heartbeat (docs/heartbeat.md): the prober, an Evolution instance on a spare "
        "number with no bot, that writes to the bot on a schedule; never watched or repaired. Empty: off.",
    ),
    Spec(
        "WATCHDOG_E2E_FROM_URL",
        "e2e_from_url",
        "",
        _optional_url,
        "Base URL of the Evolution API the prober lives on, when it is another server; empty: EVOLUTION_URL.",
    ),
    Spec(
        "WATCHDOG_E2E_FROM_API_KEY",
        "e2e_from_api_key",
        "",
        _secret,
        "API key of the prober's Evolution server (global key or the prober's token); empty: "
        "EVOLUTION_API_KEY.",
        secret=True,
    ),
    Spec(
        "WATCHDOG_E2E_TO_NUMBER",
        "e2e_to_number",
        "",
        e2e_numbers,
        "The bots the heartbeat writes to: instance=number pairs (loja=5511987654321,outra=5521...), or one "
        "bare number when one instance is watched.",
    ),
    Spec(
        "WATCHDOG_E2E_MESSAGE",
        "e2e_message",
        "evo-watchdog heartbeat",
        _heartbeat_text,
        "The text the prober sends each heartbeat.",
    ),
    Spec(
        "WATCHDOG_E2E_INTERVAL_SECONDS",
        "e2e_interval_seconds",
        "300",
        _seconds(1, 86400),
        f"How often the heartbeat writes to each bot; at least {E2E_MIN_INTERVAL_SECONDS:g} (WhatsApp may "
        "flag automated traffic).",
    ),
    Spec(
        "WATCHDOG_LISTEN",
        "listen",
        "127.0.0.1:8787",
        _listen,
        "HOST:PORT of the watchdog's HTTP server (webhooks, /metrics, /healthz, /api/status).",
    ),
    Spec(
        "WATCHDOG_WEBHOOK_TOKEN",
        "webhook_token",
        "",
        _secret,
        "Token Evolution must send with webhooks (header or ?token=); empty accepts any.",
        secret=True,
    ),
    Spec(
        "WATCHDOG_ALLOW_OPEN_WEBHOOKS",
        "allow_open_webhooks",
        "false",
        _flag,
        "Listen beyond loopback without WATCHDOG_WEBHOOK_TOKEN (anyone who reaches it may post webhooks).",
    ),
    Spec(
        "WATCHDOG_ADMIN_TOKEN",
        "admin_token",
        "",
        _secret,
        "Token for state-changing endpoints (maintenance, ack); empty allows them from loopback only.",
        secret=True,
    ),
    Spec(
        "WATCHDOG_WEBHOOK_URL",
        "webhook_url",
        "",
        _optional_url,
        "The URL Evolution posts webhooks to (http://watchdog:8787/webhook/evolution); check verifies it.",
        secret=True,  # it may carry ?token=
    ),
    Spec(
        "WATCHDOG_RECOVERY_MODE",
        "recovery_mode",
        "dry-run",
        _choice("auto", "dry-run", "off"),
        "auto repairs, dry-run only reports what it would do, off does neither.",
    ),
    Spec(
        "WATCHDOG_MAX_RESTARTS_PER_HOUR",
        "max_restarts_per_hour",
        "3",
        _count(0, 100),
        "Restart budget per target per hour.",
    ),
    Spec(
        "WATCHDOG_GLOBAL_RESTARTS_PER_HOUR",
        "global_restarts_per_hour",
        "10",
        _count(0, 1000),
        "Restart budget across all targets per hour; beyond it the watchdog pages instead.",
    ),
    Spec(
        "WATCHDOG_RECOVERY_HOLD_SECONDS",
        "recovery_hold_seconds",
        "60",
        _seconds(1, 86400),
        "Health must hold this long before an incident closes.",
    ),
    Spec(
        "WATCHDOG_CONFIRM_CYCLES",
        "confirm_cycles",
        "3",
        _count(1, 100),
        "Consecutive probe cycles a fault must last before an instance or service restart (L2/L3), "
        "unless two independent signals agree; L1 (one contact) acts at once.",
    ),
    Spec(
        "WATCHDOG_SETTLE_SECONDS",
        "settle_seconds",
        "60",
        _seconds(0, 3600),
        "After a verified restart, failures of what was restarted are start-up for this long: no climbing, "
        "no page; after it the fault must be confirmed again.",
    ),
    Spec(
        "WATCHDOG_FALLBACK_MESSAGE",
        "fallback_message",
        "",
        _message,
        "Optional reply sent to a stalled contact when its session is reset (at most once per incident).",
    ),
    Spec(
        "WATCHDOG_RESTART_COMMAND_EVOLUTION",
        "restart_command_evolution",
        "",
        _command,
        "Shell command restarting Evolution without Docker (e.g. pm2 restart evolution-api).",
    ),
    Spec(
        "WATCHDOG_RESTART_COMMAND_DIFY",
        "restart_command_dify",
        "",
        _command,
        "Shell command restarting Dify without Docker (e.g. systemctl restart dify-api).",
    ),
    Spec(
        "WATCHDOG_RESTART_TIMEOUT_SECONDS",
        "restart_timeout_seconds",
        "120",
        _seconds(1, 3600),
        "How long a restart may take to come back running and answering before it counts as failed.",
    ),
    Spec(
        "WATCHDOG_NOTIFY_URLS",
        "notify_urls",
        "",
        _notify_urls,
        "Apprise URLs for alerts (tgram://..., slack://..., mailto://...), comma or space separated.",
        secret=True,
    ),
    Spec(
        "WATCHDOG_STATE_PATH",
        "state_path",
        "watchdog-state.db",
        _path,
        "SQLite file for the recovery journal.",
    ),
    Spec(
        "WATCHDOG_CONTACT_KEY",
        "contact_key",
        "",
        contact_key,
        "Secret keying the contact ids (c-...) shown instead of phone numbers, at least 16 characters; "
        "empty: one is generated into contact.key beside WATCHDOG_STATE_PATH on first start and kept. "
        "Two replicas need the same key (or the same state directory).",
        secret=True,
    ),
    Spec(
        "WATCHDOG_REDIS_URL",
        "redis_url",
        "",
        _optional_redis_url,
        "Redis shared by two replicas for the leader lease (redis://[:password@]host:6379/0); only the "
        "leader acts. Empty: a single replica, always the leader.",
        secret=True,  # it may carry a password
    ),
    Spec(
        "WATCHDOG_LEASE_SECONDS",
        "lease_seconds",
        "15",
        _seconds(1, 600),
        "Leader lease length; a dead leader is replaced within two of these.",
    ),
    Spec(
        "WATCHDOG_LEASE_KEY",
        "lease_key",
        "evo-watchdog:leader",
        _redis_key,
        "Redis key of the lease (one per pair of replicas watching the same stack).",
    ),
    Spec("WATCHDOG_LOG_FORMAT", "log_format", "text", _choice("text", "json"), "Log output: text or json."),
    Spec(
        "WATCHDOG_LOG_LEVEL",
        "log_level",
        "INFO",
        lambda raw: _choice("debug", "info", "warning", "error")(raw).upper(),
        "Log level: DEBUG, INFO, WARNING or ERROR.",
    ),
)


@dataclass(frozen=True)
class Settings:
    evolution_url: str
    evolution_api_key: str
    evolution_instances: tuple[str, ...]
    evolution_container: str
    dify_url: str
    dify_api_key: str
    dify_health_url: str
    dify_containers: tuple[str, ...]
    turnaround_threshold_seconds: float
    stall_seconds: float
    probe_interval_seconds: float
    probe_timeout_seconds: float
    probe_concurrency: int
    slow_probe_every: int
    canary_interval_seconds: float
    max_pending: int
    track_groups: bool
    docker_url: str
    log_burst_count: int
    log_burst_window_seconds: float
    dify_silent_seconds: float
    e2e_from_instance: str
    e2e_from_url: str
    e2e_from_api_key: str
    e2e_to_number: tuple[tuple[str, str], ...]
    e2e_message: str
    e2e_interval_seconds: float
    listen: tuple[str, int]
    webhook_token: str
    allow_open_webhooks: bool
    admin_token: str
    webhook_url: str
    recovery_mode: str
    max_restarts_per_hour: int
    global_restarts_per_hour: int
    recovery_hold_seconds: float
    confirm_cycles: int
    settle_seconds: float
    fallback_message: str
    restart_command_evolution: str
    restart_command_dify: str
    restart_timeout_seconds: float
    notify_urls: tuple[str, ...]
    state_path: Path
    contact_key: str = field(repr=False)
    redis_url: str
    lease_seconds: float
    lease_key: str
    log_format: str
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str], env_file: Path | None = None, **overrides: str) -> Settings:
        """Resolve settings: explicit overrides, then the process environment, then `.env`, then defaults."""
        file_values: dict[str, str] = {}
        if env_file is not None:
            if not env_file.is_file():
                raise ConfigError(f"env file {env_file} does not exist")
            file_values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
        values: dict[str, Any] = {}
        for spec in SETTINGS:
            raw = overrides.get(spec.env, environ.get(spec.env, file_values.get(spec.env, spec.default)))
            values[spec.attr] = _parse(spec, raw)
        settings = cls(**values)
        settings._check_relations()
        return settings

    @property
    def containers(self) -> tuple[str, ...]:
        """Every container named for log following and restarts."""
        return tuple(c for c in (self.evolution_container, *self.dify_containers) if c)

    def _check_relations(self) -> None:
        if self.stall_seconds <= self.turnaround_threshold_seconds:
            raise ConfigError(
                f"WATCHDOG_STALL_SECONDS={self.stall_seconds:g} is invalid: must be greater than "
                f"WATCHDOG_TURNAROUND_THRESHOLD_SECONDS ({self.turnaround_threshold_seconds:g})"
            )
        if self.probe_timeout_seconds > self.probe_interval_seconds:
            raise ConfigError(
                f"WATCHDOG_PROBE_TIMEOUT_SECONDS={self.probe_timeout_seconds:g} is invalid: must not exceed "
                f"WATCHDOG_PROBE_INTERVAL_SECONDS ({self.probe_interval_seconds:g})"
            )
        self._check_heartbeat()
        host = self.listen[0]
        if not is_loopback(host) and not self.webhook_token and not self.allow_open_webhooks:
            raise ConfigError(
                f"WATCHDOG_LISTEN={host}:{self.listen[1]} is invalid: beyond loopback set "
                "WATCHDOG_WEBHOOK_TOKEN (or WATCHDOG_ALLOW_OPEN_WEBHOOKS=true to accept webhooks "
                "without a token)"
            )

    def _check_heartbeat(self) -> None:
        """The heartbeat's settings, when it is on. A bare number, or pairs naming instances, are checked
        against EVOLUTION_INSTANCES here when it is set, else at each heartbeat (instances may be
        discovered)."""
        prober = self.e2e_from_instance
        if not prober:
            return
        fault = ""
        if self.e2e_interval_seconds < E2E_MIN_INTERVAL_SECONDS:
            fault = (
                f"WATCHDOG_E2E_INTERVAL_SECONDS={self.e2e_interval_seconds:g} is invalid: at least "
                f"{E2E_MIN_INTERVAL_SECONDS:g} with the heartbeat on (WhatsApp may flag automated traffic)"
            )
        elif not self.e2e_to_number:
            fault = (
                "WATCHDOG_E2E_TO_NUMBER='' is invalid: the heartbeat (WATCHDOG_E2E_FROM_INSTANCE) needs the "
                "bot's number to write to"
            )
        elif prober in self.evolution_instances or prober in dict(self.e2e_to_number):
            fault = (
                f"WATCHDOG_E2E_FROM_INSTANCE={prober!r} is invalid: the prober must not be a watched bot "
                "instance (EVOLUTION_INSTANCES, WATCHDOG_E2E_TO_NUMBER)"
            )
        elif self.evolution_instances:
            fault = _targets_fault(self.e2e_to_number, self.evolution_instances)
        if fault:
            raise ConfigError(fault)

    def public(self) -> dict[str, Any]:
        """Settings safe to show in /api/status and logs: secrets reduced to 'set'/'unset'."""
        shown: dict[str, Any] = {}
        by_attr = {spec.attr: spec for spec in SETTINGS}
        for f in fields(self):
            value = getattr(self, f.name)
            if by_attr[f.name].secret:
                shown[f.name] = "set" if value else "unset"
            elif isinstance(value, Path):
                shown[f.name] = str(value)
            elif f.name == "listen":
                shown[f.name] = f"{value[0]}:{value[1]}"
            else:
                shown[f.name] = list(value) if isinstance(value, tuple) else value
        return shown


def _parse(spec: Spec, raw: str) -> Any:
    try:
        return spec.parse(raw.strip() if not spec.secret else raw)
    except _Invalid as exc:
        shown = "<hidden>" if spec.secret else repr(raw)
        raise ConfigError(f"{spec.env}={shown} is invalid: expected {exc}") from None


def e2e_targets(pairs: tuple[tuple[str, str], ...], watched: Collection[str]) -> dict[str, str]:
    """Bot instance -> number the heartbeat writes to, among the watched instances: a bare number names
    the one watched instance. Raises ConfigError when the pairs cannot be resolved (_targets_fault)."""
    fault = _targets_fault(pairs, watched)
    if fault:
        raise ConfigError(fault)
    if pairs and pairs[0][0] == "":
        return {next(iter(watched)): pairs[0][1]}
    return dict(pairs)


def _targets_fault(pairs: tuple[tuple[str, str], ...], watched: Collection[str]) -> str:
    given = repr(",".join(f"{name}={number}" if name else number for name, number in pairs))
    if pairs and pairs[0][0] == "" and len(watched) != 1:
        return (
            f"WATCHDOG_E2E_TO_NUMBER={given} is invalid: a bare number needs exactly one watched instance, "
            f"not {len(watched)}; write instance=number pairs"
        )
    unknown = sorted(name for name, _ in pairs if name and name not in watched)
    if unknown:
        names = ", ".join(unknown)
        return f"WATCHDOG_E2E_TO_NUMBER={given} is invalid: {names} not among the watched instances"
    return ""
