"""The daily summary of the automation (the arbitrage plan's ``daily_summary``): trades, P&L, win rate, skips.

    owners = strategy_of(trades, decisions)                 # trade id -> strategy name
    row = daily_summary(day, trades, decisions, "pcs")      # one strategy ("" = the whole account)
    rows = day_summaries(day, trades, decisions)            # the account and every strategy active that day
    text = summaries_csv(rows); rows == summaries_from_csv(text)

Counting rules (one market day = an ET calendar date):

    trades_opened   trades whose first fill (``opened_ns``) falls on the day
    trades_closed   trades that went flat (``closed_ns``: a closing fill or the settlement) on the day
    wins / losses   closed-on-the-day trades with realized P&L > 0 / < 0 (a trade closed at exactly $0 is neither)
    realized_pnl    dollars: the realized P&L of the trades closed on the day, whole life, net of every commission
                    and fee (a trade's P&L is booked the day it closes; partial closes count on the final day)
    fees            dollars of commission + fees inside that figure (the same trades)
    skips           SKIP decisions of the strategy on the day (refused orders included: they say so)
    win_rate        wins / trades closed (NaN when none closed)

Which strategy a trade belongs to: the decision whose ``order_ref`` opened it (``trade.order_refs[0]``), else the
first decision naming one of its orders that is not the breaker's (hedges belong to ``"<name>/hedge"``).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time

from spx_core.domain.calendar import ET, from_ns, to_ns
from spx_core.portfolio.decisions import Action, TradeDecision
from spx_core.portfolio.trades import Trade

__all__ = ["CSV_FIELDS", "DailySummary", "SummaryError", "daily_summary", "day_summaries", "et_day", "is_exit_decision",
           "strategy_of",
           "summaries_csv", "summaries_from_csv"]

BREAKER = "breaker"


class SummaryError(ValueError):
    """A summary row (or CSV line) is malformed; the message names the field."""


@dataclass(frozen=True, slots=True)
class DailySummary:
    """One market day of one strategy ("" = the whole account); counts, dollars, and when it was computed.

    ``time_ns``: the latest event counted (a decision or a trade's open/close), or the day's ET midnight.
    """

    day: date
    strategy: str
    trades_opened: int = 0
    trades_closed: int = 0
    wins: int = 0
    losses: int = 0
    realized_pnl: float = 0.0
    fees: float = 0.0
    skips: int = 0
    time_ns: int = 0

    def __post_init__(self) -> None:
        for name in ("trades_opened", "trades_closed", "wins", "losses", "skips"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise SummaryError(f"daily summary {self.day} {self.strategy!r}: {name} {value!r} must be a "
                                   f"whole number >= 0")
        if self.wins + self.losses > self.trades_closed:
            raise SummaryError(f"daily summary {self.day} {self.strategy!r}: {self.wins} wins + {self.losses} "
                               f"losses is more than the {self.trades_closed} trades closed")

    @property
    def win_rate(self) -> float:
        """Wins per closed trade (0..1; NaN when none closed)."""
        return self.wins / self.trades_closed if self.trades_closed else math.nan


def et_day(time_ns: int) -> date:
    """The ET calendar date of a market-clock instant."""
    return from_ns(time_ns).astimezone(ET).date()


def is_exit_decision(decision: TradeDecision) -> bool:
    """An exit (the monitor's or the breaker's close), TRADE or refused: its first reason names the rule."""
    return decision.strategy == BREAKER or (bool(decision.reasons) and decision.reasons[0].startswith(
        ("take_profit:", "stop_loss:", "regime:", "dte:", "time:", "breaker:")))


def strategy_of(trades: Iterable[Trade], decisions: Iterable[TradeDecision]) -> dict[int, str]:
    """Trade id -> the strategy whose decision opened it (trades no decision names are left out)."""
    by_ref: dict[str, TradeDecision] = {}
    for d in decisions:
        if d.traded and d.order_ref is not None:
            by_ref.setdefault(d.order_ref, d)
    out: dict[int, str] = {}
    for trade in trades:
        refs = trade.order_refs
        opening = by_ref.get(refs[0]) if refs else None
        if opening is None:  # the opening ref is not an automation decision: any non-exit decision naming it
            opening = next((by_ref[r] for r in refs if r in by_ref and not is_exit_decision(by_ref[r])), None)
        if opening is not None:
            out[trade.id] = opening.strategy
    return out


def daily_summary(day: date, trades: Iterable[Trade], decisions: Iterable[TradeDecision], strategy: str = "", *,
                  time_ns: int | None = None) -> DailySummary:
    """The summary of ``day`` for ``strategy`` ("" = every trade and decision); rules in the module docstring."""
    trades = list(trades)
    decisions = list(decisions)
    if strategy:
        owners = strategy_of(trades, decisions)
        trades = [t for t in trades if owners.get(t.id) == strategy]
        decisions = [d for d in decisions if d.strategy == strategy]
    opened = [t for t in trades if t.opened_quantity > 0 and et_day(t.opened_ns) == day]
    closed = [t for t in trades if t.status == "closed" and t.closed_ns is not None
              and et_day(t.closed_ns) == day]
    todays = [d for d in decisions if et_day(d.time_ns) == day]
    times = [t.opened_ns for t in opened] + [t.closed_ns for t in closed] + [d.time_ns for d in todays]
    midnight = to_ns(datetime.combine(day, time(0), tzinfo=ET))
    return DailySummary(
        day=day, strategy=strategy, trades_opened=len(opened), trades_closed=len(closed),
        wins=sum(1 for t in closed if t.realized_pnl > 0), losses=sum(1 for t in closed if t.realized_pnl < 0),
        realized_pnl=math.fsum(t.realized_pnl for t in closed),
        fees=math.fsum(t.commission_fees for t in closed),
        skips=sum(1 for d in todays if d.action == Action.SKIP.value),
        time_ns=int(time_ns) if time_ns is not None else max(times, default=midnight))


def day_summaries(day: date, trades: Iterable[Trade], decisions: Iterable[TradeDecision], *,
                  time_ns: int | None = None) -> list[DailySummary]:
    """The account's row ("") and one per strategy active on ``day`` (a decision that day, or a trade it owns
    opened or closed that day; hedges as ``"<name>/hedge"``), by strategy name: what the app stores each day."""
    trades = list(trades)
    decisions = list(decisions)
    owners = strategy_of(trades, decisions)
    names = {d.strategy for d in decisions if et_day(d.time_ns) == day and d.strategy != BREAKER}
    for t in trades:
        touched = et_day(t.opened_ns) == day or (t.closed_ns is not None and et_day(t.closed_ns) == day)
        if touched and t.id in owners:
            names.add(owners[t.id])
    return [daily_summary(day, trades, decisions, name, time_ns=time_ns) for name in ["", *sorted(names)]]


#: CSV columns, in order (``win_rate`` is written for readers and recomputed on reading).
CSV_FIELDS = ("day", "strategy", "trades_opened", "trades_closed", "wins", "losses", "win_rate", "realized_pnl",
              "fees", "skips", "time_ns")


def summaries_csv(rows: Iterable[DailySummary]) -> str:
    """The rows as CSV text with a header (dollars and the win rate at full precision: ``repr`` of the float)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for r in rows:
        rate = "" if math.isnan(r.win_rate) else repr(r.win_rate)
        writer.writerow([r.day.isoformat(), r.strategy, r.trades_opened, r.trades_closed, r.wins, r.losses, rate,
                         repr(r.realized_pnl), repr(r.fees), r.skips, r.time_ns])
    return out.getvalue()


def summaries_from_csv(text: str) -> list[DailySummary]:
    """Rows back from :func:`summaries_csv` text; raises :class:`SummaryError` naming the line and field."""
    reader = csv.DictReader(io.StringIO(text))
    missing = set(CSV_FIELDS) - set(reader.fieldnames or ())
    if missing:
        raise SummaryError(f"summary CSV lacks the columns {sorted(missing)}; export it with summaries_csv")
    out = []
    for line, rec in enumerate(reader, start=2):
        try:
            out.append(DailySummary(
                day=date.fromisoformat(rec["day"]), strategy=rec["strategy"],
                **{k: int(rec[k]) for k in ("trades_opened", "trades_closed", "wins", "losses", "skips", "time_ns")},
                realized_pnl=float(rec["realized_pnl"]), fees=float(rec["fees"])))
        except (TypeError, ValueError) as exc:
            raise SummaryError(f"summary CSV line {line}: {exc}") from None
    return out
