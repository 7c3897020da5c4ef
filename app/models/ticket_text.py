"""The order ticket's words: figures, verdicts and order statuses as one-line texts.

Money is dollars for the whole order ("+$145", "unlimited", "–" when unknown); package prices are index
points per unit in the request convention; greeks are dollar greeks "now → after" the fill.
"""

from __future__ import annotations

import math
from typing import Any

from app.models.builder_text import money
from app.models.ticket_model import PackageQuote, TicketOrder
from app.models.ticket_value import Greeks, OrderFigures
from spx_core.execution.orders import OrderState, OrderStatus, OrderType, Side

__all__ = ["FIGURES", "figure_texts", "greeks_text", "order_line", "package_texts", "premium_text", "price",
           "status_text", "verdict_text"]

#: (key, name, tooltip) of the figures shown before sending, in display order.
FIGURES: tuple[tuple[str, str, str], ...] = (
    ("max_profit", "Max profit", "Best P&L at expiry after the premium at the limit (dollars, whole order)"),
    ("max_loss", "Max loss", "Worst P&L at expiry after the premium at the limit (dollars, whole order)"),
    ("margin", "Margin", "Reg-T / Cboe margin by the local rule (dollars, whole order)"),
    ("commission", "Commission", ("Broker commission + exchange, clearing and regulatory fees if every leg "
                                 "fills at its mid (FeeSchedule; the order minimum applies per order)")),
    ("what_if", "Broker what-if", "The broker's own margin and commission for this order before sending"),
    ("delta", "Delta $", "Dollar delta of the open positions now → after this order fills (per index point)"),
    ("gamma", "Gamma $/1%", "Dollar gamma now → after (change of dollar delta for a 1% move)"),
    ("vega", "Vega $/vol", "Dollar vega now → after (per vol point)"),
    ("theta", "Theta $/day", "Dollar theta now → after (per calendar day)"),
)


def price(points: float) -> str:
    return f"{points:,.2f}" if math.isfinite(points) else "–"


def premium_text(order: TicketOrder, limit: float) -> str:
    """``credit $145`` / ``debit $1,230`` for the whole order at ``limit`` ("" when unknown)."""
    if order.order_type is OrderType.MKT:
        return "at the market"
    if not math.isfinite(limit):
        return ""
    dollars = -order.side.sign * limit * order.quantity * order.legs[0].contract.multiplier
    if dollars == 0:
        return "even"
    return f"{'credit' if dollars > 0 else 'debit'} ${abs(dollars):,.0f}"


def _pair(before: float, after: float) -> str:
    return f"{money(before)} → {money(after)}"


def greeks_text(before: Greeks, after: Greeks) -> dict[str, str]:
    return {"delta": _pair(before.delta, after.delta), "gamma": _pair(before.gamma, after.gamma),
            "vega": _pair(before.vega, after.vega), "theta": _pair(before.theta, after.theta)}


def figure_texts(figures: OrderFigures, what_if: Any = None) -> dict[str, str]:
    """Text of every :data:`FIGURES` key (``what_if``: a broker ``WhatIf`` or None)."""
    charges = figures.commission + figures.fees
    texts = {
        "max_profit": money(figures.max_profit),
        "max_loss": money(-abs(figures.max_loss)) if not math.isinf(figures.max_loss) else "unlimited",
        "margin": money(figures.margin, signed=False),
        "commission": (f"${charges:,.2f} (${figures.commission:,.2f} + ${figures.fees:,.2f} fees)"
                       if math.isfinite(charges) else "–"),
        "what_if": "–",
    }
    if what_if is not None:
        texts["what_if"] = (f"margin {money(what_if.init_margin_change, signed=False)}, commission "
                            + (f"${what_if.commission:,.2f}" if math.isfinite(what_if.commission) else "–")
                            + f" ({what_if.source})"
                            + (f"; {what_if.warning}" if what_if.warning else ""))
    texts.update(greeks_text(figures.before, figures.after))
    return texts


def package_texts(quote: PackageQuote | None) -> dict[str, str]:
    if quote is None:
        return {k: "–" for k in ("bid", "ask", "mid", "natural")}
    return {"bid": price(quote.bid), "ask": price(quote.ask), "mid": price(quote.mid), "natural": price(quote.natural)}


def verdict_text(verdict: Any) -> tuple[bool, str]:
    """(ok, text) of a gate ``Verdict``: "ready: 8 checks passed" or its one-line refusal."""
    if verdict.ok:
        return True, f"ready: {len(verdict.passed)} checks passed"
    return False, verdict.message


def order_line(request: Any) -> str:
    """``SELL 2 x SPXW 2024-03-15 5700/5675 put vertical @ 1.45 LMT DAY``."""
    terms = "MKT" if request.limit is None else f"@ {request.limit:.2f} LMT"
    side = "BUY" if request.side is Side.BUY else "SELL"
    return f"{side} {request.quantity} x {request.name or 'order'} {terms} {request.tif.value}"


def status_text(state: OrderState) -> tuple[str, str]:
    """(colour key, one line) of an order's state: "ok", "warn" or "bad"."""
    ref = state.broker_order_id or state.ref
    s = state.status
    if s is OrderStatus.PENDING:
        return "warn", f"order {ref}: pending, waiting for the broker to acknowledge"
    if s is OrderStatus.SUBMITTED:
        return "ok", f"order {ref}: submitted, working at {state.limit if state.limit is not None else 'MKT'}"
    if s in (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED):
        done = "filled" if s is OrderStatus.FILLED else "partially filled"
        avg = state.avg_fill_price
        at = f" @ {avg:.2f}" if math.isfinite(avg) else ""
        costs = state.commission + state.fees
        return "ok", (f"order {ref}: {done} {state.filled} of {state.quantity}{at}, commission and fees "
                      f"${costs:,.2f}")
    if s is OrderStatus.REJECTED:
        return "bad", f"order {ref}: rejected: {state.reason or 'no reason given'}"
    return "warn", f"order {ref}: {s.value}" + (f": {state.reason}" if state.reason else "")
