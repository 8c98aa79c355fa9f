"""`python -m benchmarks [--smoke] [--only SECTION,...] [--out DIR]`: run the suite, write the results.

Sections: logs, scale (probing, idle memory, ingest, flood), follow (CPU while following a container),
faults (every emulated fault and a 30-minute soak, the watchdog at its defaults and the baseline, Docker
HEALTHCHECK + autoheal, at theirs, in real time).
Exit 0 when every section ran (a missed target is a figure, not a crash), 1 when one failed to run."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from benchmarks.report import Report

SECTIONS = ("logs", "scale", "follow", "faults")
RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="every section cut to seconds (CI)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma list of sections")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.md and latest.json go")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; known: {', '.join(SECTIONS)}")
    report = Report(smoke=args.smoke)
    failed = False
    with tempfile.TemporaryDirectory(prefix="evo-watchdog-bench-") as tmp:
        workdir = Path(tmp)
        for section in chosen:
            started = time.monotonic()
            print(f"== {section}", flush=True)
            try:
                _runner(section)(report, workdir, args.out, args.smoke)
            except Exception as exc:
                failed = True
                report.notes.append(f"section {section} did not run to the end: {type(exc).__name__}: {exc}")
                traceback.print_exc()
            print(f"   {section}: {time.monotonic() - started:.0f} s", flush=True)
    md, js = report.write(args.out)
    print(md.read_text())
    print(f"written: {md} {js}")
    return 1 if failed else 0


def _runner(section: str) -> Callable[[Report, Path, Path, bool], None]:
    if section == "logs":
        from benchmarks import logs

        return lambda report, workdir, out, smoke: logs.run_classify(report, out, smoke=smoke)
    if section == "scale":
        from benchmarks import scale

        def run_scale(report: Report, workdir: Path, out: Path, smoke: bool) -> None:
            count = 50 if smoke else 1000
            with scale.Emulator(workdir, count) as emulator:
                scale.run_probing(report, emulator, out, smoke=smoke)
                scale.run_idle(report, workdir, emulator, smoke=smoke)
                scale.run_ingest(report, workdir, emulator, out, smoke=smoke)
            with scale.Emulator(workdir, count, integrations_off=()) as every_integration_on:
                scale.run_probing(report, every_integration_on, out, smoke=smoke)

        return run_scale
    if section == "follow":
        from benchmarks import logs, scale

        def run_follow(report: Report, workdir: Path, out: Path, smoke: bool) -> None:
            with scale.Emulator(workdir, 1) as emulator:
                logs.run_follow_cpu(
                    report, workdir, out, smoke=smoke, evolution_url=emulator.url, api_key=scale.EVOLUTION_KEY
                )

        return run_follow
    from benchmarks import faults

    return lambda report, workdir, out, smoke: faults.run(report, smoke=smoke)


if __name__ == "__main__":
    sys.exit(main())
