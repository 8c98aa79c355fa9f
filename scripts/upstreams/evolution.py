"""Evolution API: schema from its shipped migrations, .env from upstream's env.example, node dist/main.js."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from dotenv import dotenv_values

from .common import HarnessError, say, wait_for
from .datastores import psql
from .procs import Proc, State, check_running, spawn

# Linked into the run directory: node reads ./package.json and serves ./manager and ./public from the
# working directory (src/config/logger.config.ts, src/main.ts); instances/ and store/ stay in the run dir.
LINKED = ("dist", "node_modules", "package.json", "manager", "public", "prisma")


def create_schema(state: State, root: Path, log: Path) -> None:
    """README: every prisma/postgresql-migrations/*/migration.sql, in sorted order (no prisma deploy)."""
    files = sorted((root / "prisma" / "postgresql-migrations").glob("*/migration.sql"))
    if not files:
        raise HarnessError("Evolution schema", f"no migrations under {root / 'prisma'}")
    psql(state, "postgres", "-c", "CREATE DATABASE evolution", log=log, step="Evolution create database")
    args = [arg for file in files for arg in ("-f", str(file))]
    psql(state, "evolution", *args, log=log, step="Evolution schema")
    say(f"Evolution: {len(files)} migrations applied")


def settings(root: Path, port: int, pg_port: int, api_key: str) -> dict[str, str]:
    """env.example with the README's changes (loopback, no telemetry, the bot integrations on)."""
    env = {k: v or "" for k, v in dotenv_values(root / "env.example").items()}
    env.update(
        SERVER_TYPE="http",
        SERVER_PORT=str(port),
        SERVER_URL=f"http://127.0.0.1:{port}",
        SERVER_LISTEN_HOST="127.0.0.1",
        AUTHENTICATION_API_KEY=api_key,
        DATABASE_PROVIDER="postgresql",
        DATABASE_CONNECTION_URI=f"postgresql://postgres@127.0.0.1:{pg_port}/evolution",
        CACHE_REDIS_ENABLED="false",
        CACHE_LOCAL_ENABLED="true",
        RABBITMQ_ENABLED="false",
        SQS_ENABLED="false",
        S3_ENABLED="false",
        CHATWOOT_ENABLED="false",
        SENTRY_DSN="",
        TELEMETRY_ENABLED="false",
        DIFY_ENABLED="true",
        # the other bot integrations (tests/contract/test_integrations_contract.py); EvolutionBot is always on
        TYPEBOT_ENABLED="true",
        OPENAI_ENABLED="true",
        FLOWISE_ENABLED="true",
        N8N_ENABLED="true",
        EVOAI_ENABLED="true",
        LOG_COLOR=os.environ.get("WATCHDOG_UPSTREAMS_EVOLUTION_LOG_COLOR", "true"),
    )
    extra = os.environ.get("WATCHDOG_UPSTREAMS_EVOLUTION_ENV")
    if extra:
        env.update({k: v or "" for k, v in dotenv_values(extra).items()})
    return env


def start(state: State, root: Path, rundir: Path, env: dict[str, str], log: Path) -> Proc:
    rundir.mkdir(parents=True, exist_ok=True)
    for name in LINKED:
        if (root / name).exists():
            (rundir / name).symlink_to(root / name)
    (rundir / ".env").write_text("".join(f"{k}={_quote(v)}\n" for k, v in env.items()))
    child_env = {k: os.environ[k] for k in ("PATH", "HOME", "TZ") if k in os.environ}
    child_env["LANG"] = "C.UTF-8"
    say(f"Evolution: start on {env['SERVER_URL']}")
    return spawn(state, "evolution", ["node", "dist/main.js"], log=log, cwd=rundir, env=child_env)


def wait_ready(proc: Proc, url: str, api_key: str, log: Path, timeout: float = 180) -> None:
    def ready() -> bool:
        check_running(proc, "Evolution start")
        answer = httpx.get(f"{url}/instance/fetchInstances", headers={"apikey": api_key}, timeout=5)
        return answer.status_code == 200

    wait_for("Evolution start", ready, timeout=timeout, log=log)


def _quote(value: str) -> str:
    return value if value and all(c.isalnum() or c in "-_.:/@,+=" for c in value) else f'"{value}"'
