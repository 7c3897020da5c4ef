"""What the chain shows per quote: an implied vol a trader can use, its greeks, and theta to the close.

The solver's mid IV is only meaningful when the quote pins the option's time value. Near expiry most
quotes do not: a far out-of-the-money option bid 0 / offered 0.05 "solves" to 100-400% vol (the mid
0.025 is half a tick, not a price), and an in-the-money option whose bid sits at or below intrinsic has
no IV at all, so its delta would be blank instead of near 1. Such a quote is *served* an IV instead:

1. the solver's mid IV when the quote identifies one (:attr:`IVSource.QUOTE`);
2. for an in-the-money quote, the out-of-the-money option's IV at the same strike, when that one is
   identified (:attr:`IVSource.OTM_SIDE`; on the implied forward and discount factor put-call parity
   makes the two IVs equal, and the OTM price carries the time value with a tighter spread);
3. otherwise the expiry's fitted smile at the quote's log-moneyness (:attr:`IVSource.SURFACE`): the
   same SVI + correction fit as :func:`~spx_core.surface.fit_surface`, on the same forward and
   discount factor, fitted to this expiry's quotes (without the calendar repair against other
   expiries, which needs the whole surface).

:class:`Substitution` says why a quote's own IV was not used; the greeks and theta to the close are
evaluated at the served IV. The slice fit is reused for ``ServeConfig.refit_seconds`` of snapshot
time (its vol at each log-moneyness held), so a 10 Hz chain does not refit ten times a second.

Units: IVs annualized (0.2 = 20%); delta per index point; gamma per index point; vega per vol point;
theta per calendar day and theta to the close in index points.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import IntEnum

import numpy as np

from spx_core.domain.calendar import ET, MarketCalendar, default_calendar, from_ns, to_ns, year_fraction_ns
from spx_core.domain.contracts import Root
from spx_core.domain.snapshot import ChainSnapshot, ExpirySlice
from spx_core.pricing import black76
from spx_core.pricing.iv import IVReason
from spx_core.surface.chain_iv import ChainIV, expiry_chain_iv, greeks_at
from spx_core.surface.forwards import ForwardConfig
from spx_core.surface.surface import ExpiryFit, SurfaceConfig, VolSurface, fit_surface

__all__ = ["IVSource", "Substitution", "ServeConfig", "ServedChain", "serve_expiry", "substitutions",
           "session_close_years", "SUBSTITUTION_TEXT"]


class IVSource(IntEnum):
    """Where a quote's shown IV (and so its greeks) comes from."""

    NONE = 0  # no IV: the quote identifies none and there is no fitted smile
    QUOTE = 1  # the quote's own mid IV
    OTM_SIDE = 2  # the out-of-the-money option at the same strike
    SURFACE = 3  # the expiry's fitted smile


class Substitution(IntEnum):
    """Why a quote's own mid IV is not shown (NONE when it is)."""

    NONE = 0
    NO_QUOTE = 1  # no ask (and no bid)
    ZERO_BID = 2  # bid is zero: the mid is half the offer, not a price
    AT_INTRINSIC = 3  # mid within one tick of intrinsic: the time value is not resolved
    BID_AT_INTRINSIC = 4  # bid at or below intrinsic: the IV band has no lower end
    UNSOLVED = 5  # no vol reproduces the mid (above the no-arbitrage maximum, bad input)
    EXPIRED = 6  # at or past the expiry instant


#: Tooltip wording of each substitution reason.
SUBSTITUTION_TEXT: dict[Substitution, str] = {
    Substitution.NONE: "", Substitution.NO_QUOTE: "no quote", Substitution.ZERO_BID: "bid is zero",
    Substitution.AT_INTRINSIC: "price at intrinsic (within a tick)",
    Substitution.BID_AT_INTRINSIC: "bid at or below intrinsic", Substitution.UNSOLVED: "no IV solves the mid",
    Substitution.EXPIRED: "expired"}


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """How IVs are served.

    Attributes:
        tick_small / tick_large: SPX option price increments below / at or above ``tick_break``
            (index points; Cboe: 0.05 below 3.00, 0.10 from 3.00).
        tick_break: price at which the increment changes (index points).
        refit_seconds: how long a slice fit is reused before refitting (seconds of snapshot time; 0 =
            refit on every call).
        forward: how forwards are implied; surface: how the slice is fitted.
    """

    tick_small: float = 0.05
    tick_large: float = 0.10
    tick_break: float = 3.0
    refit_seconds: float = 2.0
    forward: ForwardConfig = field(default_factory=ForwardConfig)
    surface: SurfaceConfig = field(default_factory=SurfaceConfig)

    def __post_init__(self) -> None:
        if not (self.tick_small > 0 and self.tick_large > 0 and self.tick_break > 0 and self.refit_seconds >= 0):
            raise ValueError("ServeConfig: ticks and tick_break must be > 0, refit_seconds >= 0")


@dataclass(frozen=True, slots=True, eq=False)
class ServedChain:
    """One expiry's quotes with the IVs and greeks the chain shows; arrays aligned with ``civ.snapshot``.

    Attributes:
        civ: the solver's output (forward and discount factor implied from the whole snapshot).
        surface: the one-slice surface the SURFACE IVs come from (None when no quote needed it).
        fit_time_ns: snapshot time the slice was fitted at (0 when ``surface`` is None).
        iv: served IV per row (annualized; NaN when none); source: :class:`IVSource` codes (uint8).
        why: :class:`Substitution` codes (uint8), why the quote's own mid IV is not served.
        delta, gamma, vega, theta: greeks at the served IV (units in the module docstring).
        theta_close: option value change from now to today's session close at a fixed forward and
            served IV (index points; NaN outside the session). A 0DTE PM option goes to intrinsic.
        close_years: years from the snapshot to today's session close (NaN outside the session).
    """

    civ: ChainIV
    surface: VolSurface | None
    fit_time_ns: int
    iv: np.ndarray
    source: np.ndarray
    why: np.ndarray
    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray
    theta: np.ndarray
    theta_close: np.ndarray
    close_years: float

    @property
    def snapshot(self) -> ChainSnapshot:
        return self.civ.snapshot

    @property
    def fit(self) -> ExpiryFit | None:
        return self.surface.expiries[0] if self.surface is not None else None

    @property
    def key(self) -> tuple[Root, date] | None:
        f = self.civ.forwards
        return (f[0].root, f[0].expiry) if f else None


def serve_expiry(snapshot: ChainSnapshot, root: Root, expiry: date, *, previous: ServedChain | None = None,
                 config: ServeConfig | None = None, calendar: MarketCalendar | None = None,
                 slices: list[ExpirySlice] | None = None) -> ServedChain:
    """Served IVs, greeks and theta to the close of one expiry of ``snapshot``.

    ``previous``: the last result for this chain; its slice fit is reused while it is younger than
    ``config.refit_seconds`` and warm-starts the refit otherwise. ``slices``: ``snapshot.expiries()``
    if already at hand.

    Raises:
        ExpiryNotListedError: ``(root, expiry)`` is not in ``snapshot``.
    """
    cfg = config or ServeConfig()
    cal = calendar or default_calendar()
    civ = expiry_chain_iv(snapshot, root, expiry, forward_config=cfg.forward, calendar=cal, slices=slices)
    why = substitutions(civ, cfg)
    surface, fit_time = _slice_surface(civ, why, previous, cfg)
    iv, source = _served_iv(civ, why, surface)
    delta, gamma, vega, theta = civ.delta.copy(), civ.gamma.copy(), civ.vega.copy(), civ.theta.copy()
    other = source != IVSource.QUOTE
    if other.any():
        c = civ.snapshot.columns
        g = greeks_at(civ.forward[other], c["strike"][other], civ.t[other], iv[other], civ.discount[other],
                      c["is_call"][other], spot=civ.spot,
                      american_rows=None if civ.american is None else civ.american[other])
        for out, values in zip((delta, gamma, vega, theta), g, strict=True):
            out[other] = values
    close_years = session_close_years(snapshot.time_ns, cal)
    return ServedChain(civ, surface, fit_time, iv, source, why, delta, gamma, vega, theta,
                       _theta_to_close(civ, iv, close_years), close_years)


def substitutions(civ: ChainIV, config: ServeConfig) -> np.ndarray:
    """:class:`Substitution` code (uint8) per row of ``civ``: why its own mid IV is not to be shown."""
    c = civ.snapshot.columns
    bid, ask, strike = c["bid"], c["ask"], c["strike"]
    mid = 0.5 * (bid + ask)
    sign = np.where(c["is_call"], 1.0, -1.0)
    intrinsic = civ.discount * np.maximum(sign * (civ.forward - strike), 0.0)
    tick = np.where(mid < config.tick_break, config.tick_small, config.tick_large)
    why = np.zeros(len(civ), dtype=np.uint8)
    with np.errstate(invalid="ignore"):
        # Later rules overwrite earlier ones: the most basic reason wins.
        why[civ.reason != IVReason.OK] = Substitution.UNSOLVED
        why[(civ.reason_bid != IVReason.OK) & (bid <= intrinsic)] = Substitution.BID_AT_INTRINSIC
        why[mid - intrinsic < tick] = Substitution.AT_INTRINSIC
        why[~(bid > 0)] = Substitution.ZERO_BID
        why[~(ask > 0)] = Substitution.NO_QUOTE
        why[~(civ.t > 0)] = Substitution.EXPIRED
    return why


def session_close_years(time_ns: int, calendar: MarketCalendar) -> float:
    """ACT/365 years from ``time_ns`` to that day's regular-session close (NaN outside the session day)."""
    today = from_ns(time_ns).astimezone(ET).date()
    if not calendar.is_trading_day(today):
        return float("nan")
    years = float(year_fraction_ns(time_ns, to_ns(calendar.session_close(today))))
    return years if years > 0 else float("nan")


def _slice_surface(civ: ChainIV, why: np.ndarray, previous: ServedChain | None,
                   cfg: ServeConfig) -> tuple[VolSurface | None, int]:
    now = civ.snapshot.time_ns
    same = previous is not None and previous.surface is not None and previous.key == _key(civ)
    if same and 0 <= now - previous.fit_time_ns < cfg.refit_seconds * 1e9:
        return previous.surface, previous.fit_time_ns
    if not (why != Substitution.NONE).any() or not civ.forwards or not civ.forwards[0].t > 0:
        return None, 0
    return fit_surface(civ, previous=previous.surface if same else None, config=cfg.surface), now


def _key(civ: ChainIV) -> tuple[Root, date] | None:
    f = civ.forwards
    return (f[0].root, f[0].expiry) if f else None


def _served_iv(civ: ChainIV, why: np.ndarray, surface: VolSurface | None) -> tuple[np.ndarray, np.ndarray]:
    c = civ.snapshot.columns
    own = (why == Substitution.NONE) & np.isfinite(civ.iv_mid)
    iv = np.where(own, civ.iv_mid, np.nan)
    source = np.where(own, IVSource.QUOTE, IVSource.NONE).astype(np.uint8)
    live = civ.t > 0
    # Canonical order puts a strike's call directly before its put: pair neighbours.
    strike, is_call = c["strike"], c["is_call"]
    partner = np.full(len(civ), -1, dtype=np.int64)
    if len(civ) > 1:
        i = np.flatnonzero(is_call[:-1] & ~is_call[1:] & (strike[:-1] == strike[1:]))
        partner[i], partner[i + 1] = i + 1, i
    with np.errstate(invalid="ignore"):
        itm = np.where(is_call, civ.k < 0, civ.k > 0)
    has = partner >= 0
    use_otm = np.zeros(len(civ), dtype=bool)
    use_otm[has] = ~own[has] & itm[has] & own[partner[has]] & live[has]
    iv[use_otm] = civ.iv_mid[partner[use_otm]]
    source[use_otm] = IVSource.OTM_SIDE
    rest = ~own & ~use_otm & live & np.isfinite(civ.k)
    if surface is not None and rest.any():
        fitted = surface.expiries[0].iv(civ.k[rest])
        ok = np.isfinite(fitted) & (fitted > 0)
        idx = np.flatnonzero(rest)[ok]
        iv[idx] = fitted[ok]
        source[idx] = IVSource.SURFACE
    return iv, source


def _theta_to_close(civ: ChainIV, iv: np.ndarray, close_years: float) -> np.ndarray:
    """V(t - dt) - V(t) at a fixed forward and vol, dt = time to the close (capped at expiry)."""
    if not np.isfinite(close_years):
        return np.full(len(civ), np.nan)
    c = civ.snapshot.columns
    t = civ.t
    with np.errstate(invalid="ignore", divide="ignore"):
        t_after = np.maximum(t - close_years, 0.0)
        # The discount factor rolls forward at the expiry's own rate: DF(t') = DF(t) ** (t'/t).
        df_after = np.where(t > 0, civ.discount ** (t_after / t), 1.0)
    now = black76.price(forward=civ.forward, strike=c["strike"], t=t, vol=iv, discount=civ.discount,
                        is_call=c["is_call"])
    later = black76.price(forward=civ.forward, strike=c["strike"], t=t_after, vol=iv, discount=df_after,
                          is_call=c["is_call"])
    out = later - now
    out[~(t > 0)] = np.nan
    return out
