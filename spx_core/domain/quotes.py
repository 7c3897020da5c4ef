"""Quotes and quote-quality flags.

Flags *mark* problems; nothing here drops a quote. Downstream code (IV, surface fit, scanner) decides
what to skip and can always say why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntFlag

import numpy as np

from spx_core.domain.contracts import OptionContract

__all__ = ["QuoteFlag", "Quote", "QualityThresholds", "quality_flags", "describe_flags"]


class QuoteFlag(IntFlag):
    """Quality flags, stored as ``uint16`` per quote."""

    NONE = 0
    CROSSED = 1  # bid > ask
    ZERO_BID = 2  # bid == 0 (or missing) with an ask: only the ask side is tradeable
    WIDE = 4  # spread wider than the thresholds allow
    STALE = 8  # quote older than the staleness limit at snapshot time
    OUTSIDE_BOUNDS = 16  # a side breaks a static no-arbitrage bound
    NO_QUOTE = 32  # neither side quoted (bid and ask missing or zero)
    LOCKED = 64  # bid == ask > 0


_FLAG_NAMES = {QuoteFlag.CROSSED: "crossed", QuoteFlag.ZERO_BID: "zero bid", QuoteFlag.WIDE: "wide",
               QuoteFlag.STALE: "stale", QuoteFlag.OUTSIDE_BOUNDS: "outside bounds",
               QuoteFlag.NO_QUOTE: "no quote", QuoteFlag.LOCKED: "locked"}


_U16 = {f: np.uint16(int(f)) for f in QuoteFlag}


def describe_flags(flags: int) -> str:
    """Human-readable, comma-separated flag names ("" when clean)."""
    return ", ".join(name for bit, name in _FLAG_NAMES.items() if flags & bit)


@dataclass(frozen=True, slots=True)
class QualityThresholds:
    """When a quote is flagged.

    Attributes:
        wide_abs: spreads at or below this many index points are never WIDE (points).
        wide_rel: a spread above ``wide_rel * mid`` (and above ``wide_abs``) is WIDE (fraction of mid).
        stale_seconds: a quote older than this at snapshot time is STALE (seconds).
        bound_tolerance: slack on the no-arbitrage bounds before OUTSIDE_BOUNDS (index points).
    """

    wide_abs: float = 1.0
    wide_rel: float = 0.25
    stale_seconds: float = 60.0
    bound_tolerance: float = 0.05

    def __post_init__(self) -> None:
        for name in ("wide_abs", "wide_rel", "stale_seconds", "bound_tolerance"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"QualityThresholds.{name} must be >= 0, got {getattr(self, name)!r}")


def quality_flags(*, bid: np.ndarray, ask: np.ndarray, strike: np.ndarray, is_call: np.ndarray,
                  underlying: float, quote_time_ns: np.ndarray | None = None, now_ns: int | None = None,
                  forward: np.ndarray | float | None = None, discount: np.ndarray | float | None = None,
                  thresholds: QualityThresholds = QualityThresholds()) -> np.ndarray:
    """Vectorized quality flags (``uint16``) for quotes of one underlying.

    Bounds use the forward and discount factor when given (``DF*max(F-K,0) <= C <= DF*F``,
    ``DF*max(K-F,0) <= P <= DF*K``); without them only the model-free upper bounds apply
    (call <= spot, put <= strike), since the carry is unknown.
    NaN bid/ask means "not quoted".
    """
    bid = np.asarray(bid, dtype=np.float64)
    ask = np.asarray(ask, dtype=np.float64)
    strike = np.asarray(strike, dtype=np.float64)
    is_call = np.asarray(is_call, dtype=bool)
    flags = np.zeros(np.broadcast(bid, ask).shape, dtype=np.uint16)
    has_bid = np.isfinite(bid) & (bid > 0)
    has_ask = np.isfinite(ask) & (ask > 0)
    flags[~has_bid & ~has_ask] |= _U16[QuoteFlag.NO_QUOTE]
    flags[~has_bid & has_ask] |= _U16[QuoteFlag.ZERO_BID]
    both = has_bid & has_ask
    with np.errstate(invalid="ignore"):
        flags[both & (bid > ask)] |= _U16[QuoteFlag.CROSSED]
        flags[both & (bid == ask)] |= _U16[QuoteFlag.LOCKED]
        spread = ask - bid
        mid = 0.5 * (ask + bid)
        wide = both & (spread > thresholds.wide_abs) & (spread > thresholds.wide_rel * mid)
        flags[wide] |= _U16[QuoteFlag.WIDE]
        tol = thresholds.bound_tolerance
        if forward is None or discount is None:
            upper = np.where(is_call, underlying, strike)
            lower = np.zeros_like(upper)
        else:
            f = np.asarray(forward, dtype=np.float64)
            df = np.asarray(discount, dtype=np.float64)
            upper = np.where(is_call, df * f, df * strike)
            lower = df * np.maximum(np.where(is_call, f - strike, strike - f), 0.0)
        bad = (has_bid & (bid > upper + tol)) | (has_ask & (ask < lower - tol))
        flags[bad] |= _U16[QuoteFlag.OUTSIDE_BOUNDS]
    if quote_time_ns is not None and now_ns is not None:
        age = (np.int64(now_ns) - np.asarray(quote_time_ns, dtype=np.int64)) / 1e9
        flags[age > thresholds.stale_seconds] |= _U16[QuoteFlag.STALE]
    return flags


@dataclass(frozen=True, slots=True)
class Quote:
    """One option quote (a row view of a :class:`~spx_core.domain.snapshot.ChainSnapshot`).

    Prices in index points (NaN when not quoted); sizes in contracts.
    """

    contract: OptionContract
    bid: float
    ask: float
    bid_size: int
    ask_size: int
    last: float
    volume: int
    open_interest: int
    time: datetime
    flags: QuoteFlag = QuoteFlag.NONE

    @property
    def mid(self) -> float:
        return 0.5 * (self.bid + self.ask)

    @property
    def spread(self) -> float:
        return self.ask - self.bid
