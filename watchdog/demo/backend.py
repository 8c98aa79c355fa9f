"""Which emulators the demo runs (containers when the engine can run them, else child processes; and
why), and its signal handling: Ctrl-C or SIGTERM at any point still removes every container and ends
every process."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from watchdog.demo.containers import LABEL, ContainerEmulators, reachable_engine
from watchdog.demo.emulators import TIME_SCALE, EmulatorSet, ProcessEmulators
from watchdog.demo.enginecheck import ENGINE_ERRORS, engine_problem


def choose_backend(
    workdir: Path,
    traffic_interval: float,
    *,
    processes: bool,
    docker_url: str,
    time_scale: float = TIME_SCALE,
) -> tuple[EmulatorSet, str]:
    """Containers when an engine answers and runs a probe container as the emulators need (and
    --processes was not given), else child processes; and why, in one line."""

    def children() -> ProcessEmulators:
        return ProcessEmulators(workdir, traffic_interval=traffic_interval, time_scale=time_scale)

    if processes:
        return children(), "--processes asked for"
    client = reachable_engine(docker_url)
    if client is None:
        reason = f"no Docker engine answers at {docker_url}"
        return children(), reason
    emulators = ContainerEmulators(
        workdir, client, docker_url=docker_url, traffic_interval=traffic_interval, time_scale=time_scale
    )
    problem: str | None = "interrupted"
    try:
        problem = engine_problem(client, emulators.image, workdir, {LABEL: "1"})
    finally:
        if problem is not None:  # refused, or Ctrl-C / SIGTERM during the check: remove the image too
            with no_interrupts(), contextlib.suppress(*ENGINE_ERRORS):
                emulators.stop()
    if problem is None:
        return emulators, f"a Docker engine answers at {docker_url}; --processes uses child processes instead"
    reason = f"the Docker engine at {docker_url} answers but cannot run the demo's containers: {problem}"
    return children(), reason


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
