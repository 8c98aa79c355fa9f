"""Processes the harness starts, recorded in the state file as they start, so `down` stops exactly them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .common import HarnessError, state_dir


@dataclass
class Proc:
    name: str
    pid: int
    start: str  # /proc/<pid>/stat start time: a recycled pid is never taken for ours
    log: str


@dataclass
class State:
    values: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)
    postgres: dict[str, str] = field(default_factory=dict)
    complete: bool = False

    @property
    def path(self) -> Path:
        return state_dir() / "state.json"

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(self.path)

    @classmethod
    def load(cls) -> State | None:
        path = state_dir() / "state.json"
        if not path.is_file():
            return None
        raw = json.loads(path.read_text())
        procs = [Proc(**p) for p in raw.get("procs", [])]
        return cls(raw.get("values", {}), procs, raw.get("postgres", {}), bool(raw.get("complete")))


def start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] == "Z" else fields[19]


def alive(proc: Proc) -> bool:
    return start_time(proc.pid) == proc.start


def spawn(
    state: State,
    name: str,
    argv: Sequence[str],
    *,
    log: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Proc:
    """Start a long-running server in a session of its own (output to `log`) and record it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            child = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise HarnessError(f"start {name}", str(exc), log) from None
    proc = Proc(name, child.pid, start_time(child.pid) or "", str(log))
    child.returncode = 0  # it outlives us on purpose: no "still running" warning when the object goes
    state.procs.append(proc)
    state.save()
    return proc


def check_running(proc: Proc, step: str) -> None:
    if not alive(proc):
        raise HarnessError(step, f"{proc.name} (pid {proc.pid}) exited", Path(proc.log))


def stop(proc: Proc, timeout: float = 20.0) -> bool:
    """SIGTERM its process group, then SIGKILL after `timeout`; True when it is gone."""
    if not alive(proc):
        return True
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return True
        except PermissionError:
            os.kill(proc.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(proc.pid)
            if not alive(proc) and not _group_alive(proc.pid):
                return True
            time.sleep(0.2)
    return not alive(proc)


def _reap(pid: int) -> None:
    """Collect it when it is our own child (a failed `up` stopping what it started)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _group_alive(pgid: int) -> bool:
    """A live (not zombie) process is left in the group; zombies wait for init, which may be slow."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False
