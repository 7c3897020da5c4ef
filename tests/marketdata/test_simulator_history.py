"""The simulated market's simulated past: deterministic, shaped as the store's bars, on trading days, OHLC-consistent,
leading into the simulation (last close = its spot, last VIX = its 30-day ATM IV), with the model's dynamics
(vol level, leverage, mean-reverting VIX, no spurious drift); and the real market state, VaR history and decision
engine read it."""

from __future__ import annotations

import math
import re
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from spx_core.domain.calendar import ET, default_calendar
from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
from spx_core.marketdata.simulator.history import (
    DEFAULT_DAYS,
    history_end,
    history_label,
    simulated_daily_history,
    simulated_path,
    vix_level,
)

#: a Wednesday morning session (the engine tests' day)
START = datetime(2025, 3, 12, 9, 30, tzinfo=ET)
CONFIG = SimulatorConfig(seed=11, start=START)


@pytest.fixture(scope="module")
def frames():
    return simulated_daily_history(CONFIG, end=history_end(CONFIG))


def test_same_seed_gives_byte_identical_frames_and_another_seed_another_past(frames):
    again = simulated_daily_history(CONFIG, end=history_end(CONFIG))
    for mine, theirs in zip(frames, again, strict=True):
        pd.testing.assert_frame_equal(mine, theirs)
        assert mine.to_numpy(dtype=str).tobytes() == theirs.to_numpy(dtype=str).tobytes()
        assert (pd.util.hash_pandas_object(mine).to_numpy() == pd.util.hash_pandas_object(theirs).to_numpy()).all()
    other = simulated_daily_history(SimulatorConfig(seed=12, start=START), end=history_end(CONFIG))
    assert not np.array_equal(frames[0]["close"].to_numpy()[:-1], other[0]["close"].to_numpy()[:-1])


def test_frames_have_the_shape_the_store_returns(tmp_path, frames):
    from spx_core.storage import Store

    with Store.open(tmp_path / "shape.sqlite") as store:  # a test store: the app never writes them
        for symbol, frame in zip(("SPX", "VIX"), frames, strict=True):
            store.save_bars(symbol, frame)
            loaded = store.load_bars(symbol)
            pd.testing.assert_frame_equal(frame, loaded)  # columns, dtypes (UTC ns), index, NaN volume
    assert list(frames[0].columns) == ["time", "open", "high", "low", "close", "volume"]
    assert frames[0]["volume"].isna().all() and frames[1]["volume"].isna().all()


def test_bars_are_the_trading_days_before_the_first_session_stamped_at_the_close(frames):
    cal = default_calendar()
    spx, vix = frames
    assert len(spx) == len(vix) == DEFAULT_DAYS
    days = [t.date() for t in spx["time"].dt.tz_convert(ET)]
    assert days[-1] == cal.previous_trading_day(date(2025, 3, 12))  # 2025-03-11
    assert days == cal.trading_days(days[0], days[-1])  # every trading day, no weekend or holiday, in order
    assert all(t.hour == 16 and t.minute == 0 for t in spx["time"].dt.tz_convert(ET))
    assert (vix["time"] == spx["time"]).all()


@pytest.mark.parametrize("seed", [0, 7, 11, 123])
def test_ohlc_is_consistent(seed):
    for frame in simulated_daily_history(SimulatorConfig(seed=seed), end=date(2024, 7, 8), days=300):
        o, h, lo, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
        assert np.isfinite([o, h, lo, c]).all() and (lo > 0).all()
        assert (lo <= o).all() and (o <= h).all() and (lo <= c).all() and (c <= h).all()
        assert (h > lo).mean() > 0.99  # a day moves
        assert np.array_equal(np.round(c, 2), c)  # prints in cents


def test_the_past_leads_into_the_simulation(frames):
    spx, vix = frames
    assert spx["close"].iloc[-1] == CONFIG.spot  # the simulation opens at the last close
    path = simulated_path(CONFIG)
    closes = path.closes()
    # the documented relation: VIX = the simulator's 30-day ATM IV at the day's variance (in cents)
    assert np.array_equal(vix["close"].to_numpy(), np.round(vix_level(CONFIG, path.variance[closes]), 2))
    # the variance ends at the simulation's v0 (plus what a recent crash still adds)
    assert path.variance[-1] == pytest.approx(CONFIG.process.v0 + path.jump_variance[-1], rel=1e-12)
    # ... so yesterday's VIX is today's ATM IV: the live surface's fitted 30-day IV at the first snapshot
    from spx_core.surface import chain_iv, fit_surface

    market = SimulatedMarket(CONFIG)
    market.advance(1.0)
    surface = fit_surface(chain_iv(market.snapshot()))
    atm = 100.0 * float(surface.iv(k=np.array(0.0), t=np.array(30 / 365)))
    assert vix_level(CONFIG, market.variance) == pytest.approx(atm, abs=0.05)
    assert path.jump_variance[-1] < 1e-4  # this seed's past has no crash in its last weeks, so:
    assert vix["close"].iloc[-1] == pytest.approx(atm, abs=0.05)


def test_dynamics_are_the_simulators():
    p = CONFIG.process
    drift, vol, corr, phi = [], [], [], []
    for seed in range(20):
        config = SimulatorConfig(seed=seed)
        path = simulated_path(config)
        closes = path.spot[path.closes()]
        r = np.diff(np.log(closes))
        v = vix_level(config, path.variance[path.closes()])
        drift.append(r.mean() * 252)
        vol.append(r.std() * math.sqrt(252))
        corr.append(np.corrcoef(r, np.diff(v))[0, 1])
        phi.append(np.polyfit(v[:-1], v[1:], 1)[0])
    # realized vol at the model's long-run level: sqrt(theta + the jumps' variance rate) ~ 16%
    assert np.mean(vol) == pytest.approx(math.sqrt(p.theta + p.jump_variance_rate), rel=0.1)
    # the leverage effect: returns and VIX changes move against each other (rho = -0.72)
    assert max(corr) < -0.4 and np.mean(corr) < -0.6
    # the VIX mean-reverts (kappa = 4/year: half-life ~44 sessions, AR(1) coefficient ~0.984)
    assert max(phi) < 0.995 and np.mean(phi) == pytest.approx(math.exp(-p.kappa / 252), abs=0.03)
    # no spurious drift: the log drift is r - q - v/2 (a shock correlated with its own variance adds ~16%/year)
    expected = CONFIG.rate - CONFIG.div_yield - 0.5 * (p.theta + p.jump_variance_rate)
    assert abs(np.mean(drift) - expected) < 0.05


def test_history_end_is_the_simulations_first_session():
    saturday = datetime(2025, 3, 15, 12, 0, tzinfo=ET)
    assert history_end(SimulatorConfig(start=saturday)) == date(2025, 3, 17)  # the next open
    assert history_end(SimulatorConfig(start=START)) == date(2025, 3, 12)
    assert history_end(SimulatorConfig(start=saturday, market_hours=False)) == date(2025, 3, 15)
    late = datetime(2025, 3, 12, 17, 0, tzinfo=ET)
    assert history_end(SimulatorConfig(), now_ns=int(late.timestamp() * 1e9)) == date(2025, 3, 13)
    with pytest.raises(ValueError, match="pass now_ns"):
        history_end(SimulatorConfig())
    with pytest.raises(ValueError, match="days must be"):
        simulated_path(CONFIG, days=1)
    assert history_label(CONFIG) == "simulated history (750 days, seed 11)"


def test_the_market_state_reads_trend_vix_bucket_and_iv_rank(frames):
    from spx_core.analytics.market_state import market_state
    from spx_core.analytics.regimes import TrendRegime, VixBucket
    from spx_core.surface import chain_iv, fit_surface

    market = SimulatedMarket(CONFIG)
    market.advance(60.0)
    civ = chain_iv(market.snapshot())
    state = market_state(*frames, fit_surface(civ), civ=civ)
    for name in ("trend", "vix", "vix_bucket", "vix_rank", "vix_percentile", "rv_yz_20d", "garch_vol",
                 "mixture_regime", "vrp_volpts"):
        assert state.has(name), (name, state.why(name))
    assert state.trend in (TrendRegime.UPTREND, TrendRegime.DOWNTREND, TrendRegime.RANGE)
    assert state.vix_bucket not in (None, VixBucket.UNKNOWN)
    assert 0 <= state.vix_rank <= 100 and state.spx_as_of == date(2025, 3, 11) and not state.notes


def test_return_history_reads_the_frames_instead_of_the_store(frames, tmp_path):
    from spx_core.risk.history import HistoryError, return_history
    from spx_core.storage import Store

    label = history_label(CONFIG)
    history = return_history(None, bars=(*frames, label))
    assert len(history) == 500 and history.source.startswith(f"{label}, 500 days")
    assert history.last_spot == CONFIG.spot
    closes = frames[0]["close"].to_numpy()
    assert history.spot_returns[-1] == pytest.approx(math.log(closes[-1] / closes[-2]), rel=1e-12)
    # end_ns bounds the frames as it bounds the store's bars
    cut = frames[0]["time"].iloc[399]
    bounded = return_history(None, bars=(*frames, label), end_ns=cut.value, lookback=100)
    assert bounded.dates[-1] == np.datetime64(cut.tz_convert(ET).date()) and len(bounded) == 100
    with pytest.raises(HistoryError, match=re.escape(f"only 9 usable days of {label} and 0")):
        return_history(None, bars=(frames[0].iloc[:10], frames[1].iloc[:10], label))
    with Store.open(tmp_path / "empty.sqlite") as store:  # the store's own bars are not read
        assert len(return_history(store, bars=(*frames, label))) == 500
        with pytest.raises(HistoryError, match="SPX \\+ VIX daily bars"):
            return_history(store)


def test_the_iron_condor_preset_no_longer_skips_for_an_unknown_regime(frames):
    from spx_core.analytics.market_state import market_state
    from spx_core.automation.engine import DecisionEngine, MarketContext
    from spx_core.automation.presets import PRESETS
    from spx_core.surface import chain_iv, fit_surface

    market = SimulatedMarket(CONFIG)
    market.advance(3600.0)  # 10:30 ET, the preset's entry
    snap = market.snapshot()
    civ = chain_iv(snap)
    surface = fit_surface(civ)
    condor = PRESETS["iron condor (regime filter)"]

    def reasons(spx, vix):
        state = market_state(spx, vix, surface, civ=civ)
        ctx = MarketContext.from_state(snap, state, civ=civ, surface=surface)
        return DecisionEngine().decide(condor, ctx, snap.time_ns)[0].reasons

    without = reasons(None, None)
    assert any(r.startswith("regime: trend unknown") for r in without)
    with_past = reasons(*frames)
    assert not any("unknown" in r for r in with_past), with_past
    # it may still skip, for a stated reason (here this past ends in a downtrend) or trade
    assert with_past[0].startswith(("entry: ", "regime: trend downtrend", "regime: trend uptrend",
                                    "regime: VIX bucket"))
