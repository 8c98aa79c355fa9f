"""`evo-watchdog sim evolution|dify --port N`: run one emulator in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from starlette.applications import Starlette

from watchdog.integrations import BY_NAME
from watchdog.serving import serve
from watchdog.sim.faults import FaultError


def add_sim_arguments(sim: argparse.ArgumentParser) -> None:
    sim.add_argument("service", choices=["evolution", "dify"])
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, required=True)
    sim.add_argument("--api-key", default=None, help="Evolution global key / Dify app key")
    sim.add_argument(
        "--fault", action="append", default=[], metavar="NAME[:K=V,...]", help="fault at start-up"
    )
    sim.add_argument("--version-string", default=None, help="upstream version to impersonate")
    evo = sim.add_argument_group("evolution")
    evo.add_argument("--instances", default="loja", help="comma list of instance names")
    evo.add_argument(
        "--bare-instances", default="", help="comma list of instances with no bot and no customers (a prober)"
    )
    evo.add_argument(
        "--number",
        action="append",
        default=[],
        metavar="INSTANCE=NUMBER",
        help="an instance's WhatsApp number",
    )
    evo.add_argument(
        "--peer",
        action="append",
        default=[],
        metavar="URL",
        help="another emulator its instances can write to",
    )
    evo.add_argument(
        "--dify-url", default="", help="Dify service API base (with /v1) for each instance's bot"
    )
    evo.add_argument("--dify-key", default="app-sim", help="the Dify app key the bots use")
    evo.add_argument(
        "--bot-type", default="chatBot", choices=["chatBot", "textGenerator", "agent", "workflow"]
    )
    evo.add_argument(
        "--integrations-off",
        default="",
        help="comma list of bot integrations whose *_ENABLED is false (upstream's default for all but "
        "EvolutionBot)",
    )
    evo.add_argument("--debounce", type=float, default=1.0, help="bot debounceTime in seconds")
    evo.add_argument("--webhook-url", default="", help="global webhook URL (WEBHOOK_GLOBAL_URL)")
    evo.add_argument("--webhook-by-events", action="store_true", help="WEBHOOK_BY_EVENTS=true")
    sim.add_argument("--state-file", type=Path, default=None, help="JSON file standing in for the database")
    evo.add_argument("--traffic-interval", type=float, default=0.0, help="simulated customers: seconds apart")
    evo.add_argument("--contacts", type=int, default=5)
    evo.add_argument("--media-ratio", type=float, default=0.2)
    evo.add_argument("--log-color", action="store_true", help="LOG_COLOR=true format")
    evo.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiplies upstream's own waits (reply delays); 1 = real",
    )
    dify = sim.add_argument_group("dify")
    dify.add_argument("--mode", default="chat", choices=["chat", "agent-chat", "advanced-chat", "completion"])


def run_sim(args: argparse.Namespace) -> int:
    try:
        app = _build(args)
    except (FaultError, ValueError) as exc:
        print(f"evo-watchdog sim: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(app, args.host, args.port))
    return 0


def _build(args: argparse.Namespace) -> Starlette:
    if args.service == "evolution":
        from watchdog.sim.runner import EvolutionOptions, build_evolution

        opts = EvolutionOptions(
            api_key=args.api_key or "evolution-sim-key",
            instances=tuple(i.strip() for i in args.instances.split(",") if i.strip()),
            server_url=f"http://{args.host}:{args.port}",
            dify_url=args.dify_url,
            dify_api_key=args.dify_key,
            bot_type=args.bot_type,
            debounce_seconds=args.debounce,
            webhook_url=args.webhook_url,
            webhook_by_events=args.webhook_by_events,
            faults=tuple(args.fault),
            state_file=args.state_file,
            traffic_interval=args.traffic_interval,
            contacts=args.contacts,
            media_ratio=args.media_ratio,
            version=args.version_string or "2.3.6",
            log_color=args.log_color,
            time_scale=args.time_scale,
            bare_instances=tuple(i.strip() for i in args.bare_instances.split(",") if i.strip()),
            numbers=tuple(_pair(item) for item in args.number),
            peers=tuple(args.peer),
            integrations_off=_integrations_off(args.integrations_off),
        )
        return build_evolution(opts)[1]
    from watchdog.sim.runner import DifyOptions, build_dify

    return build_dify(
        DifyOptions(
            api_keys=(args.api_key or "app-sim",),
            version=args.version_string or "1.12.1",
            mode=args.mode,
            faults=tuple(args.fault),
            state_file=args.state_file,
        )
    )[1]


def _integrations_off(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    can = sorted(name for name, integ in BY_NAME.items() if integ.enabled_by)
    for name in names:
        if name not in can:
            raise ValueError(f"--integrations-off {name!r}: expected some of {', '.join(can)}")
    return names


def _pair(item: str) -> tuple[str, str]:
    name, sep, number = item.partition("=")
    if not sep or not name or not number.lstrip("+").isdigit():
        raise ValueError(f"--number {item!r}: expected INSTANCE=NUMBER (digits)")
    return name, number.lstrip("+")
