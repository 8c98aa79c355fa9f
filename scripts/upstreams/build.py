"""Builds cached outside the repo, keyed by the source's hash: Evolution (npm ci, prisma generate, tsup)
and Dify's api (uv sync into a venv), each as ../shared/upstream/README.md says.

A build is made in builds/<key>-<pid>/ and published by renaming a symlink <key> onto it, so a half
build is never used (paths inside a build stay valid: nothing is moved after it is made)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .common import HarnessError, cache_dir, locked, run, say
from .sources import Source

NPM_TIMEOUT = 1800.0
UV_SYNC_TIMEOUT = 3600.0


def cached(kind: str, key: str, make: Callable[[Path, Path], Path]) -> Path:
    """The source root of a complete build of `kind` for `key`, making it first when absent."""
    base = cache_dir() / kind
    link = base / key[:24]
    if (link / "build.json").is_file():
        return _root(link)
    with locked(base / ".lock", timeout=UV_SYNC_TIMEOUT, step=f"{kind} build lock"):
        if (link / "build.json").is_file():
            return _root(link)
        builds = base / "builds"
        builds.mkdir(parents=True, exist_ok=True)
        live = {p.resolve() for p in base.iterdir() if p.is_symlink()}
        for stale in builds.iterdir():  # half builds left by a killed run (we hold the lock)
            if stale.resolve() not in live:
                shutil.rmtree(stale, ignore_errors=True)
        work = builds / f"{key[:24]}-{os.getpid()}"
        log = cache_dir() / "logs" / f"{kind}-{key[:24]}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        say(f"building {kind} (key {key[:12]}, log {log}); the first build takes minutes")
        started = time.monotonic()
        root = make(work, log)
        (work / "build.json").write_text(json.dumps({"root": root.name, "key": key, "at": time.time()}))
        tmp_link = base / f".{key[:24]}.{os.getpid()}"
        tmp_link.unlink(missing_ok=True)
        tmp_link.symlink_to(work.relative_to(base))
        tmp_link.replace(link)
        say(f"built {kind} in {time.monotonic() - started:.0f} s")
        return _root(link)


def _root(link: Path) -> Path:
    real = link.resolve()
    return real / str(json.loads((real / "build.json").read_text())["root"])


def _node_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HUSKY="0", npm_config_audit="false", npm_config_fund="false", CHECKPOINT_DISABLE="1")
    env["PRISMA_HIDE_UPDATE_MESSAGE"] = "1"
    env.pop("NODE_ENV", None)  # npm ci must install devDependencies (tsup, prisma)
    return env


def build_evolution(source: Source) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise HarnessError("Evolution build", "node and npm not found (Node.js 20 or newer is needed)")
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30, check=False)
    key = _digest(source.key(), "node", node.stdout.strip())

    def make(work: Path, log: Path) -> Path:
        root = source.lay_into(work)
        env = _node_env()
        run(
            "Evolution npm ci",
            ["npm", "ci", "--no-audit", "--no-fund"],
            log=log,
            timeout=NPM_TIMEOUT,
            cwd=root,
            env=env,
        )
        env_gen = dict(env)
        # README: both variables, or Prisma tries to download engines it never uses.
        env_gen["DATABASE_CONNECTION_URI"] = "postgresql://postgres@127.0.0.1:5432/evolution"
        env_gen["PRISMA_SCHEMA_ENGINE_BINARY"] = "/bin/true"
        schema = "prisma/postgresql-schema.prisma"
        run(
            "Evolution prisma generate",
            ["npx", "prisma", "generate", "--schema", schema],
            log=log,
            timeout=600,
            cwd=root,
            env=env_gen,
        )
        run("Evolution tsup", ["npx", "tsup"], log=log, timeout=1200, cwd=root, env=env)
        if not (root / "dist" / "main.js").is_file():
            raise HarnessError("Evolution tsup", "dist/main.js was not produced", log)
        return root

    return cached("evolution", key, make)


def pick_python() -> Path:
    """A local CPython Dify accepts (>=3.11,<3.13): WATCHDOG_UPSTREAMS_PYTHON, this one's base, or PATH."""
    given = os.environ.get("WATCHDOG_UPSTREAMS_PYTHON")
    candidates = (
        [given] if given else [getattr(sys, "_base_executable", sys.executable), "python3.12", "python3.11"]
    )
    for name in candidates:
        path = shutil.which(name) if name and os.sep not in name else name
        if not path:
            continue
        probe = subprocess.run(
            [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if probe.returncode == 0 and probe.stdout.strip() in {"3.11", "3.12"}:
            return Path(path).resolve()
    raise HarnessError("Dify python", "no Python 3.11 or 3.12 found (set WATCHDOG_UPSTREAMS_PYTHON)")


def uv_binary(python: Path) -> Path:
    """uv from PyPI, in a tool venv of its own in the cache (never in the project's .venv)."""

    def make(work: Path, log: Path) -> Path:
        venv = work / "uv"
        run("uv venv", [str(python), "-m", "venv", str(venv)], log=log, timeout=300)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "uv>=0.8"]
        run("uv install (pip)", pip, log=log, timeout=600)
        return venv

    root = cached("tools", _digest("uv>=0.8", str(python)), make)
    return root / "bin" / "uv"


def build_dify(source: Source) -> tuple[Path, Path]:
    """(source root, venv) of Dify's api."""
    python = pick_python()
    key = _digest(source.key(), str(python), "storage+tools")
    uv = uv_binary(python)

    def make(work: Path, log: Path) -> Path:
        root = source.lay_into(work)
        env = dict(os.environ)
        env.update(UV_PROJECT_ENVIRONMENT=str(work / "venv"), UV_PYTHON_DOWNLOADS="never")
        env.update(UV_CACHE_DIR=str(cache_dir() / "uv-cache"), UV_NO_PROGRESS="1")
        if Path("/etc/ssl/certs/ca-certificates.crt").is_file():
            env.setdefault("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
        argv = [str(uv), "sync", "--frozen", "--no-default-groups", "--group", "storage", "--group", "tools"]
        run(
            "Dify uv sync",
            [*argv, "--python", str(python)],
            log=log,
            timeout=UV_SYNC_TIMEOUT,
            cwd=root,
            env=env,
        )
        check = [str(work / "venv" / "bin" / "python"), "-c", "import flask, gunicorn, gevent, psycogreen"]
        run("Dify venv check", check, log=log, timeout=300, cwd=root)
        return root

    root = cached("dify", key, make)
    return root, root.parent / "venv"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()
