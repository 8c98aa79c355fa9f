"""Runs inside a test container: prints numbered upstream-format log lines until told to stop.

The counter lives in a bind-mounted file, so a recreated container continues the sequence; SIGTERM
finishes the current line first, so every number is printed exactly once across restarts.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

stopping = False


def on_term(signum: int, frame: object) -> None:
    global stopping
    stopping = True


def line(fmt: str, n: int) -> str:
    now = datetime.now()
    if fmt == "dify":
        stamp = now.strftime("%Y-%m-%d %H:%M:%S.") + f"{now.microsecond // 1000:03d}"
        return f"{stamp} INFO [Dummy-1] [app.py:10] - request served seq={n}"
    stamp = now.strftime("%a %b %d %Y %H:%M:%S")
    level, text = (
        ("ERROR", f"Error: Connection Closed seq={n}") if n % 10 == 9 else ("INFO", f"message seq={n}")
    )
    return f"[Evolution API] [loja]  1  -  {stamp}   {level:<7}  [ChannelStartupService]  [string] {text}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--format", choices=["evolution", "dify"], default="evolution")
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--quiet-file", type=Path, default=None, help="print nothing while this file exists")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    n = int(args.state.read_text()) if args.state.exists() else 0
    while not stopping:
        if args.quiet_file is None or not args.quiet_file.exists():
            print(line(args.format, n), flush=True)
            n += 1
            args.state.write_text(str(n))
        time.sleep(args.interval)
    sys.exit(0)


if __name__ == "__main__":
    main()
