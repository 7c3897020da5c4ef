"""The strategy builder's figures as text: names, tooltips (with units) and formatting of a result.

Net prices are index points per 1 unit of the structure, positive = credit ("3.45 cr"), negative =
debit ("1.20 db"); money is dollars per unit (points x 100); "unlimited" where a loss or profit has no
bound; "–" where a figure is not known (the reason line says why).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["FIGURES", "WIDE_FIGURES", "figure_texts", "money", "net_price"]

#: (key, name, tooltip) in display order (read row by row, four to a row on a wide panel).
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("bid", "Net bid", "What the structure sells for at the legs' bid/ask (points per unit; cr = credit)"),
    ("ask", "Net ask", "What the structure costs at the legs' bid/ask (points per unit; cr = credit, db = debit)"),
    ("mid", "Net mid", "Sum of the legs' mids x ratio (points per unit)"),
    ("natural", "Natural", "Sell at the bids, buy at the asks: the price you get crossing every leg's spread"),
    ("delta", "Delta $", "Dollar delta: P&L of a 1-point index move (dollars per unit)"),
    ("gamma", "Gamma $/1%", "Change of the dollar delta for a 1% index move (dollars per unit)"),
    ("vega", "Vega $/vol", "P&L of a 1 vol point rise of every IV (dollars per unit)"),
    ("theta", "Theta $/day", "P&L of one calendar day passing, all else equal (dollars per unit)"),
    ("max_profit", "Max profit", "Best P&L at expiry after the mid price (dollars per unit)"),
    ("max_loss", "Max loss", "Worst P&L at expiry after the mid price (dollars per unit)"),
    ("ror", "Return on risk", "Max profit / max loss"),
    ("margin", "Margin", "Cboe/Reg-T margin a broker would ask (dollars per unit)"),
    ("pop", "POP surface", "Probability of profit at expiry under the risk-neutral density of the fitted surface"),
    ("pop_ln", "POP lognormal", "Probability of profit under a lognormal at ATM IV (what most brokers show)"),
    ("ev", "EV surface", "Expected P&L at expiry under the fitted surface's density (dollars per unit)"),
    ("ev_ln", "EV lognormal", "Expected P&L at expiry under the lognormal at ATM IV (dollars per unit)"),
    ("shortfall", "Shortfall 5%", "Expected P&L in the worst 5% of outcomes under the fitted density (dollars)"),
    ("breakevens", "Breakevens", "Index prices where the P&L at expiry crosses zero (at the mid price)"),
    ("touch", "Touch", "Probability the index touches each short strike before expiry"),
)
#: Figures whose text grows with the legs: each gets a row of its own below the others.
WIDE_FIGURES = ("breakevens", "touch")


def net_price(points: float) -> str:
    """``3.45 cr`` (positive = credit), ``1.20 db``, ``0.00``, "–" when unknown."""
    if not math.isfinite(points):
        return "–"
    if points == 0:
        return "0.00"
    return f"{abs(points):,.2f} {'cr' if points > 0 else 'db'}"


def money(dollars: float, *, signed: bool = True) -> str:
    if math.isnan(dollars):
        return "–"
    if math.isinf(dollars):
        return "unlimited"
    sign = ("+" if dollars > 0 else "-" if dollars < 0 else "") if signed else ("-" if dollars < 0 else "")
    return f"{sign}${abs(dollars):,.0f}"


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%" if math.isfinite(x) else "–"


def _touch(structure: Any, touch: Any) -> str:
    """Touch probability per short strike (a mapping strike -> probability): ``5715P 31% · 5890C 24%``."""
    if not touch:
        return "–"
    rights = {leg.contract.strike: leg.contract.right.value for leg in structure.legs if leg.ratio < 0}
    return " · ".join(f"{k:g}{rights.get(k, '')} {_pct(float(p))}" for k, p in sorted(touch.items()))


def figure_texts(result: Any) -> tuple[dict[str, str], str]:
    """Text of every :data:`FIGURES` key for a BuilderResult, and the reason line ("" when all known)."""
    v, o, s = result.value, result.odds, result.structure
    texts = {key: "–" for key, *_ in FIGURES}
    reasons = []
    if v is not None:
        texts.update(bid=net_price(v.bid), ask=net_price(v.ask), mid=net_price(v.mid), natural=net_price(v.natural),
                     delta=money(v.delta_usd), gamma=money(v.gamma_usd_1pct), vega=money(v.vega_usd_volpt),
                     theta=money(v.theta_usd_day), max_profit=money(v.max_profit), max_loss=money(-abs(v.max_loss)),
                     ror=_pct(v.return_on_risk), margin=money(v.margin, signed=False),
                     breakevens=", ".join(f"{b:,.2f}" for b in v.breakevens) or "none")
        reasons += [text for text in (v.reason, v.approximated) if text]
    elif result.value_reason:
        reasons.append(result.value_reason)
    if o is not None:
        texts.update(pop=_pct(o.pop), pop_ln=_pct(o.pop_lognormal), ev=money(o.ev), ev_ln=money(o.ev_lognormal),
                     touch=_touch(s, o.touch), shortfall=money(o.expected_shortfall))
    if result.odds_reason:
        reasons.append(result.odds_reason)
    return texts, "; ".join(reasons)
