"""Benchmark reporting: a table of figures with targets and ratios to a reference run in-process."""

from __future__ import annotations

import gc
import json
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Figure:
    group: str
    name: str
    value: float
    unit: str
    target: float | None = None  # pass when value <= target (same unit)
    reference: str | None = None  # name of the reference figure in the same group
    ratio: float | None = None  # value / reference value
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "ok" if self.value <= self.target else "MISS"


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)

    def add(self, group: str, name: str, value: float, unit: str, *, target: float | None = None,
            reference: str | None = None, note: str = "") -> Figure:
        fig = Figure(group, name, float(value), unit, target, reference, None, note)
        if reference is not None:
            ref = self.get(group, reference)
            if ref is not None and ref.value:
                fig.ratio = fig.value / ref.value
        self.figures.append(fig)
        return fig

    def get(self, group: str, name: str) -> Figure | None:
        return next((f for f in self.figures if f.group == group and f.name == name), None)

    def table(self) -> str:
        rows = [("group", "figure", "value", "unit", "target", "vs ref", "ok", "note")]
        for f in self.figures:
            rows.append((f.group, f.name, f"{f.value:.4g}", f.unit, "" if f.target is None else f"<= {f.target:g}",
                         "" if f.ratio is None else f"{f.ratio:.3g}x {f.reference}", f.verdict, f.note))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def write_json(self, path: Path) -> None:
        payload = {"machine": {"python": platform.python_version(), "platform": platform.platform(),
                               "processor": platform.processor()},
                   "figures": [asdict(f) | {"verdict": f.verdict} for f in self.figures]}
        path.write_text(json.dumps(payload, indent=2))


def best_of(fn: Callable[[], object], *, repeat: int = 5, number: int = 1) -> float:
    """Best wall time in seconds of ``number`` calls, over ``repeat`` runs (GC paused while timing)."""
    best = float("inf")
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            best = min(best, (time.perf_counter() - t0) / number)
    finally:
        if gc_was:
            gc.enable()
    return best
