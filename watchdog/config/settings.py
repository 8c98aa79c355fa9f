"""One typed, frozen Settings object resolved from the environment and an optional `.env` file, through the
table (table.py). A bad value raises ConfigError with one line naming the variable, the value (masked when
secret) and what is accepted."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from watchdog.config.table import SETTINGS, Spec
from watchdog.config.values import E2E_MIN_INTERVAL_SECONDS, Invalid, is_loopback
from watchdog.errors import ConfigError


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
    except Invalid as exc:
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
