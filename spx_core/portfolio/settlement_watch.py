"""Settling expired positions from the market the terminal (or the backtester) watches.

:func:`~spx_core.portfolio.settlement.settle` needs the settlement price; this finds it in the stream of
underlying prices and says when it is due, with no wall clock (time is the market's):

- PM-settled roots (SPXW, XSP, SPY): the last underlying price observed at or before the expiry-day close,
  accepted only when it was observed within ``tolerance_ns`` before the close (the close was watched).
- AM-settled SPX: the first underlying price observed at or after 09:30 ET on expiry day, within
  ``tolerance_ns`` after it (the opening print stands in for the Special Opening Quotation, which is computed
  from the constituents' opening prices; our feeds carry the index, not the SOQ itself).

End-of-day data (one snapshot a day, stamped at 15:45 or 16:15 ET) never watches the close within the
tolerance. For it, :meth:`SettlementWatch.add_official` takes the settlement value from the day's daily bar
once that bar is known (its close for PM-settled roots, its open for AM SPX): an observed price within the
tolerance is still preferred; the official value is the fall-back.

A position whose settlement price was not observed (the terminal was closed over the close, a replay skipped
it) is never settled at a guessed price: it stays open and :meth:`SettlementWatch.settle_due` lists it as
unresolved so the UI can say so.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass

from spx_core.domain.calendar import MarketCalendar
from spx_core.domain.contracts import OptionContract, Settlement
from spx_core.portfolio.positions import Position
from spx_core.portfolio.settlement import settle, settlement_instant_ns
from spx_core.strategies.structure import underlying_of

__all__ = ["SettlementDue", "SettlementWatch"]

_MINUTE_NS = 60 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class SettlementDue:
    """What :meth:`SettlementWatch.settle_due` found: fills and deliveries to book, and positions it cannot settle."""

    fills: tuple
    deliveries: tuple
    unresolved: tuple[OptionContract, ...]


class SettlementWatch:
    """Keeps the recent underlying prices and settles positions whose settlement instant has passed."""

    def __init__(self, *, calendar: MarketCalendar | None = None, tolerance_ns: int = 5 * _MINUTE_NS,
                 keep_ns: int = 5 * 24 * 60 * _MINUTE_NS) -> None:
        self._calendar = calendar
        self.tolerance_ns = int(tolerance_ns)
        self.keep_ns = int(keep_ns)
        self._times: dict[str, list[int]] = {}
        self._prices: dict[str, list[float]] = {}
        self._instants: dict[OptionContract, int] = {}
        self._official: dict[tuple[str, int], float] = {}  # (underlying, settlement instant) -> value

    def observe(self, underlying: str, time_ns: int, price: float) -> None:
        """Record the underlying's price at ``time_ns`` (market clock). Out-of-order times are ignored."""
        if not math.isfinite(price) or price <= 0:
            return
        times, prices = self._times.setdefault(underlying, []), self._prices.setdefault(underlying, [])
        if times and time_ns <= times[-1]:
            if time_ns == times[-1]:
                prices[-1] = float(price)
            return
        times.append(int(time_ns))
        prices.append(float(price))
        if time_ns - times[0] > 2 * self.keep_ns:  # trim now and then, not on every tick
            cut = bisect.bisect_left(times, time_ns - self.keep_ns)
            del times[:cut], prices[:cut]

    def add_official(self, underlying: str, instant_ns: int, price: float) -> None:
        """The settlement value of ``underlying`` at ``instant_ns`` from a source that knows it (a daily bar's
        close or open): used when no price was observed within the tolerance. Call it only once the value is
        known on the market clock (a daily bar at its 16:00 stamp), never earlier."""
        if math.isfinite(price) and price > 0:
            self._official[(underlying, int(instant_ns))] = float(price)

    def instant(self, contract: OptionContract) -> int:
        """When ``contract``'s value is fixed (UTC ns), cached."""
        found = self._instants.get(contract)
        if found is None:
            found = self._instants[contract] = settlement_instant_ns(contract, self._calendar)
        return found

    def price_for(self, contract: OptionContract) -> float | None:
        """The settlement price of ``contract`` from the observed prices, or None when it was not observed."""
        underlying = underlying_of(contract.root)
        times, prices = self._times.get(underlying, []), self._prices.get(underlying, [])
        instant = self.instant(contract)
        if contract.settlement is Settlement.AM:
            i = bisect.bisect_left(times, instant)
            ok = i < len(times) and times[i] - instant <= self.tolerance_ns
        else:
            i = bisect.bisect_right(times, instant) - 1
            ok = i >= 0 and instant - times[i] <= self.tolerance_ns
        return prices[i] if ok else self._official.get((underlying, instant))

    def next_instant(self, positions: Iterable[Position]) -> int | None:
        """The earliest settlement instant among open positions (None without any): nothing is due before."""
        instants = [self.instant(p.contract) for p in positions if p.is_open]
        return min(instants) if instants else None

    def settle_due(self, positions: Iterable[Position], now_ns: int) -> SettlementDue:
        """Settlement fills/deliveries for every open position whose instant is at or before ``now_ns`` and whose
        price was observed; the others whose instant passed are ``unresolved``."""
        fills, deliveries, unresolved = [], [], []
        for p in positions:
            if not p.is_open or self.instant(p.contract) > now_ns:
                continue
            price = self.price_for(p.contract)
            if price is None:
                awaiting_open = p.contract.settlement is Settlement.AM and \
                    now_ns - self.instant(p.contract) <= self.tolerance_ns
                if not awaiting_open:  # (the opening print may still come)
                    unresolved.append(p.contract)
                continue
            result = settle([p], underlying_prices={p.contract.root.value: price}, now_ns=now_ns,
                            calendar=self._calendar)
            fills += result.fills
            deliveries += result.deliveries
        return SettlementDue(tuple(fills), tuple(deliveries), tuple(unresolved))

