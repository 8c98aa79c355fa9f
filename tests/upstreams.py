"""The real Evolution API and Dify for tests: a user's own staging (WATCHDOG_CONTRACT_*), else the harness
scripts/upstreams.sh started for the session (or left up by an earlier `up`)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.infra import missing

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "scripts" / "upstreams.sh"
UP_TIMEOUT = float(os.environ.get("WATCHDOG_UPSTREAMS_UP_TIMEOUT", "3600"))  # a first build takes minutes

# field name -> the staging variable that gives it (all six, or none)
CONTRACT_ENV = {
    "evolution_url": "WATCHDOG_CONTRACT_EVOLUTION_URL",
    "evolution_api_key": "WATCHDOG_CONTRACT_EVOLUTION_API_KEY",
    "dify_url": "WATCHDOG_CONTRACT_DIFY_URL",
    "dify_api_key": "WATCHDOG_CONTRACT_DIFY_API_KEY",
    "dify_fail_api_key": "WATCHDOG_CONTRACT_DIFY_FAIL_API_KEY",
    "dify_health_url": "WATCHDOG_CONTRACT_DIFY_HEALTH_URL",
}


@dataclass(frozen=True)
class RealUpstreams:
    """Where the real pair answers. The logs and fault server are known only for the harness."""

    evolution_url: str
    evolution_api_key: str
    dify_url: str  # the service API base, .../v1
    dify_api_key: str  # echo-chat
    dify_fail_api_key: str  # midstream-fail
    dify_health_url: str
    evolution_log: Path | None = None
    dify_log: Path | None = None
    dify_fault_url: str | None = None
    from_harness: bool = False
    started_here: bool = False  # this session ran `up`, so it runs `down`
    extra: Mapping[str, str] = field(default_factory=dict)  # every other KEY=VALUE the harness printed


def parse_values(text: str) -> dict[str, str]:
    """KEY=VALUE lines (anything else ignored)."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isupper() and key.replace("_", "").isalnum():
            values[key] = value.strip()
    return values


def from_values(values: Mapping[str, str], *, started_here: bool) -> RealUpstreams:
    needed = [name.upper() for name in CONTRACT_ENV]
    absent = [name for name in needed if not values.get(name)]
    if absent:
        raise ValueError(f"the harness printed no {', '.join(absent)}")
    evolution_log, dify_log = values.get("EVOLUTION_LOG"), values.get("DIFY_LOG")
    return RealUpstreams(
        **{name: values[name.upper()] for name in CONTRACT_ENV},
        evolution_log=Path(evolution_log) if evolution_log else None,
        dify_log=Path(dify_log) if dify_log else None,
        dify_fault_url=values.get("DIFY_FAULT_URL"),
        from_harness=True,
        started_here=started_here,
        extra={k: v for k, v in values.items() if k not in needed},
    )


def from_contract_env(environ: Mapping[str, str]) -> RealUpstreams | None:
    """A user's own staging, when every WATCHDOG_CONTRACT_* variable is set; None when none is."""
    given = {name: environ.get(var, "") for name, var in CONTRACT_ENV.items()}
    if not any(given.values()):
        return None
    absent = [CONTRACT_ENV[name] for name, value in given.items() if not value]
    if absent:
        missing(f"staging upstreams half configured: set {', '.join(absent)} too (or none of them)")
    return RealUpstreams(**given)


def _harness(command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HARNESS), command],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def start_real_upstreams() -> RealUpstreams:
    """The session's real upstreams; `missing()` (a failure under WATCHDOG_REQUIRE_REAL_INFRA=1) when none."""
    staged = from_contract_env(os.environ)
    if staged is not None:
        return staged
    already = _harness("env", 60)
    started_here = already.returncode != 0
    try:
        result = _harness("up", UP_TIMEOUT) if started_here else already
    except subprocess.TimeoutExpired:
        missing(f"scripts/upstreams.sh up did not finish in {UP_TIMEOUT:.0f} s")
        raise
    if result.returncode != 0:
        missing(f"real upstreams did not start: {_last_line(result.stderr)}")
    try:
        return from_values(parse_values(result.stdout), started_here=started_here)
    except ValueError as exc:
        missing(f"real upstreams: {exc}")
        raise


def stop_real_upstreams(upstreams: RealUpstreams) -> None:
    """`down` when this session started them; a harness found up (or a staging) is left alone."""
    if upstreams.started_here:
        result = _harness("down", 300)
        assert result.returncode == 0, f"scripts/upstreams.sh down failed: {_last_line(result.stderr)}"
