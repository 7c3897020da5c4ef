"""The pure half of the IB market-data source: the listing, which contracts to stream, and tickers -> snapshots.

No client library calls here (the async half is :mod:`spx_core.marketdata.ib_source`); tickers are read by
attribute (``bid``, ``ask``, ``bidSize``, ``modelGreeks`` ...), which ib_insync and ib_async name alike.

Selection: the first ``expiries`` listed (root, expiry) series from today on, each with the ``strike_window``
strikes nearest the index, calls and puts. TWS allows a limited number of simultaneous market-data lines (100 on
a default account), so when the window does not fit in ``max_lines`` the strikes are dealt round-robin across
the series, nearest the money first: every series keeps a symmetric window, narrower rather than missing.

Greeks: IB's model greeks (``modelGreeks``: tick 13, delayed 83) are used when present. Both libraries leave
vega and theta at -2 ("not computed") instead of None; -2, -1, None and IB's unset double all become NaN, and
the chain panel then computes its own from the quotes (it never reads the vendor's).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from spx_core.domain.contracts import ROOTS, OptionContract, Right, Root
from spx_core.domain.quotes import QuoteFlag
from spx_core.domain.snapshot import ChainSnapshot

__all__ = [
    "GREEK_FIELDS",
    "ChainListing",
    "ChainRows",
    "Selection",
    "Subscriptions",
    "select_window",
    "vendor_number",
]

#: Trading classes of SPX options: monthly AM-settled SPX, and SPXW (weeklies, dailies, PM-settled).
SPX_CLASSES = ("SPX", "SPXW")
#: Per-row greeks kept beside the snapshot (which holds only ``vendor_iv`` / ``vendor_delta``).
GREEK_FIELDS = ("iv", "delta", "gamma", "vega", "theta")
#: The snapshot's market columns filled from tickers, in the order :meth:`ChainRows.read` writes them.
_FLOAT_COLS = ("bid", "ask", "last", "vendor_iv", "vendor_delta")
_INT_COLS = ("bid_size", "ask_size", "volume", "open_interest")
_UNSET = 1.7976931348623157e308 * 0.5


def vendor_number(value: object) -> float:
    """A float from an IB field; NaN for None, NaN, IB's unset double and its "not computed" markers (-1, -2).

    Only for fields that cannot legitimately be -1 or -2 (IV, gamma, vega, prices, sizes); a delta of -1 is a
    real deep-in-the-money put delta and goes through :func:`_delta`."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    if not math.isfinite(out) or abs(out) >= _UNSET or out in (-1.0, -2.0):
        return math.nan
    return out


def _delta(value: object) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) and -1.0 <= out <= 1.0 else math.nan  # -2 (not computed) is out of range


def _theta(value: object) -> float:
    """Theta is negative for long options, so only the exact -2 marker (and unset/None) means "not computed"."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return math.nan if not math.isfinite(out) or abs(out) >= _UNSET or out == -2.0 else out


@dataclass(frozen=True, slots=True)
class ChainListing:
    """What ``reqSecDefOptParams`` lists: per trading class, its expiries and strikes (strikes are the union
    over that class's expiries, so an (expiry, strike) pair may still be unlisted: qualification tells)."""

    underlying: str
    underlying_con_id: int
    classes: dict[str, tuple[tuple[date, ...], tuple[float, ...]]]

    @classmethod
    def from_params(cls, chains: Iterable[object], *, underlying: str = "SPX", underlying_con_id: int = 0,
                    classes: Sequence[str] = SPX_CLASSES, exchange: str = "SMART") -> ChainListing:
        """From the library's ``OptionChain`` rows (exchange, underlyingConId, tradingClass, multiplier,
        expirations, strikes); rows of ``exchange`` are preferred, any exchange's when it has none."""
        rows = [c for c in chains if getattr(c, "tradingClass", "") in classes]
        preferred = [c for c in rows if getattr(c, "exchange", "") == exchange]
        merged: dict[str, tuple[set[date], set[float]]] = {}
        for chain in preferred or rows:
            expiries, strikes = merged.setdefault(chain.tradingClass, (set(), set()))
            expiries.update(_parse_expiry(e) for e in chain.expirations)
            strikes.update(float(k) for k in chain.strikes if float(k) > 0)
        return cls(underlying, int(underlying_con_id),
                   {k: (tuple(sorted(e)), tuple(sorted(s))) for k, (e, s) in sorted(merged.items())})

    def series(self, today: date) -> list[tuple[Root, date]]:
        """(root, expiry) pairs expiring today or later, in the snapshot's order (expiry, then root)."""
        out = [(Root(tc), e) for tc, (expiries, _) in self.classes.items() if tc in Root.__members__
               for e in expiries if e >= today]
        return sorted(out, key=lambda s: (s[1], ROOTS.index(s[0])))

    def strikes(self, root: Root) -> tuple[float, ...]:
        return self.classes.get(root.value, ((), ()))[1]

    def __len__(self) -> int:
        """Contracts listed (an upper bound: the strikes are each class's union)."""
        return sum(2 * len(e) * len(s) for e, s in self.classes.values())


def _parse_expiry(text: str) -> date:
    text = str(text).split()[0]
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


@dataclass(frozen=True, slots=True)
class Selection:
    """The contracts to stream (canonical snapshot order) and how many the window wanted before the line limit."""

    contracts: tuple[OptionContract, ...]
    wanted: int
    center: float  # the index level the window was centred on


def select_window(listing: ChainListing, spot: float, *, today: date, expiries: int, strike_window: int,
                  max_lines: int) -> Selection:
    """The nearest ``expiries`` series with ``strike_window`` strikes around ``spot`` each, calls and puts,
    cut to ``max_lines`` contracts round-robin (nearest the money first, every series alike)."""
    if not (math.isfinite(spot) and spot > 0):
        raise ValueError(f"index level {spot!r} is not a price; cannot centre the strike window")
    series = listing.series(today)[:max(expiries, 0)]
    ranked = [sorted(listing.strikes(root), key=lambda k: (abs(k - spot), k))[:strike_window]
              for root, _ in series]
    wanted = 2 * sum(len(r) for r in ranked)
    picked: list[OptionContract] = []
    budget = max(max_lines, 0)
    for rank in range(strike_window):
        for (root, expiry), strikes in zip(series, ranked, strict=True):
            if rank < len(strikes) and budget >= 2:
                picked += [OptionContract(root, expiry, strikes[rank], right, trading_class=root.value)
                           for right in (Right.CALL, Right.PUT)]
                budget -= 2
    return Selection(tuple(sorted(picked, key=canonical_key)), wanted, float(spot))


def canonical_key(c: OptionContract) -> tuple:
    """The snapshot's row order: expiry, root, strike, call before put."""
    return c.expiry, ROOTS.index(c.root), c.strike, c.right is not Right.CALL


@dataclass(frozen=True, slots=True)
class Subscriptions:
    """What the source streams (for the chain panel): the contracts, how many the window wanted, the limit."""

    contracts: tuple[OptionContract, ...] = ()
    wanted: int = 0
    max_lines: int = 0
    delayed: bool = False

    @property
    def text(self) -> str:
        """e.g. ``IB: 98 of 240 contracts subscribed (ticker limit 100, delayed 15 min)``."""
        notes = [f"ticker limit {self.max_lines}"] if self.wanted > len(self.contracts) else []
        notes += ["delayed 15 min"] if self.delayed else []
        return f"IB: {len(self.contracts)} of {self.wanted} contracts subscribed" + \
            (f" ({', '.join(notes)})" if notes else "")


class ChainRows:
    """Row-aligned market values of the streamed contracts; turns tickers into coalesced snapshots.

    ``read(tickers, now_ns)`` copies every ticker's current values into the arrays and returns the rows that
    changed since the last read (NaN equals NaN); those rows get ``now_ns`` as their quote time."""

    def __init__(self, contracts: Sequence[OptionContract], now_ns: int) -> None:
        self.contracts = tuple(contracts)
        n = len(self.contracts)
        self.floats = {c: np.full(n, np.nan) for c in _FLOAT_COLS}
        self.ints = {c: np.zeros(n, dtype=np.int64) for c in _INT_COLS}
        self.greeks = {g: np.full(n, np.nan) for g in GREEK_FIELDS}
        self.quote_time = np.full(n, int(now_ns), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.contracts)

    def read(self, tickers: Sequence[object | None], now_ns: int) -> np.ndarray:
        n = len(self.contracts)
        floats = {c: np.full(n, np.nan) for c in _FLOAT_COLS}
        ints = {c: np.zeros(n, dtype=np.int64) for c in _INT_COLS}
        greeks = {g: np.full(n, np.nan) for g in GREEK_FIELDS}
        for i, (contract, ticker) in enumerate(zip(self.contracts, tickers, strict=True)):
            if ticker is not None:
                _read_one(ticker, contract.right is Right.CALL, i, floats, ints, greeks)
        floats["vendor_iv"], floats["vendor_delta"] = greeks["iv"], greeks["delta"]
        changed = np.zeros(n, dtype=bool)
        for name, arr in floats.items():
            changed |= ~((arr == self.floats[name]) | (np.isnan(arr) & np.isnan(self.floats[name])))
        for name, arr in ints.items():
            changed |= arr != self.ints[name]
        self.floats, self.ints, self.greeks = floats, ints, greeks
        self.quote_time = np.where(changed, np.int64(now_ns), self.quote_time)
        return np.flatnonzero(changed).astype(np.int64)

    def snapshot(self, underlying: str, now_ns: int, spot: float, *, stale: bool = False,
                 previous: ChainSnapshot | None = None) -> ChainSnapshot:
        """The chain now; a new layout when ``previous`` is None, else ``previous``'s rows with new quotes.
        ``stale``: every row flagged STALE (TWS lost its market data link)."""
        if not stale:  # IB streams changes only: a live line's quote is current even when it did not move
            self.quote_time = np.full(len(self.contracts), int(now_ns), dtype=np.int64)
        market = {**self.floats, **self.ints, "quote_time": self.quote_time}
        if previous is None:
            c = self.contracts
            snap = ChainSnapshot.from_columns(
                underlying=underlying, time=now_ns, underlying_price=spot, root=[x.root for x in c],
                expiry=np.array([x.expiry for x in c], dtype="datetime64[D]"), strike=[x.strike for x in c],
                is_call=[x.right is Right.CALL for x in c], assume_sorted=True, **market)
        else:
            snap = previous.replace_quotes(time=now_ns, underlying_price=spot, **market)
        if stale:
            snap = snap.replace_quotes(time=now_ns, underlying_price=spot,
                                       flags=snap.flags | np.uint16(QuoteFlag.STALE))
        return snap


def _read_one(t: object, is_call: bool, i: int, floats: dict, ints: dict, greeks: dict) -> None:
    for col, attr in (("bid", "bid"), ("ask", "ask"), ("last", "last")):
        floats[col][i] = vendor_number(getattr(t, attr, None))
    for col, attr in (("bid_size", "bidSize"), ("ask_size", "askSize")):
        ints[col][i] = _size(getattr(t, attr, None))
    volume = _size(getattr(t, "volume", None))  # tick 8; option volume by side (generic 100) otherwise
    ints["volume"][i] = volume or _size(getattr(t, "callVolume" if is_call else "putVolume", None))
    ints["open_interest"][i] = _size(getattr(t, "callOpenInterest" if is_call else "putOpenInterest", None))
    model = getattr(t, "modelGreeks", None)
    if model is not None:
        greeks["iv"][i] = vendor_number(model.impliedVol)
        greeks["delta"][i] = _delta(model.delta)
        greeks["gamma"][i] = vendor_number(model.gamma)
        greeks["vega"][i] = vendor_number(model.vega)
        greeks["theta"][i] = _theta(model.theta)


def _size(value: object) -> int:
    out = vendor_number(value)
    return int(out) if math.isfinite(out) and out > 0 else 0
