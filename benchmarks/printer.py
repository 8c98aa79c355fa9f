"""Runs inside a benchmark container: prints the log corpus, cycled, at a fixed rate for a bounded time.

Standalone (only the standard library): `python printer.py --rate 2000 --seconds 30 CORPUS`."""

from __future__ import annotations

import argparse
import itertools
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("corpus")
    parser.add_argument("--rate", type=int, default=2000, help="lines per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    with open(args.corpus, encoding="utf-8") as handle:
        lines = [line for line in handle.read().splitlines() if not line.startswith("#")]
    source = itertools.cycle(lines)
    tick = 0.01
    per_tick = max(1, round(args.rate * tick))
    started = time.monotonic()
    printed = 0
    while (now := time.monotonic()) - started < args.seconds:
        due = int((now - started) * args.rate) + per_tick
        if printed < due:
            chunk = [next(source) for _ in range(due - printed)]
            sys.stdout.write("\n".join(chunk) + "\n")
            sys.stdout.flush()
            printed = due
        time.sleep(tick)
    print(f"printer done: {printed} lines", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
