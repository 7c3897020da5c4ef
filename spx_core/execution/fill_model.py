"""The paper fill model: when an order fills against the quoted market, at what price, for how many units.

Prices follow the order convention of :mod:`spx_core.execution.orders`: the package price of legs
``(contract_i, ratio_i)`` is ``sum(ratio_i * price_i)`` per unit; a BUY pays it, a SELL receives it. Each leg
is *bought* when ``ratio_i * side`` is positive and *sold* otherwise.

Model price of the package (one per mode, :class:`FillMode`):
    natural     every bought leg at its ask, every sold leg at its bid (what crossing the spread costs);
    mid         every leg at its mid;
    mid_offset  every bought leg at ``mid + k * spread`` and every sold leg at ``mid - k * spread`` (the leg's
                full bid-ask spread, ``k = offset``, 0.30 by default as the SPX Tools plan's backtest):
                the package lands ``k x`` its own spread (``sum |ratio_i| * spread_i``) from its mid, on the
                adverse side; ``k = 0.5`` is the natural price.
A market order always uses the natural price, whatever the mode (it crosses the spread).

When a limit order fills (:meth:`FillModel.decide`):
    marketable  on the first market it sees, an order whose limit is at or through the model price fills at
                the better of the two: a BUY pays ``min(limit, model)``, a SELL receives ``max(limit, model)``;
    resting     an order a look found short of its limit rests there; when the model price later crosses the
                limit it fills *at the limit* (it is the resting side of the trade). The rest of an order that
                was through but capped by size stays aggressive: its next fill is again the better price.
The model price is first put on the grid it can print on, on the side adverse to the order: a combo on the cent
(a BUY's 1.075 mid pays 1.08), a single-leg order on its exchange tick (a BUY's 1.475 mid pays 1.50 on SPX).

Per-leg prices: every fill reports each leg's own price (on 0.01, as complex orders print their legs), and the
legs sum with their ratios *exactly* to the package price. They start at the model leg prices; a package
price away from the model (a limit fill) moves every leg by the same fraction of its price, in the direction
that moves the package; legs are rounded to the cent (half up) and the rounding residual goes to one leg,
the unit-ratio leg with the highest price (so it stays positive); with no unit-ratio leg, the two
smallest-ratio legs absorb it (their ratios are coprime after :func:`~spx_core.execution.orders.normalize_side`).

Size: with ``limit_by_size`` a fill takes at most ``min over legs of displayed size / |ratio|`` units (the bid
size for a sold leg, the ask size for a bought one), less what earlier fills already took from the same quote
(:class:`SizeBook`); the rest keeps working. A side quoted with a price but size 0 (files without sizes) counts
as ``missing_size`` contracts.

Bad quotes never fill: a leg not listed, with no price (zero or NaN) on the side it needs (both sides for the
mid modes), crossed (bid > ask), or carrying one of ``blocking_flags``; :meth:`FillModel.problem` names the leg.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from spx_core.domain.contracts import OptionContract
from spx_core.domain.quotes import QuoteFlag, describe_flags
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.execution.broker import MarketView
from spx_core.execution.orders import OrderType, Side
from spx_core.execution.ticks import round_to_tick
from spx_core.strategies.market import locate
from spx_core.strategies.structure import Leg, underlying_of

__all__ = ["FillDecision", "FillMode", "FillModel", "LegQuotes", "RowCache", "SizeBook", "allocate_leg_prices",
           "mid_price", "natural_price"]

#: Flags that stop a fill by default: the quote is not a market one could trade on.
DEFAULT_BLOCKING = QuoteFlag.CROSSED | QuoteFlag.NO_QUOTE | QuoteFlag.OUTSIDE_BOUNDS | QuoteFlag.STALE
_EPS_CENTS = 1e-6


class FillMode(StrEnum):
    NATURAL = "natural"
    MID = "mid"
    MID_OFFSET = "mid_offset"


@dataclass(frozen=True, slots=True)
class LegQuotes:
    """The current quotes of an order's legs, in leg order (points; sizes in contracts).

    ``rows`` is each leg's snapshot row (-1 when not listed) and ``books`` the (underlying, snapshot checksum)
    it was read from, so a :class:`SizeBook` can tell which displayed size a fill used up.
    """

    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    flags: np.ndarray
    rows: np.ndarray
    books: tuple[tuple[str, str], ...]
    missing: tuple[str, ...]  # per leg: "" or why there is no quote at all (no chain / not listed)

    @classmethod
    def from_market(cls, legs: Sequence[Leg], market: MarketView, row_cache: RowCache | None = None) -> LegQuotes:
        n = len(legs)
        rows = np.full(n, -1, np.int64)
        books: list[tuple[str, str]] = [("", "")] * n
        missing = [""] * n
        unders = [underlying_of(leg.contract.root) for leg in legs]
        snaps = {}
        for underlying in dict.fromkeys(unders):
            idx = [i for i, u in enumerate(unders) if u == underlying]
            snap = market.snapshot(underlying)
            if snap is None:
                for i in idx:
                    missing[i] = f"no {underlying} market data (start a market source)"
                continue
            wanted = [legs[i].contract for i in idx]
            found = row_cache.rows(snap, wanted) if row_cache is not None else locate(snap, wanted).tolist()
            snaps[underlying] = snap
            for i, row in zip(idx, found, strict=True):
                books[i] = (underlying, snap.checksum)
                rows[i] = row
                if row < 0:
                    missing[i] = f"not listed in the {underlying} chain of {snap.time:%Y-%m-%d %H:%M:%S} UTC"
        if len(snaps) == 1 and rows.min() >= 0:  # the usual case: one chain, every leg listed: gather at once
            c = next(iter(snaps.values())).columns
            return cls(c["bid"][rows], c["ask"][rows], c["bid_size"][rows].astype(np.int64),
                       c["ask_size"][rows].astype(np.int64), c["flags"][rows], rows, tuple(books), tuple(missing))
        out = {"bid": np.full(n, np.nan), "ask": np.full(n, np.nan), "bid_size": np.zeros(n, np.int64),
               "ask_size": np.zeros(n, np.int64), "flags": np.zeros(n, np.uint16)}
        for i, row in enumerate(rows.tolist()):
            if row >= 0:
                c = snaps[unders[i]].columns
                for name, arr in out.items():
                    arr[i] = c[name][row]
        return cls(out["bid"], out["ask"], out["bid_size"], out["ask_size"], out["flags"], rows, tuple(books),
                   tuple(missing))


class RowCache:
    """Snapshot rows of contracts, remembered per underlying until its snapshot changes (by checksum).

    Orders resting across many market updates ask for the same few contracts each time; one vectorized
    :func:`~spx_core.strategies.market.locate` per snapshot answers them all (warm it with every working
    order's contracts at once).
    """

    def __init__(self) -> None:
        self._rows: dict[str, tuple[str, dict[OptionContract, int]]] = {}

    def rows(self, snap: ChainSnapshot, contracts: Sequence[OptionContract]) -> list[int]:
        entry = self._rows.get(snap.underlying)
        if entry is None or entry[0] != snap.checksum:
            entry = (snap.checksum, {})
            self._rows[snap.underlying] = entry
        known = entry[1]
        missing = [c for c in dict.fromkeys(contracts) if c not in known]
        if missing:
            known.update(zip(missing, locate(snap, missing).tolist(), strict=True))
        return [known[c] for c in contracts]


def _buys(legs: Sequence[Leg], side: Side) -> np.ndarray:
    """True where the order buys the leg."""
    return np.array([leg.ratio * side.sign > 0 for leg in legs], dtype=bool)


def _ratios(legs: Sequence[Leg]) -> np.ndarray:
    return np.array([leg.ratio for leg in legs], dtype=np.int64)


def natural_price(legs: Sequence[Leg], side: Side, quotes: LegQuotes) -> float:
    """Package price crossing the spread: bought legs at the ask, sold legs at the bid (NaN if a side is missing)."""
    prices = np.where(_buys(legs, Side(side)), quotes.ask, quotes.bid)
    prices = np.where(prices > 0, prices, np.nan)
    return float(_ratios(legs) @ prices)


def mid_price(legs: Sequence[Leg], quotes: LegQuotes) -> float:
    """Package price with every leg at its mid (NaN when a leg lacks a bid or an ask)."""
    ok = (quotes.bid > 0) & (quotes.ask > 0)
    mids = np.where(ok, 0.5 * (quotes.bid + quotes.ask), np.nan)
    return float(_ratios(legs) @ mids)


def _cents(x: float) -> int:
    """Nearest whole cent, half up (not to even: 1.075 mid -> 1.08)."""
    return math.floor(x * 100 + 0.5 + _EPS_CENTS)


def allocate_leg_prices(ratios: Sequence[int], leg_prices: Sequence[float], package: float) -> tuple[float, ...]:
    """Leg prices on 0.01 with ``sum(ratio_i * leg_i) == package`` exactly (in cents); see the module docstring."""
    r = np.asarray(ratios, dtype=np.int64)
    p = np.asarray(leg_prices, dtype=np.float64)
    target = _cents(package)
    gap = target / 100 - float(r @ p)
    weight = np.maximum(p, 0.05)
    shifted = p + np.sign(r) * gap * weight / float(np.abs(r) @ weight)
    cents = np.array([max(_cents(x), 0) for x in shifted], dtype=np.int64)
    residual = target - int(r @ cents)
    if residual:
        units = [i for i in range(len(r)) if abs(r[i]) == 1]
        if units:
            j = max(units, key=lambda i: (cents[i], -i))
            cents[j] += residual * r[j]  # r[j] is +-1: its own inverse
        else:
            _two_leg_residual(r, cents, residual)
    return tuple(int(c) / 100 for c in cents)


def _two_leg_residual(r: np.ndarray, cents: np.ndarray, residual: int) -> None:
    order = sorted(range(len(r)), key=lambda i: (abs(r[i]), i))
    for a in order:
        for b in order:
            if b == a:
                continue
            for x in range(-abs(r[b]), abs(r[b]) + 1):  # r[a]*x + r[b]*y == residual
                if (residual - r[a] * x) % r[b] == 0:
                    cents[a] += x
                    cents[b] += (residual - r[a] * x) // r[b]
                    return
    raise ValueError(f"package price cannot be split over ratios {r.tolist()} on whole cents "
                     f"(residual {residual} cents); divide the ratios by their common factor")


@dataclass(frozen=True, slots=True)
class FillDecision:
    """What one look at the market gives an order: ``units`` (0 = no fill, ``reason`` says why) at ``price``."""

    units: int
    price: float = math.nan
    leg_prices: tuple[float, ...] = ()
    reason: str = ""
    through: bool | None = None  # the model price was at/through the limit (None: the quotes could not say)


class SizeBook:
    """Displayed size already taken from each quote of the current snapshots (per underlying).

    A quote's size is used up by fills until its snapshot changes: two orders on the same contract, or the
    rest of a partly filled order, do not fill twice against the same displayed size.
    """

    def __init__(self) -> None:
        self._taken: dict[str, tuple[str, dict[tuple[int, bool], int]]] = {}

    def taken(self, book: tuple[str, str], row: int, buy: bool) -> int:
        underlying, checksum = book
        current = self._taken.get(underlying)
        if current is None or current[0] != checksum:
            return 0
        return current[1].get((row, buy), 0)

    def take(self, book: tuple[str, str], row: int, buy: bool, quantity: int) -> None:
        underlying, checksum = book
        current = self._taken.get(underlying)
        if current is None or current[0] != checksum:
            current = (checksum, {})
            self._taken[underlying] = current
        current[1][(row, buy)] = current[1].get((row, buy), 0) + quantity


@dataclass(frozen=True, slots=True)
class FillModel:
    """How paper orders fill (module docstring).

    Attributes:
        mode: natural | mid | mid_offset (the package's model price).
        offset: ``k`` of mid_offset, a fraction of each leg's bid-ask spread in [0, 0.5] (0.5 = natural).
        limit_by_size: cap each fill at the displayed size (the rest keeps working).
        missing_size: contracts assumed for a side quoted with a price but no size (>= 1).
        blocking_flags: quote flags that stop a fill (:class:`~spx_core.domain.quotes.QuoteFlag`).
        per_leg: price a multi-leg package as if each leg were its own single-leg order (the backtester's
            "per leg" fills): each leg's model price goes on its exchange tick on the side adverse to that leg
            (a bought leg up, a sold leg down) and the package is their sum; False (per package): the combo's
            model price goes on the cent as a whole.
    """

    mode: FillMode = FillMode.NATURAL
    offset: float = 0.30
    limit_by_size: bool = True
    missing_size: int = 1
    blocking_flags: QuoteFlag = DEFAULT_BLOCKING
    per_leg: bool = False

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", FillMode(self.mode))
        except ValueError:
            raise ValueError(f"fill mode {self.mode!r} must be one of {[m.value for m in FillMode]}") from None
        if not 0.0 <= self.offset <= 0.5:
            raise ValueError(f"fill offset {self.offset!r} must be in [0, 0.5] (a fraction of the spread)")
        if self.missing_size < 1:
            raise ValueError(f"missing_size {self.missing_size!r} must be at least 1 contract")
        object.__setattr__(self, "blocking_flags", QuoteFlag(int(self.blocking_flags)))

    # --- prices ----------------------------------------------------------------------------------------------
    def leg_prices(self, legs: Sequence[Leg], side: Side, quotes: LegQuotes, *,
                   order_type: OrderType = OrderType.LMT) -> np.ndarray:
        """Model price of each leg (points per contract) for ``side`` (NaN where the quote cannot say)."""
        buys = _buys(legs, Side(side))
        if self.mode is FillMode.NATURAL or order_type is OrderType.MKT:
            prices = np.where(buys, quotes.ask, quotes.bid)
            return np.where(prices > 0, prices, np.nan)
        ok = (quotes.bid > 0) & (quotes.ask > 0)
        mid = np.where(ok, 0.5 * (quotes.bid + quotes.ask), np.nan)
        if self.mode is FillMode.MID:
            return mid
        return mid + np.where(buys, 1.0, -1.0) * self.offset * (quotes.ask - quotes.bid)

    def price(self, legs: Sequence[Leg], side: Side, quotes: LegQuotes, *,
              order_type: OrderType = OrderType.LMT) -> float:
        """The package's model price (points per unit, order convention)."""
        return float(_ratios(legs) @ self.leg_prices(legs, side, quotes, order_type=order_type))

    def problem(self, legs: Sequence[Leg], side: Side, quotes: LegQuotes, *,
                order_type: OrderType = OrderType.LMT) -> str:
        """Why these quotes cannot fill the order ("" when they can), naming the first bad leg."""
        buys = _buys(legs, Side(side))
        both = self.mode is not FillMode.NATURAL and order_type is not OrderType.MKT
        blocking = int(self.blocking_flags)
        for i, leg in enumerate(legs):
            bid, ask = float(quotes.bid[i]), float(quotes.ask[i])
            flags = int(quotes.flags[i]) & blocking
            needed = ("bid", "ask") if both else (("ask",) if buys[i] else ("bid",))
            absent = [s for s, v in (("bid", bid), ("ask", ask)) if s in needed and not v > 0]
            crossed = bid > 0 and ask > 0 and bid > ask
            if not (quotes.missing[i] or flags or absent or crossed):
                continue
            name = f"leg {i + 1} ({leg})"
            if quotes.missing[i]:
                return f"{name} is {quotes.missing[i]}"
            if flags:
                return f"{name} has a bad quote ({describe_flags(flags)}: bid {bid:g}, ask {ask:g})"
            if absent:
                return f"{name} has no {' or '.join(absent)} (bid {bid:g}, ask {ask:g})"
            return f"{name} is crossed (bid {bid:g} > ask {ask:g})"
        return ""

    def available_units(self, legs: Sequence[Leg], side: Side, quotes: LegQuotes,
                        sizes: SizeBook | None = None) -> int | None:
        """Units the displayed sizes allow (None when size does not limit fills)."""
        if not self.limit_by_size:
            return None
        buys = _buys(legs, Side(side))
        units = None
        for i, leg in enumerate(legs):
            shown = int(quotes.ask_size[i] if buys[i] else quotes.bid_size[i])
            shown = shown if shown > 0 else self.missing_size
            if sizes is not None:
                shown -= sizes.taken(quotes.books[i], int(quotes.rows[i]), bool(buys[i]))
            leg_units = max(shown, 0) // abs(leg.ratio)
            units = leg_units if units is None else min(units, leg_units)
        return units

    # --- the decision ----------------------------------------------------------------------------------------
    def decide(self, legs: Sequence[Leg], side: Side, quotes: LegQuotes, *, order_type: OrderType,
               limit: float | None, resting: bool, wanted: int, sizes: SizeBook | None = None) -> FillDecision:
        """How many of ``wanted`` units fill now, at what package and leg prices (module docstring)."""
        side = Side(side)
        problem = self.problem(legs, side, quotes, order_type=order_type)
        if problem:
            return FillDecision(0, reason=problem)
        leg_model = self.leg_prices(legs, side, quotes, order_type=order_type)
        if self.per_leg and len(legs) > 1:
            leg_model = _legs_on_ticks(legs, leg_model, side)
        model_c = _on_grid(legs, float(_ratios(legs) @ leg_model), side)
        if order_type is OrderType.MKT:
            price = model_c
        else:
            assert limit is not None
            through = model_c <= limit + 1e-9 if side is Side.BUY else model_c >= limit - 1e-9
            if not through:
                return FillDecision(0, reason=f"{self.mode.value} price {model_c:.2f} has not reached the limit "
                                              f"{limit:.2f}", through=False)
            better = min(limit, model_c) if side is Side.BUY else max(limit, model_c)
            price = limit if resting else better
        units = wanted
        shown = self.available_units(legs, side, quotes, sizes)
        if shown is not None:
            units = min(units, shown)
        if units <= 0:
            return FillDecision(0, reason="no displayed size left at these quotes", through=True)
        legs_px = allocate_leg_prices(_ratios(legs).tolist(), leg_model.tolist(), price)
        return FillDecision(units, price, legs_px, through=True)


def _legs_on_ticks(legs: Sequence[Leg], leg_model: np.ndarray, side: Side) -> np.ndarray:
    """Each leg's model price on its own exchange tick, adverse to that leg (a bought leg pays the tick above,
    a sold leg receives the tick below): the package priced as separate single-leg orders."""
    buys = _buys(legs, side)
    return np.array([round_to_tick(float(p), combo=False, root=leg.contract.root, direction="up" if b else "down")
                     for leg, p, b in zip(legs, leg_model, buys, strict=True)], dtype=np.float64)


def _on_grid(legs: Sequence[Leg], model: float, side: Side) -> float:
    """The model price on the grid it can print on, on the side adverse to the order: a single-leg order on
    its exchange tick, a combo on the cent (its legs print in 0.01). A BUY pays the step above, a SELL
    receives the step below."""
    if len(legs) == 1 and abs(legs[0].ratio) == 1:
        return round_to_tick(model, combo=False, root=legs[0].contract.root,
                             direction="up" if side is Side.BUY else "down")
    return (math.ceil(model * 100 - _EPS_CENTS) if side is Side.BUY else math.floor(model * 100 + _EPS_CENTS)) / 100
