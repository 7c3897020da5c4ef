"""Marks of held legs when their quote cannot be trusted, by the run's ``bad_quote`` choice.

A held leg's quote is *untrustworthy* when it carries any quote flag, a side is missing or zero (0 x 10), it is
crossed, or its spread is many times (``wide_factor``) the median spread of its expiry and right. A take profit
triggered by such a quote is fiction, so the position monitor is given a view where each such leg is:

- ``skip``: flagged (the monitor refuses flagged legs: no exit judged on it this step); the equity keeps the
  leg's last trusted mark;
- ``surface``: re-quoted at the fitted surface's Black-76 price (bid = ask = model; the surface is fitted only
  when a held leg needs it, once per snapshot);
- ``raw``: re-quoted at its raw mid (a missing or zero bid read as 0: a 0 x 10 quote marks at 5).

A re-quoted leg shows its one price on both sides with no flag, so the monitor reads it as the mid and the
natural. Only the monitor and the equity see it: the gate and the paper broker always see the stored quotes.

A choice that cannot give a price (no surface, no ask) falls back to ``skip``. Every held leg's mark per step is
counted once: ``clean`` or the choice that produced it (:attr:`MarkPolicy.counts`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from enum import StrEnum

import numpy as np

from spx_core.domain.contracts import OptionContract
from spx_core.domain.quotes import QuoteFlag
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.execution.broker import MarketView
from spx_core.strategies.market import locate
from spx_core.strategies.structure import underlying_of

__all__ = ["BadQuote", "MarkPolicy", "Overlay"]

log = logging.getLogger(__name__)


class BadQuote(StrEnum):
    SKIP = "skip"
    SURFACE = "surface"
    RAW = "raw"


class MarkPolicy:
    """The monitor's view and the equity marks of the held legs at each step (see the module docstring)."""

    def __init__(self, choice: BadQuote | str, *, wide_factor: float = 5.0) -> None:
        try:
            self.choice = BadQuote(choice)
        except ValueError:
            raise ValueError(f"bad_quote {choice!r} must be one of skip, surface, raw") from None
        self.wide_factor = float(wide_factor)
        self.counts: dict[str, int] = {"clean": 0, "skip": 0, "surface": 0, "raw": 0}
        self._last: dict[OptionContract, float] = {}  # the last trusted (or chosen) mark of each leg
        self._fits: dict[str, object] = {}  # snapshot checksum -> FittedChain (or None when the fit failed)

    def step(self, market: MarketView, held: Iterable[OptionContract]) -> tuple[MarketView, dict[OptionContract, float]]:
        """(the view the monitor reads, contract -> mark) for this step's held contracts; counts each mark."""
        by_underlying: dict[str, list[OptionContract]] = {}
        for c in dict.fromkeys(held):
            by_underlying.setdefault(underlying_of(c.root), []).append(c)
        snaps: dict[str, ChainSnapshot] = {}
        marks: dict[OptionContract, float] = {}
        for underlying, contracts in by_underlying.items():
            snap = market.snapshot(underlying)
            if snap is None:
                marks.update({c: self._last.get(c, math.nan) for c in contracts})
                self.counts["skip"] += len(contracts)
                continue
            snaps[underlying] = self._adjust(snap, contracts, marks)
        return Overlay(market, snaps), marks

    def _adjust(self, snap: ChainSnapshot, contracts: list[OptionContract],
                marks: dict[OptionContract, float]) -> ChainSnapshot:
        rows = locate(snap, contracts)
        cols = snap.columns
        bid, ask, flags = cols["bid"].copy(), cols["ask"].copy(), cols["flags"].copy()
        changed = False
        for contract, row in zip(contracts, rows.tolist(), strict=True):
            if row < 0:
                marks[contract] = self._last.get(contract, math.nan)
                self.counts["skip"] += 1
                continue
            if not self._untrusted(snap, row):
                mark = 0.5 * (float(bid[row]) + float(ask[row]))
                self.counts["clean"] += 1
            else:
                mark, used = self._bad(snap, row)
                changed = True
                self.counts[used] += 1
                if used == "skip":
                    flags[row] = flags[row] | np.uint16(int(QuoteFlag.WIDE))
                    mark = self._last.get(contract, math.nan)
                else:  # one price both sides: the monitor reads it as the mid and as the natural
                    bid[row] = ask[row] = mark
                    flags[row] = 0
            marks[contract] = mark
            if math.isfinite(mark):
                self._last[contract] = mark
        if not changed:
            return snap
        return snap.replace_quotes(time=snap.time_ns, underlying_price=snap.underlying_price,
                                   underlying_bid=snap.underlying_bid, underlying_ask=snap.underlying_ask,
                                   bid=bid, ask=ask, flags=flags)

    def _untrusted(self, snap: ChainSnapshot, row: int) -> bool:
        cols = snap.columns
        b, a = float(cols["bid"][row]), float(cols["ask"][row])
        if int(cols["flags"][row]) or not (math.isfinite(b) and math.isfinite(a)) or b <= 0 or a <= 0 or b > a:
            return True
        return (a - b) > self.wide_factor * _usual_spread(snap, row)

    def _bad(self, snap: ChainSnapshot, row: int) -> tuple[float, str]:
        """(mark, the choice that produced it) for an untrustworthy row."""
        if self.choice is BadQuote.RAW:
            b, a = float(snap.columns["bid"][row]), float(snap.columns["ask"][row])
            b = b if math.isfinite(b) and b > 0 else 0.0
            if math.isfinite(a) and a >= b:
                return 0.5 * (a + b), "raw"
        elif self.choice is BadQuote.SURFACE:
            price = self._model(snap, row)
            if math.isfinite(price) and price >= 0:
                return price, "surface"
        return math.nan, "skip"

    def _model(self, snap: ChainSnapshot, row: int) -> float:
        from spx_core.pricing import black76
        from spx_core.surface.fit_memo import fit_chain

        if snap.checksum not in self._fits:
            try:
                self._fits[snap.checksum] = fit_chain(snap)
            except Exception:  # no surface for this chain: the mark falls back to skip (logged once per chain)
                log.exception("backtest: no surface fitted on the %s chain of %d", snap.underlying, snap.time_ns)
                self._fits[snap.checksum] = None
        fitted = self._fits[snap.checksum]
        if fitted is None:
            return math.nan
        civ, surface = fitted.civ, fitted.surface
        t, k = civ.t[row:row + 1], civ.k[row:row + 1]
        vol = surface.iv(k=k, t=t)
        price = black76.price(forward=civ.forward[row:row + 1], strike=snap.columns["strike"][row:row + 1], t=t,
                              vol=vol, discount=civ.discount[row:row + 1], is_call=snap.columns["is_call"][row:row + 1])
        return round(float(price[0]), 4)


class Overlay:
    """``market`` with some underlyings' snapshots replaced (the held legs re-quoted); the others read through."""

    def __init__(self, market: MarketView, replaced: dict[str, ChainSnapshot]) -> None:
        self._market = market
        self._replaced = replaced

    def now_ns(self) -> int:
        return self._market.now_ns()

    def snapshot(self, underlying: str) -> ChainSnapshot | None:
        snap = self._replaced.get(underlying)
        return snap if snap is not None else self._market.snapshot(underlying)


def _usual_spread(snap: ChainSnapshot, row: int) -> float:
    """The median two-sided spread of the row's expiry and right (inf when there is none to compare)."""
    cols = snap.columns
    same = (cols["expiry"] == cols["expiry"][row]) & (cols["is_call"] == cols["is_call"][row]) \
        & (cols["root"] == cols["root"][row]) & (cols["bid"] > 0) & (cols["ask"] >= cols["bid"])
    spreads = cols["ask"][same] - cols["bid"][same]
    return float(np.median(spreads)) if spreads.size >= 5 else math.inf
