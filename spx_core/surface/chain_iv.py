"""Implied volatilities and greeks for every quote of a chain, on the parity-implied forwards.

``chain_iv(snapshot)`` implies one forward and discount factor per (root, expiry) from put-call parity
(:mod:`spx_core.surface.forwards`), then solves the Black-76 implied vol of the bid, the ask and the
mid of every quote in one vectorized call, and evaluates the greeks at the mid vol. Using the
implied forward rather than spot and an assumed dividend yield is what makes call and put IVs at the
same strike agree, and what keeps the 0DTE smile from being shifted by a carry guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spx_core.domain.snapshot import ChainSnapshot
from spx_core.pricing import black76, iv
from spx_core.surface.forwards import ExpiryForward, ForwardConfig, implied_forwards

__all__ = ["ChainIV", "chain_iv"]


@dataclass(frozen=True, slots=True, eq=False)
class ChainIV:
    """Per-row arrays aligned with ``snapshot`` (same length and order).

    Attributes:
        snapshot: the chain these numbers were computed from (its checksum identifies the inputs).
        forwards: one :class:`ExpiryForward` per ``snapshot.expiries()`` entry, same order.
        expiry_index: int64 index into ``forwards`` per row.
        t: years to expiry (ACT/365, intraday precise).
        forward: parity-implied forward of the row's expiry (index points).
        discount: discount factor of the row's expiry (dimensionless).
        k: log forward-moneyness ``ln(K/F)``.
        iv_bid, iv_ask, iv_mid: Black-76 implied vols (annualized, 0.20 = 20%); NaN when unsolvable.
        reason, reason_bid, reason_ask: ``iv.IVReason`` codes (uint8) of the mid, bid and ask solves.
        delta: dV/dS per option (1.0 = one index point per point), at the mid vol.
        gamma: d2V/dS2 (per index point).
        vega: dV/dvol per vol point (index points per 0.01 of vol).
        theta: dV/dt per calendar day (index points per day; negative for a long option's decay).
    """

    snapshot: ChainSnapshot
    forwards: tuple[ExpiryForward, ...]
    expiry_index: np.ndarray
    t: np.ndarray
    forward: np.ndarray
    discount: np.ndarray
    k: np.ndarray
    iv_bid: np.ndarray
    iv_ask: np.ndarray
    iv_mid: np.ndarray
    reason: np.ndarray
    reason_bid: np.ndarray
    reason_ask: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray

    def __len__(self) -> int:
        return len(self.t)

    def reason_name(self, i: int) -> str:
        """Name of the mid-IV reason code of row ``i`` ("OK" when solved)."""
        return iv.IVReason(int(self.reason[i])).name


def chain_iv(snapshot: ChainSnapshot, *, forward_config: ForwardConfig | None = None) -> ChainIV:
    """Forwards, bid/ask/mid implied vols and mid-vol greeks for every quote of ``snapshot``."""
    n = len(snapshot)
    t = snapshot.time_to_expiry()
    forwards = implied_forwards(snapshot, config=forward_config, t_rows=t)
    sizes = np.array([f.stop - f.start for f in forwards], dtype=np.int64)
    expiry_index = np.repeat(np.arange(len(forwards), dtype=np.int64), sizes)
    forward = np.repeat(np.array([f.forward for f in forwards], dtype=np.float64), sizes)
    discount = np.repeat(np.array([f.discount for f in forwards], dtype=np.float64), sizes)
    c = snapshot.columns
    strike, is_call = c["strike"], c["is_call"]
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.log(strike / forward)
    # One solver call for bid, ask and mid: 3n options in one vectorized pass.
    prices = np.concatenate([c["bid"], c["ask"], 0.5 * (c["bid"] + c["ask"])])
    tile = (lambda a: np.concatenate([a, a, a]))  # noqa: E731 - local shorthand
    res = iv.implied_vol(price=prices, forward=tile(forward), strike=tile(strike), t=tile(t),
                         discount=tile(discount), is_call=tile(is_call))
    vol = np.asarray(res.vol, dtype=np.float64)
    reason = np.asarray(res.reason, dtype=np.uint8)
    iv_bid, iv_ask, iv_mid = vol[:n], vol[n:2 * n], vol[2 * n:]
    delta, gamma, vega, theta = _greeks(forward, strike, t, iv_mid, discount, is_call)
    return ChainIV(snapshot, tuple(forwards), expiry_index, t, forward, discount, k,
                   iv_bid, iv_ask, iv_mid, reason[2 * n:], reason[:n], reason[n:2 * n],
                   delta, gamma, vega, theta)


def _greeks(forward: np.ndarray, strike: np.ndarray, t: np.ndarray, vol: np.ndarray, discount: np.ndarray,
            is_call: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ok = np.isfinite(vol) & (t > 0)
    out = [np.full(len(vol), np.nan) for _ in range(4)]
    if not ok.any():
        return tuple(out)
    g = black76.greeks(forward=forward[ok], strike=strike[ok], t=t[ok], vol=vol[ok], discount=discount[ok],
                       is_call=is_call[ok])
    out[0][ok] = g.delta
    out[1][ok] = g.gamma
    out[2][ok] = g.vega_per_point()
    out[3][ok] = g.theta_per_day()
    return tuple(out)
