"""The mixed upstream-format log corpus the classifier is tested on (tests/data/log_corpus.txt): its
record lines, without the '#' annotations, cycled to any length."""

from __future__ import annotations

import itertools
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "log_corpus.txt"


def corpus_lines(path: Path = CORPUS) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]


def cycled(count: int, path: Path = CORPUS) -> list[str]:
    return list(itertools.islice(itertools.cycle(corpus_lines(path)), count))
