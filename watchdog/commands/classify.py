"""`evo-watchdog classify [FILE...] [--json]`: classify log lines from files or stdin (e.g. `docker logs`)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from watchdog.signals.logrules import RULE_ABOUT, classify, records


def _lines(paths: Sequence[Path], stdin: TextIO) -> Iterator[str]:
    if not paths:
        yield from stdin
        return
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as handle:
            yield from handle


def run_classify(
    paths: Sequence[Path], *, as_json: bool, out: TextIO = sys.stdout, stdin: TextIO = sys.stdin
) -> int:
    """One result per record, then a count per rule (`about`: whose fault a rule's lines are evidence of,
    e.g. Dify's errors that Evolution printed; null when it is the printer's own)."""
    counts: Counter[str] = Counter()
    for record in records(_lines(paths, stdin)):
        result = classify(record)
        rule = result.rule or "-"
        counts[rule] += 1
        if as_json:
            print(
                json.dumps(
                    {
                        "rule": result.rule,
                        "about": RULE_ABOUT.get(result.rule or ""),  # the service the line is evidence about
                        "level": result.level,
                        "instance": result.instance,
                        "line": record,
                    }
                ),
                file=out,
            )
        else:
            head = record.split("\n", 1)[0]
            print(f"{rule:<26} {head[:200]}", file=out)
    summary = {rule: n for rule, n in sorted(counts.items()) if rule != "-"}
    if as_json:
        print(json.dumps({"summary": summary, "records": sum(counts.values())}), file=out)
    else:
        print(
            f"\n{sum(counts.values())} records; "
            + (", ".join(f"{r}: {n}" for r, n in summary.items()) or "no rule matched"),
            file=out,
        )
    return 0
