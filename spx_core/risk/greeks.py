"""Portfolio greeks of a book of option legs, beta-weighted to SPX, in contracts and in dollars.

A book is a sequence of ``(OptionContract, signed quantity)``. Every leg is looked up in its underlying's
chain at once (:func:`~spx_core.strategies.market.locate`); its greeks are ChainIV's mid-vol greeks, the same
numbers :func:`~spx_core.strategies.valuation.value_structure` adds up (a leg whose IV did not solve takes
the fitted surface's greeks through ``chain_iv.greeks_at``, else NaN with a note). Per leg, with q the signed
quantity, m the multiplier, S the leg's own underlying price and w its SPX weight (1 for SPX; for SPY and XSP
0.1 x beta: ten SPY contracts hedge one SPX contract at beta 1):

    delta           q * delta * m/100 * w            SPX-contract equivalents (100 multiplier, delta 1)
    delta_usd_pt    q * m * delta * w                dollars per SPX point
    delta_usd_1pct  q * m * delta * 0.01 * S * b     dollars for a 1% SPX move (b = beta, 1 for SPX)
    gamma_usd_1pct  q * m * gamma * (0.01*S*b)^2 / 2 dollars of gamma P&L for a 1% SPX move
    vega_usd_volpt  q * m * vega                     dollars per vol point
    theta_usd_day   q * m * theta                    dollars per calendar day

At beta 1 these equal ``value_structure``'s dollar greeks of the same legs (tested).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from spx_core.domain.contracts import OptionContract
from spx_core.strategies.market import Market, locate
from spx_core.strategies.structure import PRICE_SCALE, underlying_of

__all__ = [
    "GREEK_FIELDS",
    "Book",
    "GreekReport",
    "GreekTotals",
    "LegInputs",
    "PositionGreeks",
    "book_of",
    "gather_legs",
    "leg_greek_matrix",
    "portfolio_greeks",
]

GREEK_FIELDS = ("delta", "delta_usd_pt", "delta_usd_1pct", "gamma_usd_1pct", "vega_usd_volpt", "theta_usd_day")
Book = Sequence[tuple[OptionContract, int]]


@dataclass(frozen=True, slots=True)
class GreekTotals:
    """Greeks summed over some legs (units in the module docstring)."""

    delta: float = 0.0
    delta_usd_pt: float = 0.0
    delta_usd_1pct: float = 0.0
    gamma_usd_1pct: float = 0.0
    vega_usd_volpt: float = 0.0
    theta_usd_day: float = 0.0


@dataclass(frozen=True, slots=True)
class PositionGreeks:
    """One contract's position (quantities of the same contract netted) and its greeks."""

    contract: OptionContract
    quantity: int
    greeks: GreekTotals
    iv: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class GreekReport:
    """Greeks of a book in total and broken down; ``notes`` say which legs have NaN or surface greeks."""

    total: GreekTotals
    by_contract: dict[OptionContract, PositionGreeks]
    by_expiry: dict[date, GreekTotals]
    by_strike_bucket: dict[float, GreekTotals]  # key: lower edge of the bucket in SPX points
    by_trade: dict[Hashable, GreekTotals] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LegInputs:
    """Per leg of a book: pricing inputs and mid-vol greeks (points per contract), aligned with the book."""

    contracts: tuple[OptionContract, ...]
    quantity: np.ndarray
    multiplier: np.ndarray
    beta: np.ndarray        # SPX beta of the leg's underlying (1 for SPX)
    scale: np.ndarray       # PRICE_SCALE of the leg's underlying (0.1 for SPY)
    spot: np.ndarray
    forward: np.ndarray
    discount: np.ndarray
    t: np.ndarray
    vol: np.ndarray
    strike: np.ndarray
    is_call: np.ndarray
    american: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray
    notes: tuple[str, ...]


def book_of(positions: Iterable[object]) -> list[tuple[OptionContract, int]]:
    """The book of portfolio ``Position``s (anything with ``contract`` and ``quantity``), flat ones left out."""
    return [(p.contract, int(p.quantity)) for p in positions if int(p.quantity) != 0]  # type: ignore[attr-defined]


def gather_legs(legs: Book, market: Market, *, spy_beta: float = 1.0) -> LegInputs:
    """Look every leg up in its chain (vectorized per underlying); raise one clear ValueError for unlisted legs."""
    if not math.isfinite(spy_beta) or spy_beta <= 0:
        raise ValueError(f"spy_beta must be a positive number, got {spy_beta!r}")
    n = len(legs)
    names = ("spot", "forward", "discount", "t", "vol", "strike", "delta", "gamma", "vega", "theta")
    out = {k: np.full(n, np.nan) for k in names}
    is_call = np.zeros(n, dtype=bool)
    american = np.zeros(n, dtype=bool)
    underlyings = [underlying_of(c.root) for c, _ in legs]
    notes: list[str] = []
    for u in dict.fromkeys(underlyings):
        chain = market[u]
        idx = np.array([i for i, x in enumerate(underlyings) if x == u])
        rows = locate(chain.snapshot, [legs[i][0] for i in idx])
        if (rows < 0).any():
            bad = ", ".join(str(legs[i][0]) for i in idx[rows < 0])
            raise ValueError(f"not listed in the {u} snapshot of {chain.snapshot.time:%Y-%m-%d %H:%M}: {bad}; "
                             f"value the book on a snapshot that lists every held contract")
        civ, cols = chain.civ, chain.snapshot.columns
        spot = chain.snapshot.underlying_price
        out["spot"][idx] = spot if math.isfinite(spot) else civ.forward[rows] * civ.discount[rows]
        for name, src in (("forward", civ.forward), ("discount", civ.discount), ("t", civ.t), ("vol", civ.iv_mid),
                          ("strike", cols["strike"]), ("delta", civ.delta), ("gamma", civ.gamma),
                          ("vega", civ.vega), ("theta", civ.theta)):
            out[name][idx] = src[rows]
        is_call[idx] = cols["is_call"][rows]
        if civ.american is not None:
            american[idx] = civ.american[rows]
        notes += _surface_fill(chain, idx, rows, out, american, [legs[i][0] for i in idx])
    scale = np.array([PRICE_SCALE[u] for u in underlyings], dtype=np.float64)
    beta = np.array([spy_beta if u == "SPY" else 1.0 for u in underlyings], dtype=np.float64)
    return LegInputs(tuple(c for c, _ in legs), np.array([q for _, q in legs], dtype=np.float64),
                     np.array([c.multiplier for c, _ in legs], dtype=np.float64), beta, scale,
                     out["spot"], out["forward"], out["discount"], out["t"], out["vol"], out["strike"], is_call,
                     american, out["delta"], out["gamma"], out["vega"], out["theta"], tuple(notes))


def _surface_fill(chain, idx, rows, out, american, contracts) -> list[str]:
    """Legs whose mid IV did not solve: vol and greeks from the fitted surface, as value_structure does."""
    bad = ~np.isfinite(out["vol"][idx]) | ~np.isfinite(out["delta"][idx])
    if not bad.any():
        return []
    civ = chain.civ
    if chain.surface is None:
        return [f"leg {c}: no mid IV ({civ.reason_name(int(r))}), greeks NaN (no fitted surface)"
                for c, r, b in zip(contracts, rows, bad, strict=True) if b]
    # The surface layer loads scipy: import it only when a leg needs surface greeks.
    from spx_core.surface.chain_iv import greeks_at

    r, i = rows[bad], idx[bad]
    vol = np.asarray(chain.surface.iv(k=civ.k[r], t=civ.t[r]), dtype=np.float64)
    g = greeks_at(civ.forward[r], chain.snapshot.columns["strike"][r], civ.t[r], vol, civ.discount[r],
                  chain.snapshot.columns["is_call"][r], spot=chain.snapshot.underlying_price,
                  american_rows=american[i])
    out["vol"][i] = vol
    for name, v in zip(("delta", "gamma", "vega", "theta"), g, strict=True):
        out[name][i] = v
    return [f"leg {c}: no mid IV ({civ.reason_name(int(rr))}), greeks from the fitted surface"
            for c, rr, b in zip(contracts, rows, bad, strict=True) if b]


def leg_greek_matrix(x: LegInputs) -> np.ndarray:
    """(6, n legs) dollar greeks per leg, rows in GREEK_FIELDS order (formulas in the module docstring)."""
    qm = x.quantity * x.multiplier
    w = x.scale * x.beta
    move = 0.01 * x.spot * x.beta
    return np.stack([qm * x.delta * w / 100.0, qm * x.delta * w, qm * x.delta * move,
                     qm * x.gamma * 0.5 * move ** 2, qm * x.vega, qm * x.theta])


def portfolio_greeks(legs: Book, market: Market, *, spy_beta: float = 1.0, strike_bucket: float = 25.0,
                     trades: Sequence[Hashable] | None = None) -> GreekReport:
    """Greeks of ``legs`` in total, per contract, expiry, strike bucket (SPX points) and trade (``trades[i]``
    names the trade leg i belongs to)."""
    if strike_bucket <= 0:
        raise ValueError(f"strike_bucket must be positive (SPX points), got {strike_bucket!r}")
    if trades is not None and len(trades) != len(legs):
        raise ValueError(f"trades names {len(trades)} legs but the book has {len(legs)}; give one trade per leg")
    x = gather_legs(legs, market, spy_beta=spy_beta)
    g = leg_greek_matrix(x)
    spx_strike = x.strike / x.scale
    bucket = np.floor(spx_strike / strike_bucket) * strike_bucket
    by_contract: dict[OptionContract, PositionGreeks] = {}
    for c, idx in _groups(x.contracts).items():
        note = "; ".join(n for n in x.notes if n.startswith(f"leg {c}:"))
        by_contract[c] = PositionGreeks(c, int(x.quantity[idx].sum()), _totals(g[:, idx]), float(x.vol[idx[0]]),
                                        note)
    return GreekReport(
        total=_totals(g), by_contract=by_contract,
        by_expiry={k: _totals(g[:, v]) for k, v in sorted(_groups([c.expiry for c in x.contracts]).items())},
        by_strike_bucket={k: _totals(g[:, v]) for k, v in sorted(_groups(bucket.tolist()).items())},
        by_trade={} if trades is None else {k: _totals(g[:, v]) for k, v in _groups(list(trades)).items()},
        notes=x.notes)


def _groups(keys: Sequence[Hashable]) -> dict[Hashable, np.ndarray]:
    out: dict[Hashable, list[int]] = {}
    for i, k in enumerate(keys):
        out.setdefault(k, []).append(i)
    return {k: np.array(v) for k, v in out.items()}


def _totals(g: np.ndarray) -> GreekTotals:
    return GreekTotals(*(float(v) for v in g.sum(axis=1)))
