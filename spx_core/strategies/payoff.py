"""Payoff of a structure on a grid of underlying prices: at expiry and at any instant before (T+0).

Every leg is re-priced off its underlying's fitted surface (Black-76 on the leg's forward), vectorized over
(grid x legs). At an instant ``at`` a leg has ``tau = t0 - elapsed`` years left (``t0`` from the snapshot),
and with the underlying at ``S`` (primary-underlying points):

- the leg's underlying is ``x = S * leg_scale * basis`` (``basis`` = the leg underlying's spot / (primary spot
  x leg_scale), 1 for one underlying: today's SPY/SPX basis is carried, so T+0 at today's spot is today's value);
- its forward is ``x * (F0/S0)^(tau/t0)`` and its discount ``D0^(tau/t0)``: the snapshot's carry to the leg's
  expiry, over the time left (a calendar's back leg at the front expiry: its remaining time, its expiry's
  forward scaled with S);
- its vol is read on the fitted smile of the leg's own expiry (a contract keeps its smile as time passes;
  the term structure does not roll down, as brokers' analysis tabs do) at log-moneyness ``k = ln(K/F)``,
  where ``F`` is today's forward (**sticky-strike**: the vol at the leg's strike stays) or the forward with
  the underlying moved to ``S`` (**sticky-moneyness**: the vol at the same K/F follows the underlying);
  then the parallel ``iv_shift`` is added (vol units, 0.01 = one vol point; floored at 0).

At ``tau = 0`` Black-76 is the intrinsic value, so the T+0 curve at the front expiry equals the expiry payoff.
A leg whose underlying has no surface keeps its own mid IV (sticky-strike only; said in ``approximations``).
American legs (SPY) are priced with the American model their IVs were implied with (Bjerksund-Stensland
2002, :mod:`spx_core.pricing.american`) on the leg's underlying ``x``, with the rate ``r = -ln(D0)/t0`` and the
yield that carries ``x`` to the leg's forward, ``q = r - ln(F0/S0)/t0`` (the ChainIV convention).

``PayoffCurves`` are dollars per unit of the structure; ``cost`` is what opening it paid (the net mid from the
snapshot unless given; negative = a credit received), so ``expiry`` and ``t0`` are P&L = value - cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Protocol

import numpy as np

from spx_core.domain.calendar import to_ns
from spx_core.pricing import american, black76
from spx_core.strategies.market import Market, locate
from spx_core.strategies.structure import Structure
from spx_core.strategies.valuation import value_structure
from spx_core.surface.chain_iv import AMERICAN_ROOTS
from spx_core.surface.surface import VolSurface

__all__ = ["PayoffCurves", "PayoffModel", "Sticky", "front_expiry_value", "payoff_grid"]

_YEAR_NS = 365.0 * 86_400e9


class Sticky(StrEnum):
    """How implied vols move with the underlying when re-pricing before expiry."""

    STRIKE = "sticky-strike"
    MONEYNESS = "sticky-moneyness"


@dataclass(frozen=True, slots=True)
class PayoffCurves:
    """P&L curves of one unit of a structure (dollars) over primary-underlying ``prices`` (points).

    Attributes:
        prices: primary-underlying levels (index points).
        expiry: P&L at the front expiry (dollars per unit): intrinsic value for a single expiry; for
            calendars/diagonals the back legs are priced off the surface (:func:`front_expiry_value`).
        t0: P&L at ``at`` (dollars per unit), re-priced off the surface.
        cost: dollars paid to open one unit (negative = credit received).
        at: the instant of ``t0``; front_expiry: the expiry of ``expiry``.
        sticky, iv_shift: the re-pricing assumptions (iv_shift in vol, 0.01 = one vol point).
        reason: "" or why the curves are NaN (a leg's expiry missing, no cost).
        approximations: "" or what the re-pricing assumes beyond the surface (a leg without a surface).
    """

    prices: np.ndarray
    expiry: np.ndarray
    t0: np.ndarray
    cost: float
    at: datetime
    front_expiry: date
    sticky: Sticky = Sticky.STRIKE
    iv_shift: float = 0.0
    reason: str = ""
    approximations: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class PayoffModel:
    """Per-leg constants of a structure in a market, for repeated re-pricing on price grids.

    Build once per (structure, market) with :meth:`build`; :meth:`values` then costs only the vectorized
    Black-76 over (grid x legs) (plus a surface look-up per expiry with sticky-moneyness).
    """

    structure: Structure
    time_ns: int  # the snapshot instant of the primary underlying
    spot: float  # primary-underlying spot (index points)
    strike: np.ndarray  # (m,) leg strikes in their own underlying's points
    is_call: np.ndarray
    weight: np.ndarray  # (m,) dollars per point of the leg's price: ratio x multiplier
    scale: np.ndarray  # (m,) leg underlying points per primary point: leg_scale x basis
    t0: np.ndarray  # (m,) years to expiry at the snapshot
    carry: np.ndarray  # (m,) F0/S0 of the leg's expiry (S0 = the leg underlying's spot)
    discount: np.ndarray  # (m,) D0 of the leg's expiry
    leg_iv: np.ndarray  # (m,) the leg's own mid IV (fallback where no surface)
    american: np.ndarray  # (m,) bool: priced with the American model (SPY)
    smiles: tuple[Smile | None, ...]  # (m,) each leg's own expiry smile (None: keep leg_iv)
    reason: str = ""
    approximations: str = ""

    @classmethod
    def build(cls, structure: Structure, market: Market) -> PayoffModel:
        """Look every leg up in its chain once (raises :class:`MarketError` for a missing underlying)."""
        legs = structure.legs
        m = len(legs)
        t0, carry, disc, leg_iv = (np.full(m, np.nan) for _ in range(4))
        spots = np.full(m, np.nan)
        smiles: list[Smile | None] = [None] * m
        problems: list[str] = []
        notes: list[str] = []
        for underlying in structure.underlyings:
            chain = market[underlying]
            idx = [i for i, leg in enumerate(legs) if leg.underlying == underlying]
            rows = locate(chain.snapshot, [legs[i].contract for i in idx])
            fwd = {(f.root, f.expiry): f for f in chain.civ.forwards}
            for i, row in zip(idx, rows.tolist(), strict=True):
                c = legs[i].contract
                f = fwd.get((c.root, c.expiry))
                spots[i] = chain.snapshot.underlying_price
                if f is None or not (f.forward > 0 and f.t >= 0):
                    problems.append(f"leg {legs[i]}: no forward for {c.root} {c.expiry} in the snapshot")
                    continue
                t0[i], disc[i] = f.t, f.discount
                smiles[i] = _smile(chain.surface, c.root, c.expiry, f.t)
                carry[i] = f.forward / spots[i] if spots[i] > 0 else 1.0
                leg_iv[i] = chain.civ.iv_mid[row] if row >= 0 else np.nan
            if chain.surface is None:
                notes.append(f"no {underlying} surface: its legs keep their own mid IV (sticky-strike)")
        primary = market[structure.underlying].snapshot
        scale = structure.leg_scale() * (spots / (primary.underlying_price * structure.leg_scale()))
        return cls(structure, primary.time_ns, float(primary.underlying_price),
                   np.array([leg.contract.strike for leg in legs], dtype=np.float64),
                   np.array([leg.contract.is_call for leg in legs]),
                   np.array([leg.ratio * leg.contract.multiplier for leg in legs], dtype=np.float64),
                   np.where(np.isfinite(scale), scale, structure.leg_scale()), t0, carry, disc, leg_iv,
                   np.array([leg.contract.root in AMERICAN_ROOTS for leg in legs]),
                   tuple(smiles), "; ".join(problems), "; ".join(notes))

    def elapsed(self, at: datetime | None) -> float:
        """Years from the snapshot to ``at`` (0 for None)."""
        return 0.0 if at is None else (to_ns(at) - self.time_ns) / _YEAR_NS

    def values(self, prices: np.ndarray, *, elapsed: float = 0.0, iv_shift: float = 0.0,
               sticky: Sticky | str = Sticky.STRIKE) -> np.ndarray:
        """Dollar value of one unit at ``prices`` (primary points), ``elapsed`` years after the snapshot."""
        sticky = Sticky(sticky)
        s = np.asarray(prices, dtype=np.float64)
        tau = np.maximum(self.t0 - elapsed, 0.0)  # expired legs are worth their intrinsic value
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(self.t0 > 0, tau / self.t0, 0.0)
        grow = self.carry ** frac  # (m,) forward / underlying over the time left
        x = s[..., None] * self.scale  # (n, m)
        fwd = x * grow
        vol = np.maximum(self._vols(fwd, tau, sticky) + iv_shift, 0.0)
        leg = black76.price(forward=fwd, strike=self.strike, t=tau, vol=vol, discount=self.discount ** frac,
                            is_call=self.is_call)
        if self.american.any():
            a = self.american
            with np.errstate(divide="ignore", invalid="ignore"):
                rate = np.where(self.t0[a] > 0, -np.log(self.discount[a]) / self.t0[a], 0.0)
                q = rate - np.where(self.t0[a] > 0, np.log(self.carry[a]) / self.t0[a], 0.0)
            leg[..., a] = american.american_price(x[..., a], self.strike[a], tau[a], rate, q, vol[..., a],
                                                  self.is_call[a])
        return leg @ self.weight

    def intrinsic(self, prices: np.ndarray) -> np.ndarray:
        """Dollar value of one unit with every leg at its intrinsic value (all legs expired) at ``prices``."""
        x = np.asarray(prices, dtype=np.float64)[..., None] * self.scale
        return np.where(self.is_call, np.maximum(x - self.strike, 0.0), np.maximum(self.strike - x, 0.0)) @ self.weight

    def _vols(self, fwd: np.ndarray, tau: np.ndarray, sticky: Sticky) -> np.ndarray:
        """IV per (grid point, leg) on the leg's own expiry smile, k against today's or the moved forward."""
        vol = np.broadcast_to(self.leg_iv, fwd.shape).copy()
        live = tau > 0  # expired legs are intrinsic: their vol is not used
        for smile in {id(s): s for s in self.smiles if s is not None}.values():
            sel = np.array([s is smile for s in self.smiles]) & live
            if not sel.any():
                continue
            today = self.spot * self.scale[sel] * self.carry[sel]  # the legs' forward as of the snapshot
            k = np.log(self.strike[sel] / (fwd[:, sel] if sticky is Sticky.MONEYNESS else today))
            vol[:, sel] = np.broadcast_to(smile.iv(k), vol[:, sel].shape)
        return vol


class Smile(Protocol):
    """IV at log-moneyness ``k`` of one expiry (an :class:`ExpiryFit`, or the surface interpolated in T)."""

    def iv(self, k: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True, slots=True, eq=False)
class _Interpolated:
    """An expiry the surface did not fit: its interpolation in T, restricted to the neighbouring slices."""

    surface: VolSurface
    t: float

    def iv(self, k: np.ndarray) -> np.ndarray:
        return self.surface.iv(k=k, t=self.t)


def _smile(surface: VolSurface | None, root, expiry: date, t: float) -> Smile | None:
    """The leg's own fitted slice; else the surface interpolated at ``t``; None without a surface."""
    if surface is None or not surface._nodes():
        return None
    fit = surface.by_expiry(root, expiry)
    if fit is not None and fit.fitted:
        return fit
    return _Interpolated(_bracket(surface, t), t) if t > 0 else None


def _bracket(surface: VolSurface, t: float) -> VolSurface:
    """The surface restricted to the fitted expiries around ``t`` (the only ones its interpolation in T
    reads there, but for the running maximum over earlier slices, which the served slices already hold as
    calendar layers): one look-up evaluates two slices instead of every expiry."""
    nodes = surface._nodes()  # the surface's own node list, so the interpolation is the same
    tn = np.array([f.t for f in nodes])
    hi = int(np.clip(np.searchsorted(tn, t), 0, len(tn) - 1))
    return VolSurface(tuple(nodes[max(hi - 1, 0):hi + 1]), surface.snapshot_checksum, surface.time_ns,
                      surface.underlying_price)


def front_expiry_value(structure: Structure, market: Market, prices: np.ndarray, *, iv_shift: float = 0.0,
                       sticky: Sticky | str = Sticky.STRIKE, model: PayoffModel | None = None) -> np.ndarray:
    """Dollar value of one unit at the front expiry: front legs at intrinsic, later legs off the surface
    (their remaining time, their expiry's forward scaled with S). Equals ``expiry_value`` for one expiry."""
    model = model or PayoffModel.build(structure, market)
    finite = model.t0[np.isfinite(model.t0)]
    front = float(finite.min()) if len(finite) else 0.0  # no leg found: values are NaN, reason says why
    return model.values(prices, elapsed=front, iv_shift=iv_shift, sticky=sticky)


def payoff_grid(structure: Structure, market: Market, prices: np.ndarray, *, at: datetime | None = None,
                iv_shift: float = 0.0, sticky: Sticky | str = Sticky.STRIKE, cost: float | None = None,
                model: PayoffModel | None = None) -> PayoffCurves:
    """Expiry and T+0 P&L of one unit of ``structure`` over ``prices`` (see the module docstring).

    Args:
        prices: primary-underlying levels (index points).
        at: the instant of the T+0 curve (None = the snapshot time; must not be before it).
        iv_shift: parallel IV shift (vol units: 0.01 = one vol point).
        sticky: how vols follow the underlying before expiry.
        cost: dollars paid per unit (negative = credit); None = the snapshot's net mid.
        model: a :class:`PayoffModel` already built for (structure, market), to skip the leg look-ups.
    Raises:
        MarketError: the market has no chain for one of the structure's underlyings.
        ValueError: ``at`` lies before the snapshot.
    """
    sticky = Sticky(sticky)
    model = model or PayoffModel.build(structure, market)
    prices = np.asarray(prices, dtype=np.float64)
    elapsed = model.elapsed(at)
    if elapsed < -1e-12:
        raise ValueError(f"payoff_grid: at={at} is before the snapshot; pick an instant at or after it")
    at = at or market[structure.underlying].snapshot.time
    reason = model.reason
    if cost is None:
        value = value_structure(structure, market)
        cost = -value.mid * structure.legs[0].contract.multiplier  # mid: points, positive = credit
        if not math.isfinite(cost):
            reason = "; ".join(r for r in (reason, f"no net mid to take as the cost ({value.reason}); pass cost=")
                               if r)
    # One expiry: every leg has tau = 0 there and Black-76 is the intrinsic value (Structure.expiry_value
    # when one underlying); calendars: the back legs are re-priced.
    at_expiry = front_expiry_value(structure, market, prices, iv_shift=iv_shift, sticky=sticky, model=model)
    t0 = model.values(prices, elapsed=elapsed, iv_shift=iv_shift, sticky=sticky)
    if model.reason:
        at_expiry, t0 = np.full(prices.shape, np.nan), np.full(prices.shape, np.nan)
    return PayoffCurves(prices, at_expiry - cost, t0 - cost, float(cost), at, structure.front_expiry, sticky,
                        float(iv_shift), reason, model.approximations)
