"""Every variable, declared once (name, attribute, default, parser, doc): docs/settings.md and `.env.example`
are generated from this table (scripts/settings_docs.py) and checked against it by a test."""

from __future__ import annotations

from dataclasses import dataclass

from watchdog.config.values import (
    E2E_MIN_INTERVAL_SECONDS,
    Parser,
    _choice,
    _command,
    _count,
    _docker_url,
    _flag,
    _heartbeat_text,
    _listen,
    _message,
    _names,
    _notify_urls,
    _optional_instance,
    _optional_name,
    _optional_redis_url,
    _optional_url,
    _path,
    _redis_key,
    _seconds,
    _secret,
    _url,
    contact_key,
    e2e_numbers,
)


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
