"""Real Prometheus, Alertmanager and watchdog processes on free loopback ports, for end-to-end tests.

Each runs as a child process with its files in a work directory, its stderr kept in a file (shown in
every assertion message), waits for readiness with a deadline, and is always killed on exit.
Configs are written as JSON, which is valid YAML, so no YAML library is needed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from tests.infra import free_port, require_binary

__all__ = ["Alertmanager", "Prometheus", "run_watchdog"]

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0  # generous: the CI machine may be loaded


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no stderr file)"
    return text[-limit:] if text else "(stderr empty)"


class _Child:
    """One child process: stderr to a file, readiness polled over HTTP, killed however the test ends."""

    def __init__(self, name: str, argv: Sequence[str], stderr_path: Path, **popen: Any) -> None:
        self.name = name
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("wb")
        try:
            self.process = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr, **popen
            )
        except BaseException:
            self._stderr.close()
            raise

    def diagnostics(self) -> str:
        return f"{self.name} (exit code {self.process.poll()}) stderr:\n{_tail(self.stderr_path)}"

    def wait_ready(self, url: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        with httpx.Client(timeout=2) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"{self.name} exited before it was ready; {self.diagnostics()}")
                try:
                    response = http.get(url)
                    if response.status_code == 200:
                        return
                    last = f"HTTP {response.status_code}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                time.sleep(0.1)
        raise AssertionError(
            f"{self.name} not ready at {url} within {timeout}s ({last}); {self.diagnostics()}"
        )

    def stop(self, grace: float = 10.0) -> None:
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(grace)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(grace)
        finally:
            self._stderr.close()


def _api_get(http: httpx.Client, url: str, child: _Child, **params: str) -> Any:
    try:
        response = http.get(url, params=params)
    except httpx.HTTPError as exc:
        raise AssertionError(f"GET {url} failed: {exc!r}; {child.diagnostics()}") from exc
    if response.status_code != 200:
        raise AssertionError(f"GET {url} {params}: HTTP {response.status_code} {response.text[:500]}")
    return response.json()


class _Server:
    """Shared context-manager plumbing for the two Prometheus programs."""

    url: str
    _child: _Child | None = None
    _http: httpx.Client | None = None

    def _start(self, name: str, argv: Sequence[str], workdir: Path) -> None:
        self._http = httpx.Client(timeout=10)
        self._child = _Child(name, argv, workdir / f"{name}.stderr.log")
        try:
            self._child.wait_ready(f"{self.url}/-/ready")
        except BaseException:
            self.close()
            raise

    @property
    def child(self) -> _Child:
        assert self._child is not None, "not started: use as a context manager"
        return self._child

    def get(self, path: str, **params: str) -> Any:
        assert self._http is not None, "not started: use as a context manager"
        return _api_get(self._http, f"{self.url}{path}", self.child, **params)

    def diagnostics(self) -> str:
        return self.child.diagnostics()

    def close(self) -> None:
        try:
            if self._child is not None:
                self._child.stop()
        finally:
            if self._http is not None:
                self._http.close()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Prometheus(_Server):
    """A real Debian `prometheus` scraping `targets` (host:port) with `rule_files` loaded."""

    def __init__(
        self,
        workdir: Path,
        *,
        targets: Sequence[str],
        rule_files: Sequence[Path] = (),
        alertmanager: str | None = None,
        scrape_interval: str = "1s",
        evaluation_interval: str = "1s",
        job: str = "evolution-watchdog",
    ) -> None:
        self.workdir = Path(workdir) / "prometheus"
        self.binary = require_binary("prometheus", "prometheus")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "evaluation_interval": evaluation_interval,
            },
            "rule_files": [str(Path(p).resolve()) for p in rule_files],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": list(targets)}]}],
        }
        if alertmanager is not None:
            host = alertmanager.split("://", 1)[-1].rstrip("/")
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [host]}]}]}
        self.config = config

    def __enter__(self) -> Prometheus:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(json.dumps(self.config, indent=2))
        argv = [
            self.binary,
            f"--config.file={config_path}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            "--storage.tsdb.retention.time=1h",
            "--rules.alert.resend-delay=1s",
        ]
        self._start("prometheus", argv, self.workdir)
        return self

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; its result vector (AssertionError on an API error)."""
        body = self.get("/api/v1/query", query=expr)
        if body.get("status") != "success":
            raise AssertionError(f"query {expr!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, expr: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Poll `expr` until it returns a non-empty result."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{expr!r} stayed empty for {timeout}s; alerts: {self.alerts()}; "
                    f"targets: {self._target_health()}; {self.diagnostics()}"
                )
            time.sleep(0.25)

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.get("/api/v1/alerts")["data"]["alerts"]
        return alerts

    def _target_health(self) -> list[tuple[str, str, str]]:
        active = self.get("/api/v1/targets")["data"]["activeTargets"]
        return [(t["scrapeUrl"], t["health"], t.get("lastError", "")) for t in active]


class Alertmanager(_Server):
    """A real Debian `prometheus-alertmanager` with `config`, without clustering (no gossip port)."""

    def __init__(self, workdir: Path, config: Path) -> None:
        self.workdir = Path(workdir) / "alertmanager"
        self.binary = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
        self.config = Path(config)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Alertmanager:
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [
            self.binary,
            f"--config.file={self.config.resolve()}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            f"--storage.path={self.workdir / 'data'}",
        ]
        self._start("alertmanager", argv, self.workdir)
        return self

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.get("/api/v2/alerts")
        return alerts


@contextmanager
def run_watchdog(env: Mapping[str, str]) -> Iterator[str]:
    """`python -m watchdog run` with os.environ | env; yields its base URL once /metrics answers.

    WATCHDOG_LISTEN gets a free loopback port when `env` leaves it unset or asks for port 0, since the
    URL must be known to Prometheus before the process starts.
    """
    full = {**os.environ, **env}
    listen = full.get("WATCHDOG_LISTEN", "")
    host, _, port = listen.rpartition(":")
    if not listen or port == "0":
        host = host.strip("[]") or "127.0.0.1"
        full["WATCHDOG_LISTEN"] = f"{host}:{free_port()}"
        host, _, port = full["WATCHDOG_LISTEN"].rpartition(":")
    full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full.get("PYTHONPATH", "")]))
    bare = host.strip("[]")
    url = f"http://[{bare}]:{port}" if ":" in bare else f"http://{bare}:{port}"
    with tempfile.TemporaryDirectory(prefix="evo-watchdog-e2e-") as scratch:
        # Run from an empty directory so a developer's ./.env never leaks into the test.
        child = _Child(
            "watchdog",
            [sys.executable, "-m", "watchdog", "run"],
            Path(scratch) / "watchdog.stderr.log",
            env=full,
            cwd=scratch,
        )
        try:
            child.wait_ready(f"{url}/metrics")
            yield url
            if child.process.poll() is not None:
                raise AssertionError(f"watchdog died during the test; {child.diagnostics()}")
        finally:
            child.stop()
