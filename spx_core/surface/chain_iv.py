"""Implied volatilities and greeks for every quote of a chain, on the parity-implied forwards.

``chain_iv(snapshot)`` implies one forward and discount factor per (root, expiry) from put-call parity
(:mod:`spx_core.surface.forwards`), then solves the Black-76 implied vol of the bid, the ask and the
mid of every quote in one vectorized call, and evaluates the greeks at the mid vol. Using the
implied forward rather than spot and an assumed dividend yield is what makes call and put IVs at the
same strike agree, and what keeps the 0DTE smile from being shifted by a carry guess.

``expiry_chain_iv(snapshot, root, expiry)`` does the same for one expiry (what the chain table shows)
while taking that expiry's forward and discount factor from the *whole* snapshot: a short expiry's
discount factor comes from the other expiries' rates, so implying it from its own rows alone would
give a different number (1.0) than the surface fitted on the same snapshot.

American rows (root SPY) invert the American model (:mod:`spx_core.pricing.american`, Bjerksund-Stensland
2002) instead of Black-76, and their greeks are that model's. What is implied from what: the forward F and
discount factor D of each expiry come from put-call parity exactly as for SPX (near-the-money pairs, where
the early-exercise premia of the call and the put are small and largely cancel); the rate is r = -ln(D)/t;
the spot is the snapshot's underlying price S (SPY's last print); the dividend yield is the one that
carries S to the parity forward, q = r - ln(F/S)/t, which folds the cash dividends before the expiry into
the escrowed-dividend forward (the simulator prices SPY with exactly this model, so its quotes invert to
its surface up to tick rounding).

SPY's own parity line does not pin the discount factor: the put's early-exercise premium grows with the
strike and steepens the slope (the simulated chain implies rates below zero). :func:`american_forward_config`
therefore takes the discount factor from a European reference chain of the same market (SPX parity, which
identifies it) and fits only SPY's forward from its near-the-money pairs. That forward still carries the
premia (C - P = D(F - K) + EEP_call - EEP_put): a first solve of the mids prices them and the forward is
corrected before the final solve (:func:`_without_early_exercise`). Measured on the simulated chain
(``tests/app/test_chain_spy.py``): near-the-money SPY mid IVs within 0.01-0.05 vol points (median) of the
simulator's surface from 1 week to 6 months, the forward within 0.15 dollars (0.7 without the correction);
same-day expiries are dominated by penny rounding.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date

import numpy as np

from spx_core.domain.calendar import MarketCalendar, default_calendar, year_fraction_ns
from spx_core.domain.contracts import ROOTS, Root
from spx_core.domain.snapshot import ChainSnapshot, ExpirySlice
from spx_core.pricing import american, black76, iv
from spx_core.surface.forwards import (ExpiryForward, ForwardConfig, ForwardMethod, forwards_from_slices,
                                      implied_forwards)

_NEVER_FIT_RATE = 1e-300  # a ForwardConfig.max_rate_se no parity slope meets: the discount factor is given
_RATE_NEIGHBOURS = 7  # reference expiries (nearest in maturity) whose parity rates' median an American chain uses
_EEP_BAND = 0.02  # |ln(K/F)| of the pairs whose early-exercise premia correct an American chain's forward

__all__ = ["ChainIV", "chain_iv", "expiry_chain_iv", "expiry_subsnapshot", "ExpiryNotListedError", "AMERICAN_ROOTS",
           "american_forward_config", "american_inputs", "greeks_at"]

#: roots whose options are American (exercisable any day): their IVs and greeks come from the American model
AMERICAN_ROOTS = frozenset({Root.SPY})
_AMERICAN_CODES = np.array([r in AMERICAN_ROOTS for r in ROOTS])


class ExpiryNotListedError(KeyError):
    """The (root, expiry) asked for is not in the snapshot."""


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
        american: True per row priced with the American model (SPY); its IVs and greeks are that model's.
        spot: the underlying price the American rows were solved with (the snapshot's; dollars for SPY).
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
    american: np.ndarray | None = None
    spot: float = float("nan")

    def __len__(self) -> int:
        return len(self.t)

    def reason_name(self, i: int) -> str:
        """Name of the mid-IV reason code of row ``i`` ("OK" when solved)."""
        return iv.IVReason(int(self.reason[i])).name


def chain_iv(snapshot: ChainSnapshot, *, forward_config: ForwardConfig | None = None,
             reference: ChainSnapshot | None = None) -> ChainIV:
    """Forwards, bid/ask/mid implied vols and mid-vol greeks for every quote of ``snapshot``.

    ``reference``: for an American chain (SPY), the European chain of the same instant (SPX) whose parity gives
    the discount factors (one rate, the median of its parity-fitted expiries within a year; see
    :func:`american_forward_config`). Without it an American chain's discount factors come from its own
    parity slopes, which early exercise biases.
    """
    if reference is not None and _AMERICAN_CODES[snapshot.columns["root"]].any():
        forward_config = american_forward_config(reference, None, forward_config)
    t = snapshot.time_to_expiry()
    forwards = implied_forwards(snapshot, config=forward_config, t_rows=t)
    return _solve(snapshot, tuple(forwards), t)


def expiry_chain_iv(snapshot: ChainSnapshot, root: Root, expiry: date, *,
                    forward_config: ForwardConfig | None = None, calendar: MarketCalendar | None = None,
                    slices: list[ExpirySlice] | None = None) -> ChainIV:
    """:func:`chain_iv` of one expiry's rows, on the forward and discount implied from the whole snapshot.

    The result is aligned with ``expiry_subsnapshot(snapshot, slice)`` (its ``snapshot``); its
    forward and discount factor are bit-identical to ``chain_iv(snapshot)``'s (and so to
    ``fit_surface(snapshot)``'s) for that expiry: same function, same inputs.

    ``slices``: ``snapshot.expiries()`` when the caller has it already (it costs ~0.5 ms on a full chain).

    Raises:
        ExpiryNotListedError: ``(root, expiry)`` is not in ``snapshot``.
    """
    slices = snapshot.expiries() if slices is None else slices
    e = next((i for i, s in enumerate(slices) if (s.root, s.expiry) == (root, expiry)), None)
    if e is None:
        raise ExpiryNotListedError(f"{root} {expiry} is not listed in the snapshot of {snapshot.time:%Y-%m-%d %H:%M}")
    t_rows = _slice_years(snapshot, slices, calendar)
    forwards = forwards_from_slices(snapshot, slices, t_rows, forward_config or ForwardConfig())
    sl = slices[e]
    sub = expiry_subsnapshot(snapshot, sl)
    fwd = dataclasses.replace(forwards[e], start=0, stop=len(sub))
    return _solve(sub, (fwd,), t_rows[sl.start:sl.stop])


def _slice_years(snapshot: ChainSnapshot, slices: list[ExpirySlice], calendar: MarketCalendar | None) -> np.ndarray:
    """Years to expiry per slice, then per row: the same instants and arithmetic as
    ``snapshot.time_to_expiry()`` (so the same floats) at a fraction of the cost of the per-row lookup."""
    starts = np.array([s.start for s in slices], dtype=np.int64)
    instants = (calendar or default_calendar()).expiry_instants_ns(
        snapshot.columns["expiry"][starts], snapshot.is_am[starts])
    return np.repeat(year_fraction_ns(snapshot.time_ns, instants), [s.stop - s.start for s in slices])


def expiry_subsnapshot(snapshot: ChainSnapshot, sl: ExpirySlice) -> ChainSnapshot:
    """The rows of one (root, expiry) as their own snapshot (layout, flags and times carried over)."""
    cols = {name: arr[sl.rows] for name, arr in snapshot.columns.items()}
    return ChainSnapshot.from_columns(
        underlying=snapshot.underlying, time=snapshot.time_ns, underlying_price=snapshot.underlying_price,
        underlying_bid=snapshot.underlying_bid, underlying_ask=snapshot.underlying_ask, assume_sorted=True,
        **cols)


def _solve(snapshot: ChainSnapshot, forwards: tuple[ExpiryForward, ...], t: np.ndarray) -> ChainIV:
    """Bid/ask/mid IVs and mid-vol greeks of every row, on the given per-expiry forwards."""
    n = len(snapshot)
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
    am = _AMERICAN_CODES[c["root"]]
    spot = float(snapshot.underlying_price)
    if not am.any():
        res = iv.implied_vol(price=prices, forward=tile(forward), strike=tile(strike), t=tile(t),
                             discount=tile(discount), is_call=tile(is_call))
        vol, reason = np.asarray(res.vol, dtype=np.float64), np.asarray(res.reason, dtype=np.uint8)
    else:
        # The parity forward of American quotes carries the early-exercise premia (the put's exceeds the call's):
        # solve the mids once, take the premia out of the forward, then solve everything on the corrected one.
        first, _ = _solve_mixed(prices[2 * n:], forward, strike, t, discount, is_call, am, spot)
        forward = _without_early_exercise(forward, discount, t, strike, is_call, first, am, spot, expiry_index)
        starts = np.array([f.start for f in forwards], dtype=np.int64)
        forwards = tuple(dataclasses.replace(f, forward=float(forward[s])) if s < n and am[s] else f
                         for f, s in zip(forwards, starts, strict=True))
        with np.errstate(invalid="ignore", divide="ignore"):
            k = np.log(strike / forward)
        vol, reason = _solve_mixed(prices, tile(forward), tile(strike), tile(t), tile(discount), tile(is_call),
                                   tile(am), spot)
    iv_bid, iv_ask, iv_mid = vol[:n], vol[n:2 * n], vol[2 * n:]
    delta, gamma, vega, theta = greeks_at(forward, strike, t, iv_mid, discount, is_call,
                                          spot=spot if am.any() else None, american_rows=am)
    return ChainIV(snapshot, forwards, expiry_index, t, forward, discount, k,
                   iv_bid, iv_ask, iv_mid, reason[2 * n:], reason[:n], reason[n:2 * n],
                   delta, gamma, vega, theta, american=am, spot=spot)


def american_forward_config(reference: ChainSnapshot, t: float | None,
                            base: ForwardConfig | None = None) -> ForwardConfig:
    """How to imply an American chain's forwards: the discount factor at ``t`` years from the European
    ``reference`` chain's parity (the median rate of its parity-fitted expiries nearest ``t``, or of all those
    within a year when ``t`` is None; the config's fallback rate when it has none), only the forward from the
    American chain's own near-the-money pairs."""
    base = base or ForwardConfig()
    slices = reference.expiries()
    fitted = [f for f in forwards_from_slices(reference, slices, _slice_years(reference, slices, None), base)
              if f.method is ForwardMethod.PARITY_FIT]
    rate = base.fallback_rate
    if fitted:
        # one expiry's parity rate is noisy (+-0.5% at a month): the median of the nearest few in maturity
        nearest = ([f for f in fitted if f.t <= 1.0] or fitted) if t is None else \
            sorted(fitted, key=lambda f: abs(f.t - t))[:_RATE_NEIGHBOURS]
        rate = float(np.median([f.rate for f in nearest]))
    return dataclasses.replace(base, fallback_rate=rate, max_rate_se=_NEVER_FIT_RATE)


def american_inputs(spot: float, forward: np.ndarray, t: np.ndarray,
                    discount: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rate, dividend yield) per row from the parity forward and discount factor: r = -ln(D)/t and the
    yield that carries ``spot`` to F, q = r - ln(F/S)/t (both 1/year; 0 where t <= 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        live = t > 0
        rate = np.where(live, -np.log(discount) / t, 0.0)
        q = np.where(live, rate - np.log(forward / spot) / t, 0.0)
    return rate, q


def _without_early_exercise(forward, discount, t, strike, is_call, vol, am, spot, expiry_index) -> np.ndarray:
    """Per row: the parity forward plus the mean (EEP_put - EEP_call)/D of its expiry's near-the-money pairs.

    For American options C - P = D (F - K) + EEP_call - EEP_put, so a parity line through American mids
    implies F + (EEP_call - EEP_put)/D; the premia are the model's (American minus Black-76 on the same
    forward) at the pair's mean IV, for pairs within 2% of the forward.
    """
    pair = np.flatnonzero(is_call[:-1] & ~is_call[1:] & (strike[:-1] == strike[1:]) & am[:-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        sig = 0.5 * (vol[pair] + vol[pair + 1])
        near = np.isfinite(sig) & (t[pair] > 0) & (np.abs(np.log(strike[pair] / forward[pair])) <= _EEP_BAND)
    i, sig = pair[near], sig[near]
    if not i.size:
        return forward
    two = (lambda a: np.concatenate([a, a]))  # noqa: E731 - the call and the put of each pair
    rights = np.r_[np.ones(i.size, bool), np.zeros(i.size, bool)]
    rate, q = american_inputs(spot, forward[i], t[i], discount[i])
    eep = (american.american_price(spot, two(strike[i]), two(t[i]), two(rate), two(q), two(sig), rights)
           - black76.price(forward=two(forward[i]), strike=two(strike[i]), t=two(t[i]), vol=two(sig),
                           discount=two(discount[i]), is_call=rights))
    shift = (eep[i.size:] - eep[:i.size]) / discount[i]
    g = expiry_index[i]
    n_exp = int(expiry_index.max()) + 1
    count = np.bincount(g, minlength=n_exp)
    mean = np.bincount(g, weights=shift, minlength=n_exp) / np.maximum(count, 1)
    return forward + mean[expiry_index]


def _solve_mixed(prices, forward, strike, t, discount, is_call, am, spot):
    """Black-76 IVs for the European rows, American-model IVs for the American ones."""
    vol = np.full(len(prices), np.nan)
    reason = np.zeros(len(prices), dtype=np.uint8)
    eu = ~am
    if eu.any():
        res = iv.implied_vol(price=prices[eu], forward=forward[eu], strike=strike[eu], t=t[eu],
                             discount=discount[eu], is_call=is_call[eu])
        vol[eu], reason[eu] = res.vol, res.reason
    rate, q = american_inputs(spot, forward[am], t[am], discount[am])
    res = american.american_iv(prices[am], spot, strike[am], t[am], rate, q, is_call[am])
    vol[am], reason[am] = res.vol, res.reason
    return vol, reason


def greeks_at(forward: np.ndarray, strike: np.ndarray, t: np.ndarray, vol: np.ndarray, discount: np.ndarray,
              is_call: np.ndarray, *, spot: float | None = None,
              american_rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(delta, gamma, vega per vol point, theta per calendar day) at ``vol``; NaN where vol is NaN or t <= 0.

    Rows flagged in ``american_rows`` (with ``spot``) take the American model's greeks (see the module docstring).
    """
    ok = np.isfinite(vol) & (t > 0)
    out = [np.full(len(vol), np.nan) for _ in range(4)]
    if not ok.any():
        return tuple(out)
    am = (np.zeros(len(vol), dtype=bool) if american_rows is None or spot is None
          else np.asarray(american_rows, dtype=bool))
    eu = ok & ~am
    if eu.any():
        g = black76.greeks(forward=forward[eu], strike=strike[eu], t=t[eu], vol=vol[eu], discount=discount[eu],
                           is_call=is_call[eu])
        for o, v in zip(out, (g.delta, g.gamma, g.vega_per_point(), g.theta_per_day()), strict=True):
            o[eu] = v
    sel = ok & am
    if sel.any():
        rate, q = american_inputs(spot, forward[sel], t[sel], discount[sel])
        g = american.american_greeks(spot, strike[sel], t[sel], rate, q, vol[sel], is_call[sel])
        for o, v in zip(out, (g.delta, g.gamma, g.vega_per_point(), g.theta_per_day()), strict=True):
            o[sel] = v
    return tuple(out)
