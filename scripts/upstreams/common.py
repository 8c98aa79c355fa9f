"""Paths, progress, errors and the bounded waits every step of the harness uses."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

# ../shared/upstream beside the checkout; a clone elsewhere (CI's clean clone) finds the workplace's copy
SHARED_CANDIDATES = (
    Path(__file__).resolve().parents[3] / "shared" / "upstream",
    Path("/work/shared/upstream"),
)


def cache_dir() -> Path:
    return Path(os.environ.get("WATCHDOG_UPSTREAMS_CACHE") or "/var/cache/evo-watchdog/upstreams")


def state_dir() -> Path:
    return Path(os.environ.get("WATCHDOG_UPSTREAMS_STATE") or "/tmp/evo-watchdog-upstreams")


def shared_dir() -> Path:
    """Where the archives and app DSLs are: WATCHDOG_UPSTREAMS_SHARED, else ../shared/upstream beside the
    checkout, else /work/shared/upstream (the first that exists; the first named in errors)."""
    given = os.environ.get("WATCHDOG_UPSTREAMS_SHARED")
    if given:
        return Path(given)
    return next((path for path in SHARED_CANDIDATES if path.is_dir()), SHARED_CANDIDATES[0])


class HarnessError(Exception):
    """A step failed: one line naming the step and the log to read."""

    def __init__(self, step: str, detail: str, log: Path | None = None) -> None:
        self.step, self.detail, self.log = step, detail, log
        where = f" (read {log})" if log else ""
        super().__init__(f"upstreams: {step} failed: {one_line(detail)}{where}")


def one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def say(message: str) -> None:
    """Progress, on stderr (stdout carries only KEY=VALUE lines)."""
    print(f"upstreams: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run(
    step: str,
    argv: Sequence[str],
    *,
    log: Path,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> None:
    """Run a command to completion, its output appended to `log`; a failure or timeout names both."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        try:
            proc = subprocess.run(
                list(argv),
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise HarnessError(step, f"timed out after {timeout:.0f} s", log) from None
        except OSError as exc:
            raise HarnessError(step, str(exc), log) from None
    if proc.returncode != 0:
        raise HarnessError(step, f"{argv[0]} exited {proc.returncode}", log)


def wait_for(
    step: str, check: Callable[[], bool], *, timeout: float, log: Path | None, every: float = 0.5
) -> None:
    """Poll `check` until true; HarnessError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except HarnessError:
            raise
        except Exception:
            pass
        if time.monotonic() >= deadline:
            raise HarnessError(step, f"not ready after {timeout:.0f} s", log)
        time.sleep(every)


@contextlib.contextmanager
def locked(path: Path, timeout: float, step: str) -> Iterator[None]:
    """An exclusive flock on `path` (one build or one up/down at a time), bounded wait."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise HarnessError(step, f"another run holds {path} for over {timeout:.0f} s") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
