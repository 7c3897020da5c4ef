"""Expiry settlement: what an expired position turns into (``docs/market_rules.md``, "Settlement and hours").

- SPXW and XSP (PM-settled, European, cash): the official close at 16:00 ET on expiry day (13:00 on early-close
  days); each contract pays its intrinsic value against that close.
- SPX (AM-settled, European, cash): the Special Opening Quotation (SET) computed from the constituents' opening
  prices on expiry morning; trading stopped the business day before, so the position carries overnight gap risk
  to the open.
- SPY (American, physically settled in shares): OCC auto-exercises every option in the money by $0.01 or more at
  expiry. The option is recorded as closing at its intrinsic value and, in addition, a :class:`ShareDelivery`
  of 100 shares per contract at the settlement price (long call / short put: shares received; long put /
  short call: shares delivered). Closing at intrinsic plus shares valued at the close is the same money as
  paying the strike for the shares: ``+ (S - K) * 100 - S * 100 = - K * 100`` for a long call.
- Out of the money (or SPY in the money by less than $0.01): expires at 0.

Settlement fills carry no commission or fees: IBKR charges no commission on the exercise or assignment of US
stock and index options ("There is no IB commission associated with US stock and index security options",
https://ibkr.info/node/186, "Are there commissions associated with option exercise or assignment?"), and
cash settlement of an index option is not an exchange trade (no Cboe/OCC/ORF transaction fee).

Settlement prices are passed in per root (``underlying_prices``): ``{"SPX": SOQ, "SPXW": close, "XSP":
XSP close, "SPY": SPY close}`` (:func:`settlement_prices` builds it); an ``"<underlying>:<AM|PM>"`` key such as
``"SPX:AM"`` is read when the root's own key is absent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from spx_core.domain.calendar import MarketCalendar, default_calendar, to_ns
from spx_core.domain.contracts import OptionContract, Root, Settlement, settlement_for_root
from spx_core.execution.orders import Fill, Side
from spx_core.portfolio.positions import Position
from spx_core.strategies.structure import underlying_of

__all__ = ["SettlementError", "ShareDelivery", "SettlementResult", "settlement_price", "settlement_prices",
           "settlement_instant_ns", "intrinsic_value", "expiry_fills", "share_deliveries", "settle",
           "PHYSICAL_ROOTS", "AUTO_EXERCISE_THRESHOLD"]

#: Roots settled in shares (American ETF options); every other root here is cash-settled.
PHYSICAL_ROOTS = frozenset({Root.SPY})
#: OCC exercises an expiring equity option automatically when it is in the money by at least this (dollars).
AUTO_EXERCISE_THRESHOLD = 0.01


class SettlementError(ValueError):
    """A settlement price is missing or not a positive number."""


@dataclass(frozen=True, slots=True)
class ShareDelivery:
    """Shares received (+) or delivered (-) when a physically settled option is exercised or assigned.

    Attributes:
        symbol: the underlying ("SPY").
        shares: signed shares (+ received).
        price: dollars per share the delivery is booked at (the settlement price; see the module docstring).
        time_ns: the expiry instant (UTC ns).
        contract: the option that was exercised or assigned.
        exec_id: ``"exercise:<occ>"``.
    """

    symbol: str
    shares: int
    price: float
    time_ns: int
    contract: OptionContract
    exec_id: str

    @property
    def cash(self) -> float:
        """Dollars the delivery moves at ``price`` (shares received: negative)."""
        return -self.shares * self.price


@dataclass(frozen=True, slots=True)
class SettlementResult:
    fills: tuple[Fill, ...]
    deliveries: tuple[ShareDelivery, ...]


def settlement_price(root: Root | str, expiry: date, *, index_close: float | None = None,
                     index_open_soq: float | None = None) -> float:
    """The price a ``root`` option expiring on ``expiry`` settles to: the SOQ for AM-settled SPX, the close
    for PM-settled SPXW/XSP/SPY.

    Raises:
        SettlementError: the price that root needs was not given (or is not a positive number).
    """
    style = settlement_for_root(root)
    price, what = (index_open_soq, "index_open_soq (the Special Opening Quotation)") if style is Settlement.AM \
        else (index_close, "index_close (the official 16:00 ET close)")
    if price is None or not math.isfinite(price) or price <= 0:
        raise SettlementError(f"{Root(root).value} {expiry:%Y-%m-%d} is {style.value}-settled: pass {what}, "
                              f"got {price!r}")
    return float(price)


def settlement_prices(*, spx_close: float | None = None, spx_soq: float | None = None,
                      xsp_close: float | None = None, spy_close: float | None = None) -> dict[str, float]:
    """The ``underlying_prices`` mapping for :func:`expiry_fills` (roots whose price is given)."""
    prices = {Root.SPXW.value: spx_close, Root.SPX.value: spx_soq, Root.XSP.value: xsp_close,
              Root.SPY.value: spy_close}
    return {k: float(v) for k, v in prices.items() if v is not None}


def settlement_instant_ns(contract: OptionContract, calendar: MarketCalendar | None = None) -> int:
    """When the contract's value is fixed (UTC ns): 09:30 ET on expiry day (AM) or the expiry-day close (PM)."""
    cal = calendar or default_calendar()
    return to_ns(cal.expiry_instant(contract.expiry, contract.settlement))


def intrinsic_value(contract: OptionContract, price: float) -> float:
    """Points per contract the option is worth at ``price`` (to 1e-6 point: the settlement pays in cents)."""
    value = price - contract.strike if contract.is_call else contract.strike - price
    return round(max(value, 0.0), 6)


def _price_for(contract: OptionContract, prices: Mapping[str, float]) -> float | None:
    key = contract.root.value
    if key in prices:
        return prices[key]
    return prices.get(f"{underlying_of(contract.root)}:{contract.settlement.value}")


def _expired(positions: Iterable[Position], prices: Mapping[str, float], now_ns: int,
             calendar: MarketCalendar | None, missing: str) -> list[tuple[Position, float, int]]:
    """(position, settlement price, expiry instant) of every open position whose value is fixed by now."""
    if missing not in ("raise", "skip"):
        raise ValueError(f"missing must be 'raise' or 'skip', got {missing!r}")
    out = []
    lacking: set[str] = set()
    for p in positions:
        if not p.is_open:
            continue
        instant = settlement_instant_ns(p.contract, calendar)
        if instant > now_ns:
            continue
        price = _price_for(p.contract, prices)
        if price is None or not math.isfinite(price) or price <= 0:
            lacking.add(p.contract.root.value)
            continue
        out.append((p, float(price), instant))
    if lacking and missing == "raise":
        raise SettlementError(f"expired positions in {', '.join(sorted(lacking))} have no settlement price; pass "
                              f"underlying_prices[root] (settlement_prices(spx_close=..., spx_soq=..., ...))")
    return out


#: Dollars of binary-float slack in the auto-exercise comparison: 452.01 - 452 is 0.00999999999999 in floats.
_EXERCISE_SLACK = 1e-9


def _exercised(contract: OptionContract, price: float) -> bool:
    """SPY: OCC's auto-exercise rule, in the money by $0.01 or more.

    Compared as it is written, with only binary-float slack: a settlement price with fractions of a cent (a
    simulated close) in the money by $0.006 is *not* exercised. Rounding the difference to whole cents would
    exercise it (0.6 cent rounds up to 1), which is exactly what the threshold is there to exclude.
    """
    itm = price - contract.strike if contract.is_call else contract.strike - price
    return itm >= AUTO_EXERCISE_THRESHOLD - _EXERCISE_SLACK


def expiry_fills(positions: Iterable[Position], *, underlying_prices: Mapping[str, float], now_ns: int,
                 calendar: MarketCalendar | None = None, missing: str = "raise") -> list[Fill]:
    """Fills closing every open position whose settlement instant is at or before ``now_ns`` at its intrinsic
    value (0 when out of the money), timed at the settlement instant, ``exec_id`` ``"expiry:<occ>"``, with no
    commission or fees (module docstring).

    ``missing``: "raise" (default) refuses when an expired position's root has no price; "skip" leaves those
    positions open for a later call.
    """
    return list(settle(positions, underlying_prices=underlying_prices, now_ns=now_ns, calendar=calendar,
                       missing=missing).fills)


def share_deliveries(positions: Iterable[Position], *, underlying_prices: Mapping[str, float], now_ns: int,
                     calendar: MarketCalendar | None = None, missing: str = "raise") -> list[ShareDelivery]:
    """The share deliveries of the physically settled (SPY) positions :func:`expiry_fills` closes."""
    return list(settle(positions, underlying_prices=underlying_prices, now_ns=now_ns, calendar=calendar,
                       missing=missing).deliveries)


def settle(positions: Iterable[Position], *, underlying_prices: Mapping[str, float], now_ns: int,
           calendar: MarketCalendar | None = None, missing: str = "raise") -> SettlementResult:
    """Settlement fills and share deliveries together (see :func:`expiry_fills`)."""
    fills: list[Fill] = []
    deliveries: list[ShareDelivery] = []
    for p, price, instant in _expired(positions, underlying_prices, now_ns, calendar, missing):
        c = p.contract
        physical = c.root in PHYSICAL_ROOTS
        exercised = _exercised(c, price) if physical else True
        value = intrinsic_value(c, price) if exercised else 0.0
        # No commission or fees on settlement: IBKR charges none on exercise/assignment of US index and stock
        # options (https://ibkr.info/node/186) and a cash settlement is no exchange trade.
        fills.append(Fill(exec_id=f"expiry:{c.occ_symbol}", leg=0, contract=c,
                          side=Side.SELL if p.quantity > 0 else Side.BUY, quantity=abs(p.quantity),
                          price=value, time_ns=instant))
        if physical and exercised and value > 0:
            per_contract = c.multiplier * (1 if c.is_call else -1)  # shares per contract: 100 for SPY
            deliveries.append(ShareDelivery(symbol=underlying_of(c.root), shares=per_contract * p.quantity,
                                            price=price, time_ns=instant, contract=c,
                                            exec_id=f"exercise:{c.occ_symbol}"))
    return SettlementResult(tuple(fills), tuple(deliveries))
