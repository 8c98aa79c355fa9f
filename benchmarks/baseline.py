"""Target 1, the baseline as commonly deployed: a Docker HEALTHCHECK on Evolution's `GET /` (every 30 s,
3 retries) and a poller that restarts unhealthy containers every 5 s (like docker-autoheal), on the real
Docker engine. Every emulator fault is injected, each into its own container (pair), all at once; we
record which containers turn unhealthy, when they are restarted and when they answer again.

The healthcheck timings are divided by SCALE so the run stays short; since the baseline's reaction is
set by those timings, the real-time figure is the measured one times SCALE (both are reported)."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import httpx

from benchmarks import dockerbase
from benchmarks.recovery import CASES, Case
from benchmarks.report import Figure, Report
from watchdog.demo.emulators import DIFY_KEY, EVOLUTION_KEY, INSTANCES
from watchdog.demo.phases import Controls
from watchdog.serving import free_port

REAL_INTERVAL, REAL_TIMEOUT, RETRIES, REAL_POLL = 30.0, 30.0, 3, 5.0
SCALE = 10.0
NS = 1_000_000_000


@dataclass
class Pair:
    case: Case
    evolution: str  # container names
    dify: str = ""
    evolution_url: str = ""
    dify_url: str = ""
    injected: float = 0.0
    unhealthy: float | None = None
    restarted: float | None = None
    answering: float | None = None
    restarts: int = 0
    errors: list[str] = field(default_factory=list)


def _healthcheck(port: int, scale: float) -> dict[str, Any]:
    interval, timeout = REAL_INTERVAL / scale, REAL_TIMEOUT / scale
    return {
        "test": [
            "CMD",
            "/usr/bin/curl",
            "-fsS",
            "-o",
            "/dev/null",
            "--max-time",
            f"{timeout:g}",
            f"http://127.0.0.1:{port}/",
        ],
        "interval": int(interval * NS),
        "timeout": int(timeout * NS),
        "retries": RETRIES,
        "start_period": 0,
    }


def _start(client: docker.DockerClient, pair: Pair, index: int, scale: float) -> None:
    tag = f"evo-watchdog-bench-baseline-{os.getpid()}-{index}"
    evo_port = free_port()
    pair.evolution, pair.evolution_url = f"{tag}-evolution", f"http://127.0.0.1:{evo_port}"
    evo_args = [
        "-m",
        "watchdog",
        "sim",
        "evolution",
        "--port",
        str(evo_port),
        "--api-key",
        EVOLUTION_KEY,
        "--instances",
        ",".join(INSTANCES),
        "--traffic-interval",
        "1",
        "--contacts",
        "3",
    ]
    if pair.case.service == "dify" or pair.case.fault == "media_wedge":
        dify_port = free_port()
        pair.dify, pair.dify_url = f"{tag}-dify", f"http://127.0.0.1:{dify_port}"
        dockerbase.run_python(
            client,
            pair.dify,
            ["-m", "watchdog", "sim", "dify", "--port", str(dify_port), "--api-key", DIFY_KEY],
        )
        evo_args += ["--dify-url", pair.dify_url + "/v1", "--dify-key", DIFY_KEY, "--debounce", "0.1"]
    dockerbase.run_python(client, pair.evolution, evo_args, healthcheck=_healthcheck(evo_port, scale))


def _health(client: docker.DockerClient, name: str) -> str:
    state = client.api.inspect_container(name)["State"]
    return str(state.get("Health", {}).get("Status", "none"))


async def _answers(http: httpx.AsyncClient, url: str, path: str = "/") -> bool:
    try:
        return (await http.get(url + path, timeout=1.0)).status_code == 200
    except httpx.HTTPError:
        return False


async def _wait_all(
    http: httpx.AsyncClient, client: docker.DockerClient, pairs: list[Pair], seconds: float
) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        checks = [(p.evolution_url, "/") for p in pairs] + [
            (p.dify_url, "/health") for p in pairs if p.dify_url
        ]
        up = await asyncio.gather(*(_answers(http, url, path) for url, path in checks))
        healthy = all(
            await asyncio.to_thread(lambda: [_health(client, p.evolution) == "healthy" for p in pairs])
        )
        if all(up) and healthy:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"baseline containers not all up and healthy within {seconds:g}s")


async def _observe(client: docker.DockerClient, pairs: list[Pair], scale: float, window: float) -> None:
    """The autoheal poller (restart unhealthy containers every REAL_POLL/scale s) and our stopwatch."""
    poll = REAL_POLL / scale
    by_name = {p.evolution: p for p in pairs}
    next_poll = time.monotonic() + poll
    start = time.monotonic()
    end = start + window
    # every fault had the time to fail RETRIES checks (and be restarted); stop once those are back
    enough = start + (REAL_INTERVAL + REAL_TIMEOUT) / scale * (RETRIES + 1) + 2 * poll
    async with httpx.AsyncClient(trust_env=False) as http:
        while time.monotonic() < end:
            back = all(p.answering is not None for p in pairs if p.unhealthy is not None)
            if time.monotonic() > enough and back:
                break
            now = time.monotonic()
            unhealthy = await asyncio.to_thread(
                client.containers.list, filters={"label": dockerbase.LABEL, "health": "unhealthy"}
            )
            for container in unhealthy:
                pair = by_name.get(container.name)
                if pair is not None and pair.unhealthy is None:
                    pair.unhealthy = now - pair.injected
            if now >= next_poll:  # the poller's tick
                next_poll += poll
                for container in unhealthy:
                    pair = by_name.get(container.name)
                    if pair is None:
                        continue
                    await asyncio.to_thread(container.restart, timeout=10)
                    pair.restarts += 1
                    if pair.restarted is None:
                        pair.restarted = time.monotonic() - pair.injected
            for pair in pairs:
                if (
                    pair.restarted is not None
                    and pair.answering is None
                    and await _answers(http, pair.evolution_url)
                ):
                    pair.answering = time.monotonic() - pair.injected
            await asyncio.sleep(0.25)


async def _inject(pair: Pair, control: httpx.AsyncClient) -> None:
    controls = Controls(control, pair.evolution_url, pair.dify_url)
    pair.injected = time.monotonic()
    try:
        if pair.case.inject is not None:
            await pair.case.inject(controls)
        else:
            base = pair.evolution_url if pair.case.service == "evolution" else pair.dify_url
            await controls.fault(base, pair.case.fault, **pair.case.params)
    except httpx.HTTPError as exc:
        pair.errors.append(f"inject: {type(exc).__name__}")


async def _run(client: docker.DockerClient, pairs: list[Pair], scale: float, window: float) -> None:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as control:
        await _wait_all(control, client, pairs, 180.0)
        await asyncio.gather(*(_inject(p, control) for p in pairs))
    await _observe(client, pairs, scale, window)


def run(report: Report, workdir: Path, *, smoke: bool) -> None:
    scale = 30.0 if smoke else SCALE
    cases = (
        [c for c in CASES if c.service == "evolution" and c.fault in ("hang", "socket_closed")]
        if smoke
        else CASES
    )
    # at most: long enough for a hung Evolution to fail RETRIES checks, be restarted and answer again
    window = (REAL_INTERVAL + REAL_TIMEOUT) / scale * (RETRIES + 1) + REAL_POLL / scale + 15
    client = dockerbase.connect()
    pairs = [Pair(case, "") for case in cases]
    try:
        for index, pair in enumerate(pairs):
            _start(client, pair, index, scale)
        asyncio.run(_run(client, pairs, scale, window))
    finally:
        for pair in pairs:
            for name in (pair.evolution, pair.dify):
                if name:
                    dockerbase.remove(client, name)
        client.close()
    rows: list[dict[str, Any]] = []
    for p in pairs:
        rows.append(
            {
                "fault": p.case.label,
                "noticed_s (scaled)": None if p.unhealthy is None else round(p.unhealthy, 2),
                "noticed_s (real time)": None if p.unhealthy is None else round(p.unhealthy * scale, 1),
                "restarted_s (scaled)": None if p.restarted is None else round(p.restarted, 2),
                "answering again_s (scaled)": None if p.answering is None else round(p.answering, 2),
                "restarts": p.restarts,
                "note": "; ".join(p.errors),
            }
        )
    report.tables["Detection and repair: the baseline (Docker HEALTHCHECK + autoheal poller)"] = rows
    noticed = [r for r in rows if r["noticed_s (scaled)"] is not None]
    conditions = (
        f"real Docker engine; HEALTHCHECK curl GET / every {REAL_INTERVAL / scale:g} s, timeout "
        f"{REAL_TIMEOUT / scale:g} s, {RETRIES} retries (= 30 s/30 s/3 divided by {scale:g}); poller every "
        f"{REAL_POLL / scale:g} s (5 s / {scale:g}); each fault in its own emulator container(s), all "
        f"injected at once, observed up to {window:.0f} s"
    )
    report.add(
        Figure(
            "1 baseline",
            "faults the baseline noticed",
            f"{len(noticed)} of {len(rows)}",
            "",
            "",
            None,
            conditions + ": " + (", ".join(r["fault"] for r in noticed) or "none"),
        )
    )
    _compare(report, rows, smoke)


def _compare(report: Report, baseline: list[dict[str, Any]], smoke: bool) -> None:
    """The watchdog must notice every fault the baseline notices, sooner (same fault labels)."""
    watchdog = {r["fault"]: r for r in report.tables.get("Detection and repair: the watchdog", [])}
    if not watchdog:
        report.notes.append(
            "baseline comparison skipped: the watchdog section did not run in this invocation"
        )
        return
    verdicts = []
    for row in baseline:
        if row["noticed_s (scaled)"] is None:
            continue
        ours = watchdog.get(row["fault"], {}).get("detected_s")
        sooner = ours is not None and ours < row["noticed_s (scaled)"]
        verdicts.append(sooner)
        report.add(
            Figure(
                "1 baseline",
                f"{row['fault']}: watchdog vs baseline, noticed after",
                ours,
                "s",
                "sooner than the baseline",
                sooner if not smoke else None,
                f"baseline {row['noticed_s (scaled)']} s scaled ({row['noticed_s (real time)']} s real "
                "time); the watchdog's own detection, unscaled",
            )
        )
    if not verdicts:
        report.notes.append("the baseline noticed none of the faults, so there was nothing to beat")
