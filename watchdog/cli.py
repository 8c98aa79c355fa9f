"""`evo-watchdog` / `python -m watchdog`: run, check, maintenance, classify, sim, demo."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

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
    maintenance = sub.add_parser("maintenance", help="silence recovery on the running daemon for a while")
    window = maintenance.add_mutually_exclusive_group(required=True)
    window.add_argument("--minutes", type=float, help="silence recovery for this many minutes")
    window.add_argument("--end", action="store_true", help="end the silence now")
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

        return run_demo(seconds=args.seconds, json_path=args.json)
    try:
        settings = load_settings(args.env_file)
    except ConfigError as exc:
        print(f"evo-watchdog: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    if args.command == "maintenance":
        return set_maintenance(settings, minutes=None if args.end else args.minutes)
    if args.command == "check":
        canary = args.canary or settings.canary_interval_seconds > 0
        return asyncio.run(check(settings, as_json=args.json, canary=canary))
    return asyncio.run(run(settings))


async def check(settings: Settings, *, as_json: bool, canary: bool = False) -> int:
    from watchdog.check import run_check
    from watchdog.report import render_json, render_table

    results, findings = await run_check(settings, SystemClock(), canary=canary)
    print(render_json(results, findings) if as_json else render_table(results, findings))
    return EXIT_UNHEALTHY if findings else EXIT_OK


def set_maintenance(settings: Settings, *, minutes: float | None) -> int:
    """Ask the running daemon (at WATCHDOG_LISTEN) to start or end a maintenance silence."""
    import httpx

    host, port = settings.listen
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{host}:{port}/api/maintenance"
    headers = {"Authorization": f"Bearer {settings.admin_token}"} if settings.admin_token else {}
    try:
        if minutes is None:
            response = httpx.delete(url, headers=headers, timeout=5)
        else:
            response = httpx.post(url, json={"minutes": minutes}, headers=headers, timeout=5)
    except httpx.HTTPError as exc:
        print(f"evo-watchdog: no daemon answers at {url}: {type(exc).__name__}", file=sys.stderr)
        return EXIT_UNHEALTHY
    if response.status_code != 200:
        print(f"evo-watchdog: {response.json().get('error', response.text)}", file=sys.stderr)
        return EXIT_UNHEALTHY
    until = response.json()["maintenance_until"]
    print("maintenance ended" if until is None else f"recovery silenced until {iso(until)}")
    return EXIT_OK


async def run(settings: Settings) -> int:
    from watchdog.app import Daemon, Watchdog
    from watchdog.probes.suite import http_client

    async with http_client(settings) as http:
        watchdog = Watchdog(settings, clock=SystemClock(), registry=CollectorRegistry(), http=http)
        await Daemon(watchdog).run()
    return EXIT_OK
