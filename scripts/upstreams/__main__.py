"""scripts/upstreams.sh up|down|env: build (cached), start on loopback, print KEY=VALUE lines; or stop."""

from __future__ import annotations

import secrets
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from . import build, datastores, dify, difyapps, evolution
from .common import HarnessError, free_port, locked, say, shared_dir, state_dir, wait_for
from .procs import State, alive, check_running, spawn, stop
from .sources import dify_source, evolution_source

ORDER = (
    "EVOLUTION_URL",
    "EVOLUTION_API_KEY",
    "DIFY_URL",
    "DIFY_API_KEY",
    "DIFY_FAIL_API_KEY",
    "DIFY_HEALTH_URL",
)
LOCK_TIMEOUT = 3 * 3600.0


def _lock() -> Path:
    return state_dir().with_name(state_dir().name + ".lock")


def print_values(values: dict[str, str]) -> None:
    names = [*ORDER, *sorted(k for k in values if k not in ORDER)]
    sys.stdout.write("".join(f"{k}={values[k]}\n" for k in names if k in values))
    sys.stdout.flush()


def answering(state: State) -> bool:
    """Both upstreams answer (and the fault server runs): an `up` only prints the values again."""
    values = state.values
    try:
        evo = httpx.get(
            f"{values['EVOLUTION_URL']}/instance/fetchInstances",
            headers={"apikey": values["EVOLUTION_API_KEY"]},
            timeout=5,
        )
        health = httpx.get(values["DIFY_HEALTH_URL"], timeout=5)
        return (
            evo.status_code == 200
            and health.json().get("status") == "ok"
            and all(alive(p) for p in state.procs)
        )
    except (httpx.HTTPError, KeyError, ValueError):
        return False


def teardown(state: State) -> bool:
    """Stop every recorded process, newest first, then PostgreSQL; True when all are gone."""
    gone = True
    for proc in reversed(state.procs):
        started = time.monotonic()
        if not stop(proc):
            say(f"{proc.name} (pid {proc.pid}) did not stop")
            gone = False
        elif time.monotonic() - started > 1:
            say(f"{proc.name} took {time.monotonic() - started:.0f} s to stop")
    if not datastores.stop_postgres(state):
        say(f"PostgreSQL (pid {state.postgres.get('pid')}) did not stop")
        gone = False
    return gone


def up() -> int:
    with locked(_lock(), LOCK_TIMEOUT, "up"):
        state = State.load()
        if state is not None and state.complete and answering(state):
            say(f"already up (state in {state_dir()})")
            print_values(state.values)
            return 0
        if state is not None:
            say("stopping a previous run that is no longer whole")
            teardown(state)
        shutil.rmtree(state_dir(), ignore_errors=True)
        with ThreadPoolExecutor(max_workers=2) as pool:
            evo_build = pool.submit(build.build_evolution, evolution_source())
            dify_build = pool.submit(build.build_dify, dify_source())
            evo_root = evo_build.result()
            dify_root, venv = dify_build.result()
        state = State()
        state.save()
        try:
            started = time.monotonic()
            state.values = start_all(state, evo_root, dify_root, venv)
            state.complete = True
            state.save()
            say(f"up in {time.monotonic() - started:.0f} s (state in {state_dir()})")
        except BaseException:
            say("stopping what this run started (logs kept in place)")
            teardown(state)
            raise
        print_values(state.values)
        return 0


def start_all(state: State, evo_root: Path, dify_root: Path, venv: Path) -> dict[str, str]:
    run, logs = state_dir(), state_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pg_port, redis_port, fault_port, evo_port, dify_port = (free_port() for _ in range(5))
    datastores.start_postgres(state, run / "pg", pg_port, logs / "postgres.log")
    redis_password = secrets.token_hex(16)
    datastores.start_redis(state, run / "redis", redis_port, redis_password, logs / "redis.log")

    fault_url = f"http://127.0.0.1:{fault_port}"
    scripts = Path(__file__).resolve().parents[1]
    fault = spawn(
        state,
        "fault",
        [sys.executable, "-m", "upstreams.fault", str(fault_port)],
        log=logs / "fault.log",
        cwd=scripts,
    )

    def fault_ready() -> bool:
        check_running(fault, "fault server start")
        return httpx.get(f"{fault_url}/ok", timeout=2).status_code == 200

    wait_for("fault server start", fault_ready, timeout=30, log=logs / "fault.log")

    evo_url, evo_key = f"http://127.0.0.1:{evo_port}", secrets.token_hex(16)
    evolution.create_schema(state, evo_root, logs / "evolution-setup.log")
    evo_proc = evolution.start(
        state,
        evo_root,
        run / "evolution",
        evolution.settings(evo_root, evo_port, pg_port, evo_key),
        logs / "evolution.log",
    )

    settings = dify.settings(
        dify_root, dify_port, pg_port, redis_port, redis_password, run / "dify" / "storage"
    )
    dify.migrate(state, dify_root, venv, settings, logs / "dify-setup.log")
    dify_proc = dify.start(state, dify_root, venv, settings, dify_port, logs / "dify.log", run / "dify")
    evolution.wait_ready(evo_proc, evo_url, evo_key, logs / "evolution.log")
    say("Evolution: fetchInstances answers")
    dify_url = f"http://127.0.0.1:{dify_port}"
    dify.wait_ready(dify_proc, f"{dify_url}/health", logs / "dify.log")
    say("Dify: /health ok; first-time setup and app imports")
    console, apps = difyapps.install_apps(
        dify_url, shared_dir() / "dify-apps", fault_url, logs / "dify-console.log"
    )
    return {
        "EVOLUTION_URL": evo_url,
        "EVOLUTION_API_KEY": evo_key,
        "DIFY_URL": f"{dify_url}/v1",
        "DIFY_API_KEY": apps["echo-chat"].key,
        "DIFY_FAIL_API_KEY": apps["midstream-fail"].key,
        "DIFY_HEALTH_URL": f"{dify_url}/health",
        "EVOLUTION_LOG": str(logs / "evolution.log"),
        "DIFY_LOG": str(logs / "dify.log"),
        "DIFY_FAULT_URL": fault_url,
        "DIFY_CONSOLE_URL": f"{dify_url}/console/api",
        "DIFY_CONSOLE_EMAIL": console.email,
        "DIFY_CONSOLE_PASSWORD": console.password,
        "DIFY_APP_ID": apps["echo-chat"].app_id,
        "DIFY_FAIL_APP_ID": apps["midstream-fail"].app_id,
        "UPSTREAMS_STATE": str(run),
    }


def down() -> int:
    with locked(_lock(), LOCK_TIMEOUT, "down"):
        state = State.load()
        gone = teardown(state) if state is not None else True
        if not gone:
            raise HarnessError("down", "some processes did not stop", state_dir() / "state.json")
        shutil.rmtree(state_dir(), ignore_errors=True)
        say("down: every process stopped, runtime data removed" if state else "down: nothing was up")
        return 0


def env() -> int:
    """Print the values of a harness that is up and answering; exit 1 otherwise."""
    state = State.load()
    if state is None or not state.complete or not answering(state):
        say("not up")
        return 1
    print_values(state.values)
    return 0


def main(argv: list[str]) -> int:
    commands = {"up": up, "down": down, "env": env}
    if len(argv) != 1 or argv[0] not in commands:
        print("usage: scripts/upstreams.sh up|down|env", file=sys.stderr)
        return 2
    try:
        return commands[argv[0]]()
    except HarnessError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except (OSError, ValueError, httpx.HTTPError) as exc:
        print(f"upstreams: {argv[0]} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("upstreams: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
