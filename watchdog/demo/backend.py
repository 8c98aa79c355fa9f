"""Which emulators the demo runs (containers or child processes, and why), and its signal handling:
Ctrl-C or SIGTERM at any point still removes every container and ends every process."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from watchdog.demo.containers import ContainerEmulators, reachable_engine
from watchdog.demo.emulators import EmulatorSet, ProcessEmulators


def choose_backend(
    workdir: Path, traffic_interval: float, *, processes: bool, docker_url: str
) -> tuple[EmulatorSet, str]:
    """Containers when an engine answers (and --processes was not given), else child processes; and why."""
    if processes:
        return ProcessEmulators(workdir, traffic_interval=traffic_interval), "--processes asked for"
    client = reachable_engine(docker_url)
    if client is None:
        reason = f"no Docker engine answers at {docker_url}"
        return ProcessEmulators(workdir, traffic_interval=traffic_interval), reason
    emulators = ContainerEmulators(workdir, client, docker_url=docker_url, traffic_interval=traffic_interval)
    return emulators, f"a Docker engine answers at {docker_url}; --processes uses child processes instead"


@contextlib.contextmanager
def _handling(handler: Any, *signals: signal.Signals) -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():  # only the main thread may
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def terminate_as_interrupt() -> contextlib.AbstractContextManager[None]:
    """SIGTERM cleans up as Ctrl-C does (while the daemon runs, its own handler stops it first)."""
    return _handling(_interrupt, signal.SIGTERM)


def no_interrupts() -> contextlib.AbstractContextManager[None]:
    """A second Ctrl-C during clean-up must not leave a container or a process behind."""
    return _handling(signal.SIG_IGN, signal.SIGINT, signal.SIGTERM)
