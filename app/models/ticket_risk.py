"""The order ticket's risk what-if: VaR/ES and stresses of the book before and after the order fills.

Worker side (:func:`compute_what_if`, called from the ticket's job on the market the job already built):
``spx_core.risk.report.what_if_report`` on the open positions (the book) and the order's signed contracts (all
its units, ``order_legs``); the return history comes from the window's :class:`~app.models.history_cache.
HistoryCache` (read once per market day for the risk panel and the ticket, never past the feed's time).

GUI side (:func:`what_if_lines`): four figures, each "before → after (change)" in dollars:
VaR 95% and ES 95% 1-day as losses (historical when a history is available, else parametric; the method named),
the worst named stress and the spot x IV matrix's worst cell as P&L. A figure that is not available is "—" with
one line saying why (no history: how to import one). :func:`named_tooltip` lists every named stress.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from app.models.builder_text import money

__all__ = ["RISK_FIGURES", "RiskRequest", "RiskWhatIf", "compute_what_if", "named_tooltip", "pick_var", "what_if_lines"]

Book = tuple[tuple[Any, int], ...]  # (OptionContract, signed quantity)

#: (key, name, tooltip) of the what-if figures, in display order.
RISK_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("var95", "VaR 95% 1d", "One-day 95% value at risk of the book (loss, dollars) before → after this order fills"),
    ("es95", "ES 95% 1d", "One-day 95% expected shortfall (mean loss beyond the VaR) before → after"),
    ("named", "Worst stress", "The worst named stress P&L before → after (hover the block for every stress)"),
    ("matrix", "Worst spot×IV", "The worst cell of the spot x IV stress matrix (SPX ±10%, IV shocks) before → after"),
)


@dataclass(frozen=True, slots=True, eq=False)
class RiskRequest:
    """What the what-if reads (taken on the GUI thread): the book, the order's contracts, the history's source."""

    book: Book
    order: Book
    store: Any | None
    history: Any  # HistoryCache
    day: date  # the market day of the snapshots (ET) ...
    now_ns: int  # ... and their time: the history is read up to it
    past: Any | None = None  # the window's SimulatedPast: the simulator's past stands in for missing daily bars


@dataclass(frozen=True, slots=True, eq=False)
class RiskWhatIf:
    """(before, after) RiskReports of one book and order, or None with ``reason``; ``market`` they were valued on."""

    request: RiskRequest
    before: Any | None
    after: Any | None
    reason: str = ""  # why a figure (or all) is not available ("" when all are)
    market: Any = None


def compute_what_if(request: RiskRequest, market: Any) -> RiskWhatIf:
    """Worker thread: ``what_if_report`` of ``request`` on ``market`` (see the module docstring)."""
    from spx_core.risk.report import what_if_report
    from spx_core.strategies.market import MarketError

    history, why = request.history.get(request.store, request.day, request.now_ns, request.past)
    try:
        before, after = what_if_report(list(request.book), list(request.order), market, history)
    except (MarketError, ValueError) as exc:  # a leg the market cannot value: the rest of the ticket still shows
        return RiskWhatIf(request, None, None, f"risk what-if: {exc}", market)
    return RiskWhatIf(request, before, after, why, market)


def pick_var(report: Any) -> Any | None:
    """The VarFigures the ticket shows: historical when computed and finite, else parametric, else None."""
    for figures in (report.historical, report.parametric):
        if figures is not None and math.isfinite(figures.var95):
            return figures
    return None


def _change(before: float, after: float, *, loss: bool) -> str:
    if not (math.isfinite(before) and math.isfinite(after)):
        return "—"
    if loss:
        return f"{money(before, signed=False)} → {money(after, signed=False)} ({money(after - before)})"
    return f"{money(before)} → {money(after)} ({money(after - before)})"


def _worst_named(report: Any) -> tuple[str, float]:
    if not report.named:
        return "", math.nan
    name = min(report.named, key=report.named.__getitem__)
    return name, report.named[name]


def _worst_cell(report: Any) -> float:
    matrix = report.matrix
    return float(matrix.min()) if matrix.size and not math.isnan(matrix.min()) else math.nan


def _cell_name(report: Any) -> str:
    """"SPX -10% IV +10" of the matrix's worst cell ("" when the matrix has no figure)."""
    if not math.isfinite(_worst_cell(report)):
        return ""
    i, j = divmod(int(np.nanargmin(report.matrix)), report.matrix.shape[1])
    spot, vol = report.matrix_axes
    return f"SPX {float(spot[i]) * 100:+g}% IV {float(vol[j]):+g}"


def figures(what_if: RiskWhatIf) -> dict[str, tuple[float, float]]:
    """(before, after) dollars of each figure: var95/es95 as losses, named/matrix as P&L (NaN: not available)."""
    nan = (math.nan, math.nan)
    if what_if.before is None or what_if.after is None:
        return {"var95": nan, "es95": nan, "named": nan, "matrix": nan}
    b, a = pick_var(what_if.before), pick_var(what_if.after)
    var = {k: (float(getattr(b, k)), float(getattr(a, k))) if b is not None and a is not None else nan
           for k in ("var95", "es95")}
    return {**var, "named": (_worst_named(what_if.before)[1], _worst_named(what_if.after)[1]),
            "matrix": (_worst_cell(what_if.before), _worst_cell(what_if.after))}


def what_if_lines(what_if: RiskWhatIf | None) -> tuple[dict[str, str], str]:
    """(text of each :data:`RISK_FIGURES` key, the one-line note: the VaR method, or why a figure is missing)."""
    if what_if is None:
        return {k: "…" for k in ("var95", "es95", "named", "matrix")}, "computing…"
    values = figures(what_if)
    texts = {k: _change(*values[k], loss=k in ("var95", "es95")) for k in values}
    if what_if.before is None:
        return texts, what_if.reason
    name, _ = _worst_named(what_if.after)
    if name:  # the scenarios after the order (the ones that matter once it fills)
        texts["named"] += f" · {name}"
    cell = _cell_name(what_if.after)
    if cell:
        texts["matrix"] += f" · {cell}"
    var = pick_var(what_if.before)
    note = f"VaR/ES {var.method}, {var.n} days" if var is not None else \
        (what_if.reason or "VaR/ES not available: a leg has no implied vol to re-price with")
    if var is not None and var is what_if.before.parametric and what_if.reason:
        note += f" ({what_if.reason})"
    # a history that ends long before (or after) the snapshot: the figures stand, the trader should know
    stale = [n for n in what_if.before.notes if n.startswith(("history ends", "history runs to"))]
    return texts, "; ".join((note, *stale))


def named_tooltip(what_if: RiskWhatIf | None) -> str:
    """Every named stress, P&L before → after the order (dollars), one a line."""
    if what_if is None or what_if.before is None or what_if.after is None:
        return "Named stresses before → after the order: not computed yet"
    lines = ["Named stresses, P&L ($) before → after the order:"]
    for name, before in what_if.before.named.items():
        after = what_if.after.named.get(name, math.nan)
        lines.append(f"{name}: {_change(before, after, loss=False)}")
    return "\n".join(lines)
