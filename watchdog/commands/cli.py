"""`evo-watchdog` / `python -m watchdog`: run, check, doctor, maintenance, incidents, ack, classify, sim,
demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry

from watchdog import __version__
from watchdog.clock import SystemClock
from watchdog.commands import EXIT_CONFIG, EXIT_OK, EXIT_UNHEALTHY
from watchdog.commands.admin import acknowledge, set_maintenance
from watchdog.config import Settings
from watchdog.errors import ConfigError
from watchdog.logsetup import configure_logging


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
        from watchdog.commands.classify import run_classify

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
        from watchdog.commands.incidents import run_incidents

        return run_incidents(settings.state_path, as_json=args.json, limit=args.limit)
    if args.command == "ack":
        return acknowledge(settings, args.key)
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
    from watchdog.commands.check import run_check
    from watchdog.commands.render import render_json, render_table

    results, findings = await run_check(settings, SystemClock(), canary=canary)
    print(render_json(results, findings) if as_json else render_table(results, findings))
    return EXIT_UNHEALTHY if findings else EXIT_OK


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
