"""PostgreSQL (a cluster of the harness's own, run as user postgres) and redis-server, on loopback."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
from pathlib import Path

from .common import HarnessError, run, say, wait_for
from .procs import Proc, State, alive, spawn, start_time, stop


def pg_bindir() -> Path:
    """Debian's newest /usr/lib/postgresql/<v>/bin, else wherever initdb is on PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise HarnessError(
            "PostgreSQL", "initdb not found: install Debian's postgresql (scripts/install-system-deps.sh)"
        )
    return Path(initdb).resolve().parent


def _as_owner(argv: list[str]) -> list[str]:
    """initdb refuses root (README): run the server tools as user postgres when we are root."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _own(path: Path) -> None:
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(path, user.pw_uid, user.pw_gid)


def start_postgres(state: State, base: Path, port: int, log: Path) -> None:
    bindir = pg_bindir()
    data, sock = base / "data", base / "run"
    for folder in (base, sock):
        folder.mkdir(parents=True, exist_ok=True)
        _own(folder)
    log.touch()
    _own(log)
    setup_log = log.with_name("postgres-setup.log")
    say(f"PostgreSQL: initdb and start on 127.0.0.1:{port}")
    initdb = [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
    run(
        "PostgreSQL initdb", _as_owner([*initdb, "--locale=C.UTF-8", "--no-sync"]), log=setup_log, timeout=180
    )
    options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    pg_ctl = [
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(log),
        "-o",
        options,
        "-w",
        "-t",
        "90",
        "start",
    ]
    state.postgres = {"bindir": str(bindir), "data": str(data), "port": str(port), "log": str(log)}
    state.save()
    run("PostgreSQL start", _as_owner(pg_ctl), log=setup_log, timeout=120)
    pid = (data / "postmaster.pid").read_text().splitlines()[0].strip()
    state.postgres.update(pid=pid, start=start_time(int(pid)) or "")
    state.save()


def psql(state: State, database: str, *args: str, log: Path, step: str, timeout: float = 300) -> None:
    bindir = Path(state.postgres["bindir"])
    argv = [str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"]
    run(
        step,
        [*argv, "-p", state.postgres["port"], "-U", "postgres", "-d", database, *args],
        log=log,
        timeout=timeout,
    )


def stop_postgres(state: State) -> bool:
    """pg_ctl stop -m fast, then SIGKILL; True when our postmaster (pid and start time) is gone."""
    info = state.postgres
    if not info.get("pid"):
        return True
    ours = Proc("postgres", int(info["pid"]), info.get("start", ""), info["log"])
    if not alive(ours):
        return True
    argv = [str(Path(info["bindir"]) / "pg_ctl"), "-D", info["data"], "-m", "fast", "-w", "-t", "30", "stop"]
    subprocess.run(_as_owner(argv), stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False)
    return stop(ours, timeout=5)


def start_redis(state: State, base: Path, port: int, password: str, log: Path) -> Proc:
    binary = shutil.which("redis-server")
    if binary is None:
        raise HarnessError("redis", "redis-server not found: install Debian's redis-server")
    base.mkdir(parents=True, exist_ok=True)
    say(f"redis: start on 127.0.0.1:{port}")
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--requirepass", password, "--dir", str(base)]
    argv += ["--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes"]
    proc = spawn(state, "redis", argv, log=log, cwd=base)

    def pong() -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            answer = b""
            while b"PONG" not in answer:
                chunk = conn.recv(256)
                if not chunk:
                    return False
                answer += chunk
            return True

    wait_for("redis start", pong, timeout=30, log=log)
    return proc
