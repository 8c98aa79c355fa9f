"""Dify's api: settings from upstream's .env.example, `flask db upgrade`, and the production gunicorn command
run from the source directory so its gunicorn.conf.py (gevent patches for psycopg2 and gRPC) loads."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import httpx
from dotenv import dotenv_values

from .common import free_port, run, say, wait_for
from .datastores import psql
from .procs import Proc, State, check_running, spawn


def settings(
    root: Path, port: int, pg_port: int, redis_port: int, redis_password: str, storage: Path
) -> dict[str, str]:
    """.env.example with the README's changes; every URL plain http on loopback (https ones make the
    console cookies __Host- and Secure, which a plain-HTTP client loses)."""
    env = {k: v or "" for k, v in dotenv_values(root / ".env.example").items()}
    base = f"http://127.0.0.1:{port}"
    env.update(
        SECRET_KEY=secrets.token_urlsafe(42),
        DB_HOST="127.0.0.1",
        DB_PORT=str(pg_port),
        DB_USERNAME="postgres",
        DB_PASSWORD="",
        DB_DATABASE="dify",
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=str(redis_port),
        REDIS_PASSWORD=redis_password,
        CELERY_BROKER_URL=f"redis://:{redis_password}@127.0.0.1:{redis_port}/1",
        STORAGE_TYPE="opendal",
        OPENDAL_SCHEME="fs",
        OPENDAL_FS_ROOT=str(storage),
        CONSOLE_API_URL=base,
        CONSOLE_WEB_URL=base,
        SERVICE_API_URL=base,
        APP_WEB_URL=base,
        FILES_URL=base,
        INTERNAL_FILES_URL=base,
        TRIGGER_URL=base,
        MARKETPLACE_ENABLED="false",
        ENABLE_CHECK_UPGRADABLE_PLUGIN_TASK="false",
        ENABLE_WORKFLOW_SCHEDULE_POLLER_TASK="false",
        PLUGIN_DAEMON_URL=f"http://127.0.0.1:{free_port()}",  # no daemon: the two apps need none
        LANG="C.UTF-8",
        LC_ALL="C.UTF-8",
        FLASK_APP="app.py",
    )
    extra = os.environ.get("WATCHDOG_UPSTREAMS_DIFY_ENV")
    if extra:
        env.update({k: v or "" for k, v in dotenv_values(extra).items()})
    return env


def _child_env(venv: Path, settings: dict[str, str]) -> dict[str, str]:
    env = {k: os.environ[k] for k in ("HOME", "TZ") if k in os.environ}
    env["PATH"] = f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    env["VIRTUAL_ENV"] = str(venv)
    env.update(settings)
    return env


def migrate(state: State, root: Path, venv: Path, settings: dict[str, str], log: Path) -> None:
    psql(state, "postgres", "-c", "CREATE DATABASE dify", log=log, step="Dify create database")
    say("Dify: flask db upgrade")
    argv = [str(venv / "bin" / "python"), "-m", "flask", "db", "upgrade"]
    run("Dify flask db upgrade", argv, log=log, timeout=900, cwd=root, env=_child_env(venv, settings))


def start(
    state: State, root: Path, venv: Path, settings: dict[str, str], port: int, log: Path, rundir: Path
) -> Proc:
    rundir.mkdir(parents=True, exist_ok=True)
    (rundir / "dify.env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))  # for the record
    argv = [str(venv / "bin" / "python"), "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    argv += ["--worker-class", "gevent", "--worker-connections", "10", "--timeout", "200", "app:app"]
    say(f"Dify: start gunicorn on 127.0.0.1:{port}")
    return spawn(state, "dify", argv, log=log, cwd=root, env=_child_env(venv, settings))


def wait_ready(proc: Proc, health_url: str, log: Path, timeout: float = 300) -> None:
    def ready() -> bool:
        check_running(proc, "Dify start")
        answer = httpx.get(health_url, timeout=5)
        return answer.status_code == 200 and answer.json().get("status") == "ok"

    wait_for("Dify start", ready, timeout=timeout, log=log)
