"""The SPX vs 10x SPY pair's selection (the arbitrage plan): built with :func:`builders.spx_spy_pair`, not scanned.

For every SPXW expiry in the DTE range that SPY also lists, every SPXW call strike within ``strike_range``
points of the index whose SPY partner (``spx_strike / 10`` on SPY's $1 grid, the builder's default) is
listed is priced from both chains: the package (long 1 SPXW call, short 10 SPY calls) at its mid
(``spx_mid - 10 * spy_mid``) and at its natural buy price (``spx_ask - 10 * spy_bid``). The cheapest package
at the natural wins (ties: nearer expiry, then lower strike), provided it costs at most ``max_debit``.
Vectorized per expiry; nothing reads the clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

import numpy as np

from spx_core.automation.config_parts import StrategyConfigError
from spx_core.domain.contracts import ROOTS, Root
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.strategies.builders import spx_spy_pair
from spx_core.strategies.scanner_candidates import snapshot_date
from spx_core.strategies.structure import Structure

__all__ = ["PairCandidate", "PairParams", "select_pair"]

SPY_PER_SPX = 10  # SPY contracts per SPX contract (the builder's ratio)


@dataclass(frozen=True, slots=True)
class PairParams:
    """What the pair selection asks for.

    Attributes:
        dte: calendar days to expiry, inclusive range (0 = the same-day expiry; the plan trades 0DTE).
        strike_range: SPX strikes within this many index points of the index level (points).
        max_debit: most the package may cost at the natural, per unit (index points; negative = demand a
            credit; None = any price).
        allow_flagged: keep legs whose quote carries a quality flag.
    """

    dte: tuple[int, int] = (0, 0)
    strike_range: float = 25.0
    max_debit: float | None = None
    allow_flagged: bool = False

    def __post_init__(self) -> None:
        dte = tuple(self.dte) if isinstance(self.dte, (list, tuple)) else ()
        if len(dte) != 2 or not all(_whole_number(d) for d in dte) or not 0 <= dte[0] <= dte[1]:
            raise StrategyConfigError(f"scan.dte {self.dte!r} must be two whole days [low, high] with 0 <= low <= high")
        object.__setattr__(self, "dte", (int(dte[0]), int(dte[1])))
        if not _real(self.strike_range) or self.strike_range <= 0:
            raise StrategyConfigError(f"scan.strike_range {self.strike_range!r} must be positive index points")
        object.__setattr__(self, "strike_range", float(self.strike_range))
        if self.max_debit is not None:
            if not _real(self.max_debit):
                raise StrategyConfigError(f"scan.max_debit {self.max_debit!r} must be index points or null")
            object.__setattr__(self, "max_debit", float(self.max_debit))
        if type(self.allow_flagged) is not bool:
            raise StrategyConfigError(f"scan.allow_flagged must be true or false, got {self.allow_flagged!r}")


def _real(x: object) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)


def _whole_number(x: object) -> bool:
    return _real(x) and int(x) == x


@dataclass(frozen=True, slots=True)
class PairCandidate:
    """The chosen pair and its figures (index points per unit: 1 SPXW call vs 10 SPY calls)."""

    structure: Structure
    expiry: date
    dte: int
    spx_strike: float
    spy_strike: float
    debit_mid: float
    debit_natural: float
    package_spread: float


def _calls(snap: ChainSnapshot, root: Root, expiry: date) -> dict[str, np.ndarray]:
    c = snap.columns
    rows = np.flatnonzero((c["root"] == ROOTS.index(root)) & c["is_call"]
                          & (c["expiry"] == np.datetime64(expiry, "D")))
    return {"strike": c["strike"][rows], "bid": c["bid"][rows], "ask": c["ask"][rows], "flags": c["flags"][rows]}


def _expiries(snap: ChainSnapshot, root: Root) -> set[date]:
    return {s.expiry for s in snap.expiries() if s.root is root}


def select_pair(spx: ChainSnapshot, spy: ChainSnapshot | None, params: PairParams
                ) -> tuple[PairCandidate | None, str]:
    """(the best pair, "") or (None, why nothing qualified and how to widen the selection)."""
    if spy is None:
        return None, "no SPY chain in the market context; list SPY beside SPX (the pair needs both chains)"
    today = snapshot_date(spx)
    lo, hi = params.dte
    expiries = sorted(e for e in _expiries(spx, Root.SPXW) & _expiries(spy, Root.SPY) if lo <= (e - today).days <= hi)
    if not expiries:
        return None, (f"no expiry listed by both SPXW and SPY has DTE {lo}-{hi} on {today}; widen the DTE range")
    best: tuple | None = None
    n_priced = 0
    for expiry in expiries:
        row = _best_of_expiry(spx, spy, expiry, params)
        if row is None:
            continue
        n_priced += row[-1]
        key = (row[1], expiry, row[0])  # natural debit, then nearer expiry, then lower strike
        if best is None or key < best[0]:
            best = (key, expiry, row)
    if best is None:
        return None, (f"no SPXW call within {params.strike_range:g} points of {spx.underlying_price:.2f} has a "
                      f"two-sided{'' if params.allow_flagged else ', unflagged'} quote and a listed SPY partner "
                      f"(strike / 10); widen the strike range")
    _, expiry, (strike, natural, mid, spread, spy_strike, _) = best
    if params.max_debit is not None and natural > params.max_debit + 1e-12:
        return None, (f"the cheapest of {n_priced} pairs ({expiry} {strike:g}/{spy_strike:g}) costs {natural:.2f} "
                      f"at the natural, above the max debit {params.max_debit:g}")
    structure = spx_spy_pair(expiry, strike, spy_strike)
    return PairCandidate(structure, expiry, (expiry - today).days, strike, spy_strike, mid, natural, spread), ""


def _best_of_expiry(spx: ChainSnapshot, spy: ChainSnapshot, expiry: date, params: PairParams):
    """(strike, natural debit, mid debit, spread, spy strike, n priced) of the cheapest pair, or None."""
    a, b = _calls(spx, Root.SPXW, expiry), _calls(spy, Root.SPY, expiry)
    near = np.abs(a["strike"] - spx.underlying_price) <= params.strike_range
    partner = np.floor(a["strike"] / SPY_PER_SPX + 0.5)  # spx_spy_pair's default SPY strike
    order = np.argsort(b["strike"], kind="stable")
    spy_strikes = b["strike"][order]
    pos = np.clip(np.searchsorted(spy_strikes, partner), 0, max(len(spy_strikes) - 1, 0))
    listed = (len(spy_strikes) > 0) & (spy_strikes[pos] == partner) if len(spy_strikes) else np.zeros_like(near)
    j = order[pos] if len(order) else pos
    ok = near & listed
    if not ok.any():
        return None
    spx_bid, spx_ask = a["bid"][ok], a["ask"][ok]
    spy_bid, spy_ask = b["bid"][j[ok]], b["ask"][j[ok]]
    quoted = np.isfinite(spx_bid) & np.isfinite(spx_ask) & np.isfinite(spy_bid) & np.isfinite(spy_ask) \
        & (spy_bid > 0) & (spx_bid >= 0)
    if not params.allow_flagged:
        quoted &= (a["flags"][ok] == 0) & (b["flags"][j[ok]] == 0)
    if not quoted.any():
        return None
    natural = spx_ask - SPY_PER_SPX * spy_bid
    mid = 0.5 * (spx_bid + spx_ask) - SPY_PER_SPX * 0.5 * (spy_bid + spy_ask)
    spread = (spx_ask - spx_bid) + SPY_PER_SPX * (spy_ask - spy_bid)
    strikes = a["strike"][ok]
    idx = np.flatnonzero(quoted)
    i = idx[np.lexsort((strikes[idx], natural[idx]))[0]]
    return (float(strikes[i]), float(natural[i]), float(mid[i]), float(spread[i]), float(partner[ok][i]),
            int(quoted.sum()))
