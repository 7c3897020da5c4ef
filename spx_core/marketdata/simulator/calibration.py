"""Summary statistics of a chain, measured the same way on a real chain and on a simulated one.

Used to calibrate the simulator's defaults against ``spxw20190626.csv`` (and by the calibration
test). Per expiry: forward and discount factor from a least-squares put-call-parity line over the
near-the-money strikes (``C - P = D*F - D*K``), out-of-the-money mid IVs (Black-76), ATM IV and IV at
90% of the forward by linear interpolation in log-moneyness, 25-delta put and call IVs; then the
30-day values by linear interpolation in T. Spreads: median relative spread (ask-bid)/mid of
out-of-the-money quotes with a bid near the money, by expiry bucket, and median absolute spread by
price bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from spx_core.domain.snapshot import ChainSnapshot
from spx_core.pricing import iv as iv_solver

__all__ = ["ChainMetrics", "ExpiryMetrics", "chain_metrics", "DTE_BUCKETS", "PRICE_BUCKETS"]

#: (label, min days, max days) for relative spreads near the money
DTE_BUCKETS = (("0-7d", 0.0, 7.5), ("8-60d", 7.5, 60.5), ("61d+", 60.5, 1e9))
#: (label, min price, max price) for absolute spreads of out-of-the-money quotes (index points)
PRICE_BUCKETS = (("<3", 0.0, 3.0), ("3-10", 3.0, 10.0), ("10-50", 10.0, 50.0), ("50+", 50.0, 1e9))
_NEAR = 0.02  # |ln K/F| counted as near the money for spreads


@dataclass(frozen=True, slots=True)
class ExpiryMetrics:
    """One expiry: years to expiry, forward (index points), discount factor, ATM IV, IV at 0.9F,
    25-delta put and call IVs (decimals; NaN where the chain does not reach)."""

    t: float
    forward: float
    discount: float
    atm_iv: float
    iv_90: float
    put25_iv: float
    call25_iv: float


@dataclass(frozen=True, slots=True)
class ChainMetrics:
    """Chain-level summary. IVs are decimals; spreads in index points or fractions of mid."""

    spot: float
    n_quotes: int
    n_expiries: int
    atm_iv_30d: float
    skew_90_30d: float  # IV(0.9F) - IV(F) at 30 days
    rr25_30d: float  # IV(25-delta put) - IV(25-delta call) at 30 days
    rel_spread_near: dict[str, float]  # DTE bucket -> median (ask-bid)/mid, OTM quotes with a bid, |k| < 2%
    abs_spread_otm: dict[str, float]  # price bucket -> median ask-bid of OTM quotes with a bid
    zero_bid_share: float
    expiries: tuple[ExpiryMetrics, ...]

    def as_text(self) -> str:
        rel = ", ".join(f"{k} {v:.3f}" for k, v in self.rel_spread_near.items())
        ab = ", ".join(f"{k} {v:.2f}" for k, v in self.abs_spread_otm.items())
        return (f"spot {self.spot:.2f}, {self.n_quotes} quotes, {self.n_expiries} expiries; 30d ATM IV "
                f"{100 * self.atm_iv_30d:.2f}%, IV(0.9F)-IV(F) {100 * self.skew_90_30d:+.2f} pts, RR25 "
                f"{100 * self.rr25_30d:+.2f} pts; near-money rel. spread [{rel}]; OTM abs. spread [{ab}]; "
                f"zero bids {100 * self.zero_bid_share:.1f}%")


def _parity(strike: np.ndarray, call_mid: np.ndarray, put_mid: np.ndarray, spot: float) -> tuple[float, float]:
    """(forward, discount) from ``C - P = D*F - D*K`` over strikes within 5% of spot."""
    use = np.isfinite(call_mid) & np.isfinite(put_mid) & (np.abs(strike / spot - 1) < 0.05)
    if use.sum() < 3:
        return float("nan"), float("nan")
    slope, icpt = np.polyfit(strike[use], (call_mid - put_mid)[use], 1)
    d = -slope
    return icpt / d, d


def _expiry_metrics(snap: ChainSnapshot, rows: slice, t: float) -> ExpiryMetrics | None:
    k_all, bid, ask, calls = snap.strike[rows], snap.bid[rows], snap.ask[rows], snap.is_call[rows]
    two_sided = (bid > 0) & (ask > bid)
    mid = np.where(two_sided, 0.5 * (bid + ask), np.nan)
    strikes = k_all[calls]
    if t <= 2 / 365 or not np.array_equal(strikes, k_all[~calls]):
        return None
    fwd, disc = _parity(strikes, mid[calls], mid[~calls], snap.underlying_price)
    if not (np.isfinite(fwd) and 0.5 < disc <= 1.0 + 1e-6):
        return None
    otm_call = strikes >= fwd
    price = np.where(otm_call, mid[calls], mid[~calls])
    res = iv_solver.implied_vol(price=price, forward=fwd, strike=strikes, t=t, discount=disc, is_call=otm_call)
    vol = np.where(res.reason == 0, res.vol, np.nan)
    good = np.isfinite(vol)
    if good.sum() < 4:
        return None
    x, y = np.log(strikes[good] / fwd), vol[good]
    sd = y * np.sqrt(t)
    d1 = -x / sd + 0.5 * sd
    delta = np.where(otm_call[good], ndtr(d1), ndtr(d1) - 1.0)

    def at(xs: np.ndarray, ys: np.ndarray, x0: float) -> float:
        order = np.argsort(xs)
        xs, ys = xs[order], ys[order]
        return float(np.interp(x0, xs, ys)) if xs[0] <= x0 <= xs[-1] else float("nan")

    puts, cl = ~otm_call[good], otm_call[good]
    return ExpiryMetrics(t=t, forward=fwd, discount=disc, atm_iv=at(x, y, 0.0), iv_90=at(x, y, np.log(0.9)),
                         put25_iv=at(delta[puts], y[puts], -0.25) if puts.sum() > 1 else float("nan"),
                         call25_iv=at(delta[cl], y[cl], 0.25) if cl.sum() > 1 else float("nan"))


def _at_days(exps: list[ExpiryMetrics], values: list[float], days: float) -> float:
    """Linear interpolation in T of per-expiry ``values`` at ``days`` calendar days."""
    ts = np.array([e.t for e in exps])
    vals = np.array(values, dtype=np.float64)
    ok = np.isfinite(vals)
    if ok.sum() < 2:
        return float("nan")
    return float(np.interp(days / 365.0, ts[ok], vals[ok]))


def _spreads(snap: ChainSnapshot, forward_of_row: np.ndarray, days: np.ndarray) -> tuple[dict, dict]:
    bid, ask = snap.bid, snap.ask
    k = np.log(snap.strike / forward_of_row)
    otm = np.where(snap.is_call, k >= 0, k < 0) & (bid > 0) & (ask > bid) & np.isfinite(k)
    mid, spread = 0.5 * (bid + ask), ask - bid
    rel = {}
    for label, lo, hi in DTE_BUCKETS:
        sel = otm & (np.abs(k) < _NEAR) & (days >= lo) & (days < hi)
        rel[label] = float(np.median(spread[sel] / mid[sel])) if sel.any() else float("nan")
    ab = {}
    for label, lo, hi in PRICE_BUCKETS:
        sel = otm & (np.abs(k) < 0.3) & (mid >= lo) & (mid < hi)
        ab[label] = float(np.median(spread[sel])) if sel.any() else float("nan")
    return rel, ab


def chain_metrics(snap: ChainSnapshot) -> ChainMetrics:
    """Measure a chain (real or simulated) the same way."""
    t_row = snap.time_to_expiry()
    exps: list[ExpiryMetrics] = []
    fwd_row = np.full(len(snap), np.nan)
    for e in snap.expiries():
        m = _expiry_metrics(snap, e.rows, float(t_row[e.start]))
        if m is not None:
            exps.append(m)
            fwd_row[e.rows] = m.forward
        else:  # spreads still count on expiries too short for a parity fit: use spot
            fwd_row[e.rows] = snap.underlying_price
    rel, ab = _spreads(snap, fwd_row, t_row * 365.0)
    return ChainMetrics(
        spot=snap.underlying_price, n_quotes=len(snap), n_expiries=len(snap.expiries()),
        atm_iv_30d=_at_days(exps, [e.atm_iv for e in exps], 30.0),
        skew_90_30d=_at_days(exps, [e.iv_90 - e.atm_iv for e in exps], 30.0),
        rr25_30d=_at_days(exps, [e.put25_iv - e.call25_iv for e in exps], 30.0), rel_spread_near=rel, abs_spread_otm=ab,
        zero_bid_share=float(np.mean(~(snap.bid > 0))), expiries=tuple(exps))
