"""What the demo tells at the end: the summary table, turnaround per kind (read back from the
watchdog's own histogram), and the same as JSON for `--json FILE`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from watchdog.demo.emulators import INSTANCES
from watchdog.demo.phases import Phase
from watchdog.metrics import sample_total

NOT_SEEN = "not seen"


@dataclass
class Outcome:
    """What was seen: never what was expected. A phase whose finding the watchdog did not report has
    `detected` None, and says so everywhere (an expected kind is never filled in)."""

    phase: Phase
    detected: str | None  # the finding kind that detected it, as the watchdog reported it
    detected_after: float | None
    recovered_after: float | None
    actions: list[str]  # "L2 restart_instance instance:loja ok"

    @property
    def seen(self) -> bool:
        return self.detected in self.phase.expected and self.detected_after is not None

    @property
    def repaired(self) -> bool:
        """A verified action at the expected level on the expected target."""
        level, target = f"L{self.phase.repaired_at}", self.phase.repaired_on
        return any(
            a.split()[0] == level and _target(a).startswith(target) and a.endswith(" ok")
            for a in self.actions
        )

    def overreach(self) -> list[str]:
        """Actions with more force than the fault needed: above its level (a page included), or a restart
        of something not at fault."""
        level, target = self.phase.repaired_at, self.phase.repaired_on
        return [
            a
            for a in self.actions
            if _level(a) > level or (_level(a) >= 2 and not _target(a).startswith(target))
        ]

    @property
    def ok(self) -> bool:
        """Seen, recovered, repaired at the expected level and target, and nothing more forceful."""
        return self.seen and self.recovered_after is not None and self.repaired and not self.overreach()

    def levels_ok(self) -> list[int]:
        return sorted({_level(a) for a in self.actions if a.endswith(" ok")})

    def as_dict(self) -> dict[str, object]:
        return {
            "fault": self.phase.title,
            "finding": self.detected,  # as reported by the watchdog; None: nothing seen
            "expected_findings": list(self.phase.expected),
            "seen": self.seen,
            "detected_after_seconds": _rounded(self.detected_after if self.seen else None),
            "recovered_after_seconds": _rounded(self.recovered_after),
            "actions": self.actions,
            "expected_level": self.phase.repaired_at,
            "expected_target": self.phase.repaired_on,
            "levels_ok": self.levels_ok(),
            "overreach": self.overreach(),
            "as_expected": self.ok,
        }


def _level(action: str) -> int:
    return int(action.split()[0][1:])  # "L2 restart_instance instance:loja ok" -> 2


def _target(action: str) -> str:
    return action.split()[2]  # a page's is the incident it pages for


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def distinct(lines: list[str]) -> list[str]:
    counts: dict[str, int] = {}
    for line in lines:
        counts[line] = counts.get(line, 0) + 1
    return [f"{line} x{n}" if n > 1 else line for line, n in counts.items()]


def print_summary(outcomes: list[Outcome], backend: str, restarts: dict[str, int]) -> None:
    print("Summary")
    print(
        f"  {'fault':<29} {'finding':<22} {'detected':>8}  {'repairs (level, action)':<42} {'recovered':>9}"
    )
    for o in outcomes:
        detected = f"{o.detected_after:.1f}s" if o.seen and o.detected_after is not None else "missed"
        recovered = f"{o.recovered_after:.1f}s" if o.recovered_after is not None else "no"
        done = [" ".join(a.split()[:2]) for a in o.actions if a.endswith(" ok")]
        repairs = ", ".join(distinct(done)) or "-"
        finding = o.detected or NOT_SEEN
        verdict = "✓" if o.ok else f"✗ {_shortfall(o)}"
        print(f"  {o.phase.title:<29} {finding:<22} {detected:>8}  {repairs:<42} {recovered:>9}  {verdict}")
    counted = ", ".join(f"{service} {n}x" for service, n in restarts.items())
    how = (
        "containers restarted through the Docker API"
        if backend == "docker"
        else ("emulator processes restarted by the command backend")
    )
    print(f"  {how}: {counted}")


def _shortfall(o: Outcome) -> str:
    """Why a phase did not go as expected, in a few words."""
    if not o.seen:
        return f"{' or '.join(o.phase.expected)} not seen"
    if not o.repaired:
        return f"no verified L{o.phase.repaired_at} on {o.phase.repaired_on}"
    if o.overreach():
        return "more force than needed: " + ", ".join(" ".join(a.split()[:3]) for a in o.overreach())
    return "not recovered"


def turnaround(registry: CollectorRegistry, threshold: float) -> dict[str, dict[str, float]]:
    """Per kind over the whole demo: replies, mean seconds, replies over the threshold."""
    view: dict[str, dict[str, float]] = {}

    def total(metric: str, kind: str) -> float:
        return sum(sample_total(registry, metric, instance=i, kind=kind) for i in INSTANCES)

    for kind in ("text", "media"):
        count = total("watchdog_turnaround_seconds_count", kind)
        mean = total("watchdog_turnaround_seconds_sum", kind) / count if count else 0.0
        view[kind] = {
            "replies": count,
            "mean_seconds": round(mean, 3),
            "over_threshold": total("watchdog_turnaround_breaches_total", kind),
        }
    return view


def print_turnaround(view: dict[str, dict[str, float]], threshold: float) -> None:
    print(f"\nBot turnaround (threshold {threshold:g}s), from watchdog_turnaround_seconds:")
    for kind, v in view.items():
        mean = f"{v['mean_seconds']:.2f}s mean" if v["replies"] else "no turns"
        over = int(v["over_threshold"])
        print(f"  {kind:<6} {int(v['replies']):>4} replies, {mean}, {over} over the threshold")


def heartbeat_legs(registry: CollectorRegistry) -> dict[str, dict[str, float]]:
    """Per bot instance and leg over the whole demo, from watchdog_e2e_seconds: mean seconds."""
    sums: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str], float] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name in ("watchdog_e2e_seconds_sum", "watchdog_e2e_seconds_count"):
                into = sums if sample.name.endswith("_sum") else counts
                into[(sample.labels["instance"], sample.labels["leg"])] = sample.value
    legs: dict[str, dict[str, float]] = {}
    for (instance, leg), count in counts.items():
        if count:
            legs.setdefault(instance, {})[leg] = round(sums.get((instance, leg), 0.0) / count, 3)
    return legs


def print_heartbeat(view: dict[str, Any], legs: dict[str, dict[str, float]]) -> None:
    """The heartbeat's last counted try per bot instance (as the status page shows it), and its legs'
    means over every heartbeat that came back."""
    print(f"\nEnd-to-end heartbeat ({view['prober']} every {view['interval_seconds']:g}s):")
    for name, entry in view["instances"].items():
        means = ", ".join(f"{leg} {seconds:.2f}s" for leg, seconds in legs.get(name, {}).items())
        result = entry.get("result", "none counted yet")
        print(f"  {name:<8} last try {result}; legs, mean of those that came back: {means or 'none'}")


def summary_json(
    outcomes: list[Outcome], *, backend: str, fast: bool, restarts: dict[str, int], turns: dict[str, Any]
) -> dict[str, Any]:
    return {
        "backend": backend,
        "fast": fast,
        "ok": all(o.ok for o in outcomes),
        "phases": [o.as_dict() for o in outcomes],
        "emulator_restarts": dict(restarts),
        "turnaround": turns,
    }
