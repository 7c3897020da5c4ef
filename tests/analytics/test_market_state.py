"""MarketState: each field equals a direct call of its estimator on a known series; missing data says why;
no bar of the snapshot's session (or later) is used; the bars part is cached per bars' last date."""

from __future__ import annotations

import dataclasses
import math
from datetime import date, datetime, time

import numpy as np
import pandas as pd
import pytest

from spx_core.analytics.garch import garch_forecast
from spx_core.analytics.iv_rank import iv_percentile, iv_rank
from spx_core.analytics.market_bars import NO_SPX_BARS, NO_VIX_BARS
from spx_core.analytics.market_state import (
    DAYS_30,
    MISSING_SURFACE,
    BarsCache,
    MarketState,
    MarketStateConfig,
    market_state,
)
from spx_core.analytics.regimes import (
    MixtureRegimes,
    TrendRegime,
    trend_regime,
    vix_bucket,
)
from spx_core.analytics.volatility import close_to_close, yang_zhang
from spx_core.domain import ET
from spx_core.surface import fit_surface
from tests.chains import NOW, make_chain

SESSION = NOW.date()  # 2024-03-04, a Monday


def same(a: MarketState, b: MarketState) -> bool:
    """Field by field, NaN equal to NaN (repr round-trips floats exactly)."""
    return repr(a) == repr(b)


def sessions(n: int, last: date) -> list[date]:
    days = pd.bdate_range(end=last, periods=n)
    return [d.date() for d in days]


def ohlc_bars(n: int = 600, last: date = date(2024, 3, 1), seed: int = 7) -> pd.DataFrame:
    """A GBM-like daily OHLC series (about 16% vol) stamped at the 16:00 ET close."""
    rng = np.random.default_rng(seed)
    overnight = rng.normal(0.0, 0.004, n)
    intraday = rng.normal(0.0003, 0.009, n)
    close = 4000.0 * np.exp(np.cumsum(overnight + intraday))
    open_ = close * np.exp(-intraday)
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.004, n)))
    times = [datetime.combine(d, time(16), ET) for d in sessions(n, last)]
    return pd.DataFrame({"time": pd.to_datetime(times).tz_convert("UTC"), "open": open_, "high": high,
                         "low": low, "close": close, "volume": np.full(n, 1e9)})


def vix_bars(n: int = 400, last: date = date(2024, 3, 1), seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    vix = 15.0 * np.exp(np.cumsum(rng.normal(0, 0.05, n)) * 0.3)
    times = [datetime.combine(d, time(16, 15), ET) for d in sessions(n, last)]
    nan = np.full(n, np.nan)
    return pd.DataFrame({"time": pd.to_datetime(times).tz_convert("UTC"), "open": nan, "high": nan, "low": nan,
                         "close": vix, "volume": nan})


@pytest.fixture(scope="module")
def chain():
    return make_chain()


@pytest.fixture(scope="module")
def surface(chain):
    return fit_surface(chain[0])


@pytest.fixture(scope="module")
def spx():
    return ohlc_bars()


@pytest.fixture(scope="module")
def vix():
    return vix_bars()


@pytest.fixture(scope="module")
def state(spx, vix, surface) -> MarketState:
    return market_state(spx, vix, surface)


def test_realized_vols_are_the_estimators_on_the_bars(state, spx):
    o, h, lo, c = (spx[k].to_numpy() for k in ("open", "high", "low", "close"))
    for window, label in ((10, "10d"), (20, "20d"), (30, "30d")):
        assert getattr(state, f"rv_yz_{label}") == pytest.approx(yang_zhang(o, h, lo, c, window)[-1], rel=1e-12)
        assert getattr(state, f"rv_cc_{label}") == pytest.approx(close_to_close(c, window)[-1], rel=1e-12)
    assert state.rv_vrp == pytest.approx(yang_zhang(o, h, lo, c, 21)[-1], rel=1e-12)
    assert 0.08 < state.rv_yz_20d < 0.3  # the series was built with ~16% vol
    assert state.spx_as_of == date(2024, 3, 1)


def test_garch_is_garch_forecast_on_the_log_returns(state, spx):
    forecast = garch_forecast(np.diff(np.log(spx["close"].to_numpy())), horizon_days=(1, 5, 21))
    assert state.garch_vol == tuple(zip((1, 5, 21), forecast.vol, strict=True))
    # fitted on the latest fit_sessions only
    short = market_state(spx, None, None, config=MarketStateConfig(fit_sessions=300))
    recent = garch_forecast(np.diff(np.log(spx["close"].to_numpy()[-300:])), horizon_days=(1, 5, 21))
    assert short.garch_vol == tuple(zip((1, 5, 21), recent.vol, strict=True))


def test_regimes_are_the_regime_estimators_on_the_bars(state, spx):
    h, lo, c = (spx[k].to_numpy() for k in ("high", "low", "close"))
    assert state.trend == trend_regime(h, lo, c) and state.trend is not TrendRegime.UNKNOWN
    model = MixtureRegimes().fit(c)
    assert state.mixture_regime == model.current(c) and state.mixture_regime in model.names
    assert state.mixture_probability == pytest.approx(model.predict_proba(c)[-1].max(), rel=1e-12)
    assert state.vix_bucket == vix_bucket(state.vix)


def test_vix_level_and_rank_are_iv_rank_on_the_vix_closes(state, vix):
    closes = vix["close"].to_numpy()
    assert state.vix == closes[-1] and state.vix_as_of == date(2024, 3, 1)
    assert state.vix_rank == pytest.approx(iv_rank(closes[:-1], closes[-1], window=252))
    assert state.vix_percentile == pytest.approx(iv_percentile(closes[:-1], closes[-1], window=252))
    assert 0 <= state.vix_rank <= 100


def test_atm_iv_30d_interpolates_total_variance_between_the_bracketing_expiries(state, surface, chain):
    fits = sorted((f for f in surface.expiries if f.fitted), key=lambda f: f.t)
    lo = max(i for i, f in enumerate(fits) if f.t <= DAYS_30)
    a, b = fits[lo], fits[lo + 1]
    w0 = np.maximum.accumulate([f.w(np.array([0.0]))[0] for f in fits])  # the surface's calendar-free nodes
    w = w0[lo] + (DAYS_30 - a.t) / (b.t - a.t) * (w0[lo + 1] - w0[lo])
    assert state.atm_iv_30d == pytest.approx(math.sqrt(w / DAYS_30), rel=1e-9)
    assert state.atm_iv_30d == float(surface.iv(k=np.array(0.0), t=np.array(DAYS_30)))  # the whole surface's
    # and the truth the chain was built from (SVI at k = 0, linear in total variance)
    truth = sorted(chain[1], key=lambda e: e.t)
    ta, tb = truth[lo], truth[lo + 1]
    wa, wb = (np.asarray(_svi_w0(e.svi)) for e in (ta, tb))
    w_true = wa + (DAYS_30 - ta.t) / (tb.t - ta.t) * (wb - wa)
    assert state.atm_iv_30d == pytest.approx(math.sqrt(w_true / DAYS_30), abs=0.003)


def _svi_w0(params):
    a, b, rho, m, sigma = params
    return a + b * (rho * (0 - m) + math.sqrt(m * m + sigma * sigma))


def test_front_expiry_term_slope_and_vrp(state, surface):
    front = min((f for f in surface.expiries if f.fitted and f.t > 0), key=lambda f: f.t)
    assert (state.front_root, state.front_expiry) == (front.root, front.expiry)
    assert state.front_days == pytest.approx(front.t * 365.0)
    assert state.front_atm_iv == front.atm_iv
    assert state.term_slope_volpts == pytest.approx((front.atm_iv - state.atm_iv_30d) * 100.0)
    assert state.vrp_volpts == pytest.approx((state.atm_iv_30d - state.rv_vrp) * 100.0)
    assert state.vrp_variance == pytest.approx(state.atm_iv_30d ** 2 - state.rv_vrp ** 2)
    assert state.time_ns == surface.time_ns and state.spot == surface.underlying_price


def test_expected_move_is_one_sd_from_the_front_atm_iv(state, surface):
    front = min((f for f in surface.expiries if f.fitted and f.t > 0), key=lambda f: f.t)
    assert state.expected_move == pytest.approx(front.forward * front.atm_iv * math.sqrt(front.t), rel=1e-6)
    assert "needs the snapshot's ChainIV" in state.why("straddle_move")


def test_straddle_move_is_expected_moves_on_the_chain(spx, vix, surface, chain):
    from spx_core.strategies.probability import expected_moves
    from spx_core.surface import chain_iv

    civ = chain_iv(chain[0])
    s = market_state(spx, vix, surface, civ=civ)
    move = next(m for m in expected_moves(surface, civ) if (m.root, m.expiry) == (s.front_root, s.front_expiry))
    assert s.straddle_move == move.straddle_move and math.isfinite(s.straddle_move)
    assert s.expected_move == move.iv_move


def test_bars_of_the_snapshot_session_and_later_are_not_used(spx, vix, surface, state):
    later = ohlc_bars(n=3, last=date(2024, 3, 6), seed=99)  # 4, 5, 6 March: the session and after
    later[["open", "high", "low", "close"]] *= 2.0  # a jump that would move every estimator
    more_vix = vix_bars(n=3, last=date(2024, 3, 6), seed=5)
    more_vix["close"] *= 3.0
    with_future = market_state(pd.concat([spx, later], ignore_index=True),
                               pd.concat([vix, more_vix], ignore_index=True), surface)
    assert same(with_future, state)


def test_missing_vix_bars_say_how_to_import_them(spx, surface):
    s = market_state(spx, None, surface)
    for name in ("vix", "vix_rank", "vix_percentile", "vix_bucket"):
        assert s.why(name) == NO_VIX_BARS == "no VIX bars: import vix.csv.gz with spx-data import"
    assert math.isnan(s.vix) and s.vix_bucket is None
    assert s.has("rv_yz_20d") and s.has("atm_iv_30d")


def test_missing_spx_bars_and_surface(vix):
    s = market_state(None, vix, None, session=SESSION)
    assert s.why("rv_yz_20d") == NO_SPX_BARS and s.why("garch_vol") == NO_SPX_BARS
    assert s.why("atm_iv_30d") == MISSING_SURFACE and s.why("expected_move") == MISSING_SURFACE
    assert s.has("vix") and math.isnan(s.rv_yz_20d) and s.garch_vol == ()
    empty = ohlc_bars().iloc[:0]
    assert market_state(empty, None, None).why("rv_cc_10d") == NO_SPX_BARS


def test_stale_bars_keep_their_fields_but_are_not_compared_with_the_live_surface(surface):
    old = ohlc_bars(last=date(2023, 12, 29))
    s = market_state(old, None, surface)
    assert s.spx_as_of == date(2023, 12, 29) and math.isfinite(s.rv_yz_20d)
    assert any("SPX bars end 2023-12-29, 66 days before the 2024-03-04 session" in n for n in s.notes)
    assert math.isnan(s.vrp_volpts) and "not current" in s.why("vrp_volpts")


def test_short_history_gives_the_reason_not_a_number(surface):
    s = market_state(ohlc_bars(n=15), vix_bars(n=10), surface)
    assert s.has("rv_yz_10d") and not s.has("rv_yz_20d") and "needs 21" in s.why("rv_yz_20d")
    assert "GARCH(1,1) needs at least" in s.why("garch_vol")
    assert "IV rank needs 20" in s.why("vix_rank")
    assert "the trend rule (ADX 14 + SMA 50/200) needs 200" in s.why("trend") and s.trend is None
    assert "regime model needs at least 250" in s.why("mixture_regime")


def test_30d_iv_needs_expiries_on_both_sides(surface):
    near = dataclasses.replace(surface, expiries=tuple(f for f in surface.expiries if f.t < 20 / 365))
    s = market_state(None, None, near)
    assert math.isnan(s.atm_iv_30d) and "not 30 days" in s.why("atm_iv_30d")
    assert math.isnan(s.term_slope_volpts) and s.has("front_atm_iv")


def test_stored_atm_iv_rank_uses_history_before_the_session(spx, surface, state):
    days = sessions(60, date(2024, 3, 4))  # the last one is the session itself: excluded
    history = pd.Series(np.linspace(0.10, 0.30, 60), index=pd.Index(days, name="date"))
    s = market_state(spx, None, surface, atm_iv_history=history)
    before = history.to_numpy()[:-1]
    assert s.atm_iv_rank == pytest.approx(iv_rank(before, state.atm_iv_30d, window=252))
    assert s.atm_iv_percentile == pytest.approx(iv_percentile(before, state.atm_iv_30d, window=252))
    assert "no stored ATM IVs" in state.why("atm_iv_rank")


def test_bars_part_is_cached_per_last_bar(spx, vix, surface, state):
    cache = BarsCache()
    first = market_state(spx, vix, surface, cache=cache)
    again = market_state(spx, vix, surface, cache=cache)
    assert same(first, state) and same(again, state) and (cache.misses, cache.hits) == (1, 1)
    market_state(spx.iloc[:-1], vix, surface, cache=cache)  # one bar fewer: a new last date
    assert cache.misses == 2


def test_filters_read_the_computed_state(spx, surface, state):
    from spx_core.analytics.filters import MarketFilter

    no_vix = market_state(spx, None, surface)
    assert MarketFilter(vix_min=12).check(no_vix) == (False, f"VIX unknown ({NO_VIX_BARS})")
    assert MarketFilter(regimes={state.trend.value, state.mixture_regime}).check(state) == (True, "")
    assert MarketFilter(iv_rank_min=0.0).check(state) == (True, "")
