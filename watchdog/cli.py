"""`evo-watchdog` / `python -m watchdog`: run, check, doctor, maintenance, incidents, ack, classify, sim,
demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from prometheus_client import CollectorRegistry

from watchdog import __version__
from watchdog.clock import SystemClock, iso
from watchdog.config import Settings
from watchdog.errors import ConfigError
from watchdog.logsetup import configure_logging

EXIT_OK, EXIT_UNHEALTHY, EXIT_CONFIG = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evo-watchdog", description=__doc__)
    parser.add_argument("--version", action="version", version=f"evo-watchdog {__version__}")
    parser.add_argument(
        "--env-file", type=Path, default=None, help="settings file (default: ./.env when it exists)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="the daemon: probe on a schedule, serve /metrics, /healthz, /api/status")
    check = sub.add_parser("check", help="probe everything once; exit 1 when anything is unhealthy")
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("--canary", action="store_true", help="also send the Dify canary prompt once")
    doctor = sub.add_parser(
        "doctor", help="known stuck modes of the stack, each with its fix; exit 0 ok, 1 warnings, 3 critical"
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument("--fix", action="store_true", help="apply the safe fixes (asks first)")
    doctor.add_argument("--yes", action="store_true", help="with --fix: do not ask")
    demo = sub.add_parser("demo", help="the watchdog against the built-in emulators, with faults injected")
    demo.add_argument(
        "--seconds",
        type=float,
        default=0.0,
        help="how long each phase waits for detection (default: per fault)",
    )
    demo.add_argument(
        "--json", type=Path, default=None, metavar="FILE", help="also write the summary as JSON"
    )
    demo.add_argument(
        "--fast", action="store_true", help="one fault per repair path, shorter holds (about 40 s)"
    )
    demo.add_argument(
        "--keep", action="store_true", help="afterwards stay up with the status page until Ctrl-C"
    )
    demo.add_argument(
        "--processes", action="store_true", help="child processes even when a Docker engine answers"
    )
    maintenance = sub.add_parser("maintenance", help="silence recovery on the running daemon for a while")
    window = maintenance.add_mutually_exclusive_group(required=True)
    window.add_argument("--minutes", type=float, help="silence recovery for this many minutes")
    window.add_argument("--end", action="store_true", help="end the silence now")
    incidents = sub.add_parser("incidents", help="recent incidents with their actions, from the journal")
    incidents.add_argument("--json", action="store_true", help="machine-readable output")
    incidents.add_argument("--limit", type=_positive_int, default=20, help="how many (default 20)")
    ack = sub.add_parser("ack", help="acknowledge a paged incident on the running daemon: it may act again")
    ack.add_argument("key", help="the incident's key, e.g. instance:loja (see `incidents`)")
    classify = sub.add_parser("classify", help="classify Evolution/Dify log lines from files or stdin")
    classify.add_argument("files", nargs="*", type=Path, help="log files (default: stdin)")
    classify.add_argument("--json", action="store_true", help="one JSON object per record")
    sim = sub.add_parser("sim", help="run an emulator: evolution or dify")
    from watchdog.sim.cli import add_sim_arguments

    add_sim_arguments(sim)
    return parser


def load_settings(env_file: Path | None) -> Settings:
    if env_file is None and Path(".env").is_file():
        env_file = Path(".env")
    return Settings.from_env(os.environ, env_file)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "sim":
        from watchdog.sim.cli import run_sim

        return run_sim(args)
    if args.command == "classify":
        from watchdog.classify_cmd import run_classify

        return run_classify(args.files, as_json=args.json)
    if args.command == "demo":
        from watchdog.demo import run_demo

        return run_demo(
            seconds=args.seconds,
            json_path=args.json,
            fast=args.fast,
            keep=args.keep,
            processes=args.processes,
            docker_url=os.environ.get("WATCHDOG_DOCKER_URL")
            or os.environ.get("DOCKER_HOST")
            or "unix:///var/run/docker.sock",
        )
    try:
        settings = load_settings(args.env_file)
    except ConfigError as exc:
        print(f"evo-watchdog: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    try:
        return _command(args, settings)
    except ConfigError as exc:  # found at start: the contact key file is unusable, say
        print(f"evo-watchdog: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _command(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "maintenance":
        return set_maintenance(settings, minutes=None if args.end else args.minutes)
    if args.command == "incidents":
        from watchdog.incidents_cmd import run_incidents

        return run_incidents(settings.state_path, as_json=args.json, limit=args.limit)
    if args.command == "ack":
        answer = call_daemon(settings, "POST", f"/api/incidents/{quote(args.key, safe='')}/ack")
        if answer is None:
            return EXIT_UNHEALTHY
        print(f"acknowledged {answer['key']}: {answer['next']}")
        return EXIT_OK
    if args.command == "check":
        canary = args.canary or settings.canary_interval_seconds > 0
        return asyncio.run(check(settings, as_json=args.json, canary=canary))
    if args.command == "doctor":
        from watchdog.doctor.command import run_doctor

        return asyncio.run(
            run_doctor(
                settings,
                as_json=args.json,
                fix=args.fix,
                yes=args.yes,
                stdin=sys.stdin,
                stdout=sys.stdout,
                stderr=sys.stderr,
            )
        )
    return asyncio.run(run(settings))


async def check(settings: Settings, *, as_json: bool, canary: bool = False) -> int:
    from watchdog.check import run_check
    from watchdog.report import render_json, render_table

    results, findings = await run_check(settings, SystemClock(), canary=canary)
    print(render_json(results, findings) if as_json else render_table(results, findings))
    return EXIT_UNHEALTHY if findings else EXIT_OK


def set_maintenance(settings: Settings, *, minutes: float | None) -> int:
    """Ask the running daemon (at WATCHDOG_LISTEN) to start or end a maintenance silence."""
    if minutes is None:
        answer = call_daemon(settings, "DELETE", "/api/maintenance")
    else:
        answer = call_daemon(settings, "POST", "/api/maintenance", {"minutes": minutes})
    if answer is None:
        return EXIT_UNHEALTHY
    until = answer["maintenance_until"]
    print("maintenance ended" if until is None else f"recovery silenced until {iso(until)}")
    return EXIT_OK


def call_daemon(
    settings: Settings, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """One admin request to the running daemon at WATCHDOG_LISTEN (with WATCHDOG_ADMIN_TOKEN when set);
    its JSON answer, or None after printing why it failed."""
    import httpx

    host, port = settings.listen
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{host}:{port}{path}"
    headers = {"Authorization": f"Bearer {settings.admin_token}"} if settings.admin_token else {}
    try:
        response = httpx.request(method, url, json=body, headers=headers, timeout=5)
    except httpx.HTTPError as exc:
        print(f"evo-watchdog: no daemon answers at {url}: {type(exc).__name__}", file=sys.stderr)
        return None
    try:
        answer = response.json()
    except ValueError:
        answer = {"error": f"HTTP {response.status_code}: {response.text[:200]}"}
    if response.status_code != 200:
        print(f"evo-watchdog: {answer.get('error', response.text)}", file=sys.stderr)
        return None
    return dict(answer)


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return int(text)


async def run(settings: Settings) -> int:
    from watchdog.app import Daemon, Watchdog
    from watchdog.probes.suite import http_client

    async with http_client(settings) as http:
        watchdog = Watchdog(settings, clock=SystemClock(), registry=CollectorRegistry(), http=http)
        await Daemon(watchdog).run()
    return EXIT_OK
