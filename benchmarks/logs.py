"""Target 3: log classification in-process, and the watchdog's CPU while following a real container."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx

from benchmarks import dockerbase
from benchmarks.corpus import CORPUS, cycled
from benchmarks.procs import ROOT, Child, cpu_seconds, metric_value, shown, wait_http
from benchmarks.report import Figure, Report
from watchdog.serving import free_port
from watchdog.signals.logrules import RULES, classify, records

CLASSIFY_TARGET = 200_000
CPU_TARGET = 10.0


def classify_rate(count: int) -> tuple[float, int]:
    """Lines per second through record assembly and classification; best of three runs."""
    lines = cycled(count)
    best = 0.0
    matched = 0
    for _ in range(3):
        started = time.perf_counter()
        matched = sum(1 for record in records(lines) if classify(record).rule is not None)
        best = max(best, count / (time.perf_counter() - started))
    return best, matched


def profile_classify(count: int, out: Path) -> Path:
    from pyinstrument import Profiler

    lines = cycled(count)
    profiler = Profiler()
    with profiler:
        for record in records(lines):
            classify(record)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "classify-profile.txt"
    per_rule = ["", "Cost of each rule's pattern.search per record (the bulk of classify):"]
    assembled = list(records(lines))
    for rule in RULES:
        started = time.perf_counter()
        for record in assembled:
            rule.pattern.search(record)
        per_rule.append(f"  {rule.name:<28} {(time.perf_counter() - started) * 1e6 / len(assembled):6.2f} us")
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    path.write_text(text + "\n".join(per_rule) + "\n")
    return path


def run_classify(report: Report, out: Path, *, smoke: bool) -> None:
    count = 20_000 if smoke else 300_000
    rate, matched = classify_rate(count)
    met = rate >= CLASSIFY_TARGET
    report.add(
        Figure(
            "3 logs",
            "classification throughput",
            rate,
            "lines/s",
            f">= {CLASSIFY_TARGET:,}",
            met,
            f"in-process, records() + classify() over {count:,} lines of the mixed upstream corpus "
            f"({CORPUS.name}, cycled; {matched:,} records matched a rule), best of 3, one core",
        )
    )
    if not met and not smoke:
        path = profile_classify(100_000, out)
        report.notes.append(f"classification missed its target; profile: {shown(path)}")


def profile_daemon(pid: int, out: Path, seconds: int = 10) -> str:
    """py-spy (the `bench` extra) on the running daemon, every thread: collapsed stacks plus the top
    frames by own time."""
    binary = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(binary).exists():
        return "py-spy is not installed (pip install -e '.[bench]'), so no profile"
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "follow-profile.collapsed.txt"
    subprocess.run(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--format",
            "raw",
            "--output",
            str(raw),
        ],
        capture_output=True,
        timeout=seconds + 60,
        check=True,
    )
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        own[stack.rsplit(";", 1)[-1]] += int(count)
        total += int(count)
    top = [f"{n / total:6.1%}  {frame}" for frame, n in own.most_common(25)]
    summary = out / "follow-profile.txt"
    summary.write_text(
        f"py-spy, {seconds} s of the following daemon, {total} samples; frames by own time:\n"
        + "\n".join(top)
        + "\n"
    )
    return f"py-spy profile: {shown(summary)} (stacks: {shown(raw)})"


def run_follow_cpu(
    report: Report, workdir: Path, out: Path, *, smoke: bool, evolution_url: str, api_key: str
) -> None:
    """A container prints 2,000 lines/s; the daemon follows it through the Docker API; its CPU is sampled."""
    rate, window, warmup = 2000, (4.0 if smoke else 20.0), (2.0 if smoke else 4.0)
    client = dockerbase.connect()
    name = f"evo-watchdog-bench-printer-{free_port()}"
    port = free_port()
    env = {
        "EVOLUTION_URL": evolution_url,
        "EVOLUTION_API_KEY": api_key,
        "EVOLUTION_INSTANCES": "inst-0000",
        "EVOLUTION_CONTAINER": name,
        "WATCHDOG_LISTEN": f"127.0.0.1:{port}",
        "WATCHDOG_STATE_PATH": str(workdir / "follow-journal.db"),
        "WATCHDOG_DOCKER_URL": dockerbase.DOCKER_URL,
    }
    try:
        dockerbase.run_python(
            client,
            name,
            [
                str(ROOT / "benchmarks" / "printer.py"),
                str(CORPUS),
                "--rate",
                str(rate),
                "--seconds",
                str(warmup + window + 30),
            ],
        )
        with Child(["-m", "watchdog", "run"], workdir / "follow-daemon.log", env) as daemon:
            base = f"http://127.0.0.1:{port}"
            wait_http(base + "/healthz", process=daemon.process)
            time.sleep(warmup)
            lines_before = metric_value(httpx.get(base + "/metrics").text, "watchdog_log_lines_total")
            cpu_before, started = cpu_seconds(daemon.pid), time.monotonic()
            time.sleep(window)
            elapsed = time.monotonic() - started
            lines = metric_value(httpx.get(base + "/metrics").text, "watchdog_log_lines_total") - lines_before
            dropped = metric_value(httpx.get(base + "/metrics").text, "watchdog_log_lines_dropped_total")
            cpu = (cpu_seconds(daemon.pid) - cpu_before) / elapsed * 100
            if cpu > CPU_TARGET and not smoke:
                report.notes.append(f"following missed its CPU target; {profile_daemon(daemon.pid, out)}")
    finally:
        dockerbase.remove(client, name)
        client.close()
    read_rate = lines / window
    report.add(
        Figure(
            "3 logs",
            "daemon CPU while following a container",
            cpu,
            "% of one core",
            f"<= {CPU_TARGET:g}",
            cpu <= CPU_TARGET and read_rate >= rate * 0.8,
            f"`evo-watchdog run` following a real container printing {rate:,} corpus lines/s through the "
            f"Docker API; read {read_rate:,.0f} lines/s, {dropped:.0f} dropped; CPU from /proc over "
            f"{window:g} s; also probing one emulated instance every 15 s",
        )
    )
