"""
Statistics and table helpers shared by the benchmark reports.

Ratios are computed round by round (round *r* of structflow against round
*r* of the peer, which ran next to it in time); the median, minimum and
maximum of those ratios are what the tables show.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Results = dict[str, Any]


def values(results: Results, key: str, metric: str) -> list[float]:
    """Return the per-round values of *metric* for case *key* (empty when absent)."""
    case = results["cases"].get(key)
    if case is None:
        return []
    return [float(r[metric]) for r in case["rounds"] if isinstance(r.get(metric), int | float)]


def import_net(results: Results, name: str) -> list[float]:
    """Return per-round import time of *name* minus the interpreter's start time."""
    base = values(results, "import/python", "ms")
    own = values(results, f"import/{name}", "ms")
    return [max(o - b, 0.01) for o, b in zip(own, base, strict=False)]


@dataclass(frozen=True)
class Stat:
    """Median, min and max of some values."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, vals: Sequence[float]) -> Stat | None:
        if not vals:
            return None
        return cls(statistics.median(vals), min(vals), max(vals))


def paired(
    a: Sequence[float], b: Sequence[float], fn: Callable[[float, float], float]
) -> list[float]:
    """Apply *fn* to round-aligned pairs of *a* and *b*."""
    return [fn(x, y) for x, y in zip(a, b, strict=False) if x > 0 and y > 0]


def speedup_ns(sf: Sequence[float], peer: Sequence[float]) -> Stat | None:
    """structflow's speed-up when both are costs (ns per call): peer / structflow."""
    return Stat.of(paired(sf, peer, lambda s, p: p / s))


def speedup_rate(sf: Sequence[float], peer: Sequence[float]) -> Stat | None:
    """structflow's speed-up when both are rates (records/s): structflow / peer."""
    return Stat.of(paired(sf, peer, lambda s, p: s / p))


# --- formatting ----------------------------------------------------------------------


def fmt_ratio(stat: Stat | None) -> str:
    if stat is None:
        return "n/a"
    if f"{stat.low:.2f}" == f"{stat.high:.2f}":
        return f"{stat.median:.2f}x"
    return f"{stat.median:.2f}x ({stat.low:.2f}-{stat.high:.2f})"


def fmt_count(x: float) -> str:
    """Format a rate or count compactly: 1.2M, 154k, 860."""
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e4:
        return f"{x / 1e3:.0f}k"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def fmt_ns(x: float) -> str:
    """Format a duration given in ns: 190 ns, 6.1 µs, 1.16 ms, 2.3 s."""
    if x >= 1e9:
        return f"{x / 1e9:.2f} s"
    if x >= 1e6:
        return f"{x / 1e6:.2f} ms"
    if x >= 1e4:
        return f"{x / 1e3:.0f} µs"
    if x >= 1e3:
        return f"{x / 1e3:.1f} µs"
    return f"{x:.0f} ns"


def fmt_bytes(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 1 << 20:
        return f"{x / (1 << 20):.1f} MiB"
    if x >= 1 << 10:
        return f"{x / (1 << 10):.0f} KiB"
    return f"{x:.0f} B"


def fmt_stat(stat: Stat | None, fmt: Callable[[float], str]) -> str:
    if stat is None:
        return "n/a"
    low, high = fmt(stat.low), fmt(stat.high)
    if low == high:
        return fmt(stat.median)
    return f"{fmt(stat.median)} ({low}-{high})"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Return a Markdown table; the first column left-aligned, the rest right-aligned."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
    for row in rows:
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def label(results: Results, key: str) -> str:
    case = results["cases"].get(key)
    return str(case["label"]) if case else key


# --- targets -------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A speed target from the issue, checked on the median."""

    text: str
    stat: Stat | None
    threshold: float
    #: True when higher is better (a speed-up), False when lower is (a cost ratio).
    higher_is_better: bool
    unit: str = "x"

    @property
    def passed(self) -> bool | None:
        if self.stat is None:
            return None
        if self.higher_is_better:
            return self.stat.median >= self.threshold
        return self.stat.median <= self.threshold

    def row(self) -> list[str]:
        op = "≥" if self.higher_is_better else "≤"
        if self.unit == "x":
            measured = fmt_ratio(self.stat)
            wanted = f"{op} {self.threshold:g}x"
        else:
            measured = fmt_stat(self.stat, fmt_count) + f" {self.unit}"
            wanted = f"{op} {fmt_count(self.threshold)} {self.unit}"
        verdict = {True: "pass", False: "**FAIL**", None: "not measured"}[self.passed]
        return [self.text, measured, wanted, verdict]
