"""SPY beside the simulated index: its price, quarterly cash dividends, listing and American quotes.

SPY = ``ratio * SPX * exp(e) * exp(q * tau)``: the index scaled, a small mean-reverting tracking difference
``e`` (its own random draws, from a generator seeded with the market's seed and a SPY stream number, so the
index's draws are untouched), and the index dividends SPY has accrued in cash since the last ex-date
(``tau`` years; SPY pays them quarterly and drops by the dividend on the ex-date, the third Friday of
Mar/Jun/Sep/Dec). Each future dividend is one quarter's accrual, ``ratio * SPX * (exp(q * quarter) - 1)``,
fixed when the chain is listed (a declared dividend).

Options are American (PM-settled, penny ticks): the vol of a strike is the index surface's (SSVI) at the same
log-moneyness against SPY's own forward ``(SPY - PV(dividends)) * exp(r T)``, and the theo is
``american_price(SPY, K, T, r, 0, vol, dividends=...)``. The early-exercise premium (American minus the
European Black-76 value on that forward) moves slowly; it is recomputed every ``eep_refresh_seconds`` of
simulated time and on every listing, and between refreshes quotes follow the European part tick by tick.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np

from spx_core.domain.calendar import ET, YEAR_SECONDS, MarketCalendar, from_ns, to_ns
from spx_core.domain.contracts import ROOTS, Root
from spx_core.marketdata.simulator import quoting
from spx_core.marketdata.simulator.book import QuoteBook
from spx_core.marketdata.simulator.chain import ChainLayout, contract_keys
from spx_core.marketdata.simulator.config import QuotingParams, SimulatorConfig, SpyParams
from spx_core.marketdata.simulator.surface import atm_total_variance, ssvi_total_variance
from spx_core.marketdata.source import QuoteBatch
from spx_core.pricing import american, black76

__all__ = ["SpyListing", "spy_expiries", "spy_strike_grid", "ex_dividend_dates", "penny_quotes", "spy_width"]

_SPY_STREAM = 0x535059  # "SPY": the second number of the SeedSequence of SPY's generator
_SPY_CODE = np.uint8(ROOTS.index(Root.SPY))
_PENNY = 0.01


def spy_expiries(calendar: MarketCalendar, asof: date, params: SpyParams) -> list[date]:
    """Every trading day to ``daily_days``, Fridays to ``weekly_days``, third Fridays for ``monthly_months``."""
    out = set(calendar.trading_days(asof, asof + timedelta(days=params.daily_days)))
    out.update(d for d in calendar.trading_days(asof, asof + timedelta(days=params.weekly_days)) if d.weekday() == 4)
    for i in range(params.monthly_months + 1):
        y, m = asof.year + (asof.month - 1 + i) // 12, (asof.month - 1 + i) % 12 + 1
        e = calendar.monthly_expiry(y, m)
        if e >= asof:
            out.add(e)
    return sorted(out)


def spy_strike_grid(*, forward: float, t: float, params: SpyParams) -> np.ndarray:
    """Listed strikes (dollars, ascending): ``near_step`` to ``near_sd`` standard deviations, ``far_step`` to
    ``far_sd``, at most ``*_count`` strikes per side and band."""
    s = params.sigma_ref * math.sqrt(max(t, params.min_t))
    parts, down, up = [], 0.0, 0.0
    for step, sd, count in ((params.near_step, params.near_sd, params.near_count),
                            (params.far_step, params.far_sd, params.far_count)):
        down = max(down, min(forward * -math.expm1(-sd * s), down + count * step))
        up = max(up, min(forward * math.expm1(sd * s), up + count * step))
        first, last = math.ceil((forward - down) / step - 1e-9), math.floor((forward + up) / step + 1e-9)
        if last >= first:
            parts.append(np.arange(first, last + 1, dtype=np.float64) * step)
    return np.unique(np.concatenate(parts))


def ex_dividend_dates(calendar: MarketCalendar, first: date, last: date, months: tuple[int, ...]) -> list[date]:
    """Ex-dividend dates (third Friday, or the trading day before, of ``months``) in [first, last]."""
    out = []
    for y in range(first.year, last.year + 1):
        out.extend(d for m in months if first <= (d := calendar.monthly_expiry(y, m)) <= last)
    return sorted(out)


def penny_quotes(*, theo: np.ndarray, width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bid and ask ``n`` pennies apart around ``theo`` (SPY is in the penny program: $0.01 at every price)."""
    span = np.maximum(np.rint(width / _PENNY), 1.0) * _PENNY
    bid = np.maximum(np.round(np.rint((theo - 0.5 * span) / _PENNY) * _PENNY, 2), 0.0)
    ask = np.round(np.maximum(np.maximum(bid + span, np.ceil(theo / _PENNY - 1e-7) * _PENNY), _PENNY), 2)
    return bid, ask


def spy_width(*, theo: np.ndarray, days: np.ndarray, jitter: np.ndarray, params: QuotingParams,
              scale: float = 0.5, ratio: float = 0.1) -> np.ndarray:
    """SPY's target width: the index width table at the index-equivalent price, scaled back to SPY dollars."""
    return scale * ratio * quoting.quote_width(theo=theo / ratio, days=days, jitter=jitter, params=params)


class SpyListing:
    """SPY's state, listing and book, stepped by :class:`SimulatedMarket` alongside the index."""

    def __init__(self, config: SimulatorConfig, *, calendar: MarketCalendar) -> None:
        self._cfg, self._p, self._cal = config, config.spy, calendar
        self._rng = np.random.default_rng([config.seed, _SPY_STREAM])
        p = self._p
        self.book = QuoteBook(
            underlying="SPY", quoting_params=config.quoting, rng=self._rng, quotes=penny_quotes,
            width=lambda **kw: spy_width(**kw, scale=p.width_scale, ratio=p.ratio))
        self._track = 0.0  # log tracking difference to ratio * SPX
        self._spot = float("nan")
        self._ex_ns = np.zeros(0, np.int64)  # ex-dividend instants (the last past one first)
        self._div = np.zeros(0)  # the dividend of each ex-date (dollars; the past one's is not used)
        self._eep = np.zeros(0)
        self._eep_ns: int | None = None
        self._changed = np.zeros(0, np.int64)

    # --- state ----------------------------------------------------------------------------------
    @property
    def spot(self) -> float:
        """SPY's last computed price (dollars, unrounded)."""
        return self._spot

    def dividends(self, now_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """(years from ``now_ns`` to each future ex-date, dollars per share) of the listed dividends."""
        future = self._ex_ns > now_ns
        return (self._ex_ns[future] - now_ns) / 1e9 / YEAR_SECONDS, self._div[future]

    def evolve(self, clock_seconds: float) -> None:
        """Step the tracking difference (exact Ornstein-Uhlenbeck transition over ``clock_seconds``)."""
        if clock_seconds <= 0:
            return
        decay = math.exp(-math.log(2.0) * clock_seconds / self._p.tracking_halflife)
        sd = self._p.tracking_bp * 1e-4 * math.sqrt(1.0 - decay * decay)
        self._track = self._track * decay + sd * float(self._rng.standard_normal())

    def _price_now(self, now_ns: int, spx_spot: float) -> float:
        past = self._ex_ns[self._ex_ns <= now_ns]
        tau = (now_ns - past[-1]) / 1e9 / YEAR_SECONDS if past.size else 0.0
        return self._p.ratio * spx_spot * math.exp(self._track + self._p.div_yield * tau)

    # --- listing --------------------------------------------------------------------------------
    def relist(self, *, now_ns: int, spx_spot: float, variance: float) -> None:
        previous = self.book.layout
        asof = from_ns(now_ns).astimezone(ET).date()
        self._list_dividends(now_ns, asof, spx_spot)
        self._spot = self._price_now(now_ns, spx_spot)
        self.book.list_rows(self._layout(now_ns, asof))
        theo, liq, days = self._price(now_ns, variance, refresh=True)
        self.book.relist(now_ns=now_ns, theo=theo, liq=liq, days=days, previous=previous)

    def _list_dividends(self, now_ns: int, asof: date, spx_spot: float) -> None:
        """The last past ex-date (SPY accrues from it) and the future ones with their declared dividends."""
        p = self._p
        dates = ex_dividend_dates(self._cal, asof - timedelta(days=120), asof + timedelta(days=400), p.ex_months)
        inst = np.array([to_ns(self._cal.session_open(d)) for d in dates], dtype=np.int64)  # ex at the open
        past = inst[inst <= now_ns]
        self._ex_ns = np.concatenate([past[-1:], inst[inst > now_ns]])
        quarters = np.diff(self._ex_ns, prepend=self._ex_ns[:1]) / 1e9 / YEAR_SECONDS  # each one's accrual
        self._div = p.ratio * spx_spot * np.expm1(p.div_yield * quarters)

    def _layout(self, now_ns: int, asof: date) -> ChainLayout:
        p, cfg = self._p, self._cfg
        exp_date, exp_inst, grids = [], [], []
        for expiry in spy_expiries(self._cal, asof, p):
            inst = to_ns(self._cal.expiry_instant(expiry, Root.SPY))
            if inst <= now_ns:
                continue
            t = (inst - now_ns) / 1e9 / YEAR_SECONDS
            times, amounts = self.dividends(now_ns)
            prepaid = self._spot - float(np.sum(amounts[times < t] * np.exp(-cfg.rate * times[times < t])))
            grids.append(spy_strike_grid(forward=prepaid * math.exp(cfg.rate * t), t=t, params=p))
            exp_date.append(np.datetime64(expiry, "D"))
            exp_inst.append(inst)
        counts = np.array([2 * len(g) for g in grids], dtype=np.int64)
        stops = np.cumsum(counts)
        exp_index = np.repeat(np.arange(len(counts)), counts)
        strike = np.repeat(np.concatenate(grids) if grids else np.zeros(0), 2)
        is_call = np.tile(np.array([True, False]), int(counts.sum()) // 2)
        exp_date_a = np.array(exp_date, dtype="datetime64[D]")
        root = np.full(len(strike), _SPY_CODE, dtype=np.uint8)
        expiry = exp_date_a[exp_index]
        roundness = np.select([strike % 50 == 0, strike % 10 == 0, strike % 5 == 0], [3.0, 2.0, 1.5], 1.0)
        return ChainLayout(
            exp_root=np.full(len(counts), _SPY_CODE, dtype=np.uint8), exp_date=exp_date_a,
            exp_instant_ns=np.array(exp_inst, dtype=np.int64), exp_start=stops - counts, exp_stop=stops,
            root=root, expiry=expiry, strike=strike, is_call=is_call, exp_index=exp_index, roundness=roundness,
            key=contract_keys(expiry=expiry, root=root, strike=strike, is_call=is_call), listed_ns=now_ns)

    # --- pricing and quoting ----------------------------------------------------------------------
    def _price(self, now_ns: int, variance: float, *, refresh: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """American theos, liquidity and days to expiry per row (``refresh``: recompute the early-exercise part)."""
        cfg, p, lay = self._cfg, self._p, self.book.layout
        idx = lay.exp_index
        t_e = np.maximum((lay.exp_instant_ns - now_ns) / 1e9 / YEAR_SECONDS, 0.0)
        times, amounts = self.dividends(now_ns)
        pv = ((amounts * np.exp(-cfg.rate * times))[:, None] * (times[:, None] < t_e[None, :])).sum(axis=0)
        forward_e = (self._spot - pv) * np.exp(cfg.rate * t_e)
        theta_e = np.maximum(atm_total_variance(variance=variance, t=t_e, process=cfg.process,
                                                surface=cfg.surface), 1e-12)
        k = self.book.log_k - np.log(forward_e)[idx]
        t = t_e[idx]
        vol = np.sqrt(ssvi_total_variance(k=k, theta=theta_e[idx], surface=cfg.surface) / np.maximum(t, 1e-9))
        euro = black76.price(forward=forward_e[idx], strike=lay.strike, t=t, vol=vol,
                             discount=np.exp(-cfg.rate * t_e)[idx], is_call=lay.is_call)
        stale = self._eep_ns is None or len(self._eep) != len(euro) or \
            (now_ns - self._eep_ns) >= p.eep_refresh_seconds * 1e9
        if refresh or stale:
            am = american.american_price(self._spot, lay.strike, t, cfg.rate, 0.0, vol, lay.is_call,
                                         method=p.method, dividends=(times, amounts))
            self._eep, self._eep_ns = np.maximum(am - euro, 0.0), now_ns
        theo = euro + self._eep
        z = k / np.sqrt(np.maximum(theta_e, 1e-6))[idx]
        days_e = t_e * 365.0
        liq = quoting.liquidity(z=z, otm=(k > 0) == lay.is_call, roundness=lay.roundness,
                                term=(1.0 / (1.0 + days_e / 7.0))[idx])
        return theo, liq, days_e[idx]

    def after_move(self, *, dt: float, now_ns: int, spx_spot: float, variance: float) -> None:
        """The clock moved ``dt`` seconds inside a session: drop expired rows, reprice and requote."""
        self._spot = self._price_now(now_ns, spx_spot)
        expired = self.book.has_expired(now_ns)
        if expired:
            self.book.drop_expired(now_ns)
        if dt <= 0:
            return
        theo, liq, days = self._price(now_ns, variance, refresh=expired)
        self._changed = self.book.requote(dt=dt, now_ns=now_ns, theo=theo, liq=liq, days=days)

    def emit(self, *, now_ns: int) -> QuoteBatch:
        changed, self._changed = self._changed, np.zeros(0, np.int64)
        return self.book.emit(changed, now_ns=now_ns, price=round(self._spot, 2))
