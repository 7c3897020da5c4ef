"""IV rank / percentile by hand, the 30-day ATM IV of known chains, and the stored histories."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from spx_core.analytics.iv_rank import (
    MIN_OBSERVATIONS,
    atm_iv,
    iv_percentile,
    iv_percentile_series,
    iv_rank,
    iv_rank_series,
    stored_atm_iv_history,
    vix_history,
)
from spx_core.domain.calendar import ET
from spx_core.storage import Store
from tests.chains import NOW, default_svi, make_chain

HISTORY = [float(x) for x in range(10, 40)]  # 30 values: 10..39


def test_rank_and_percentile_by_hand():
    # range over the lookback and today: low 10, high 39 -> (25 - 10) / 29
    assert iv_rank(HISTORY, 25.0) == pytest.approx(100 * 15 / 29)
    # 15 of the 30 values (10..24) are below 25
    assert iv_percentile(HISTORY, 25.0) == pytest.approx(50.0)
    # a window of 20 keeps 20..39: rank (25 - 20) / 19, 5 below
    assert iv_rank(HISTORY, 25.0, window=20) == pytest.approx(100 * 5 / 19)
    assert iv_percentile(HISTORY, 25.0, window=20) == pytest.approx(25.0)
    # today outside the range widens it: rank 100 / 0
    assert iv_rank(HISTORY, 50.0) == 100.0 and iv_rank(HISTORY, 5.0) == 0.0
    # current omitted = the last value (39: top of the range; 29 of 30 below it)
    assert iv_rank(HISTORY) == 100.0
    assert iv_percentile(HISTORY) == pytest.approx(100 * 29 / 30)


def test_not_enough_history_or_no_range_is_nan():
    assert math.isnan(iv_rank(HISTORY[:MIN_OBSERVATIONS - 1], 20.0))
    assert math.isnan(iv_percentile(HISTORY[:MIN_OBSERVATIONS - 1], 20.0))
    assert math.isnan(iv_rank([15.0] * 30, 15.0))
    assert math.isnan(iv_rank(HISTORY, float("nan")))
    assert not math.isnan(iv_rank([np.nan] * 5 + HISTORY[:MIN_OBSERVATIONS], 20.0))  # NaNs are skipped


def test_series_versions_match_the_scalar_ones():
    rng = np.random.default_rng(1)
    hist = pd.Series(15 + 5 * rng.random(80), index=pd.date_range("2024-01-01", periods=80))
    hist.iloc[40] = np.nan
    ranks, pcts = iv_rank_series(hist, 30), iv_percentile_series(hist, 30)
    assert ranks.index.equals(hist.index)
    for i in range(len(hist)):
        lookback = hist.to_numpy()[max(0, i - 29):i + 1]
        cur = hist.iloc[i]
        np.testing.assert_equal(ranks.iloc[i], iv_rank(lookback, cur, 30) if np.isfinite(cur) else np.nan)
        if np.isfinite(cur):
            assert pcts.iloc[i] == pytest.approx(iv_percentile(lookback, cur, 30), nan_ok=True)


def _flat(vol):
    return lambda t: (vol * vol * t, 0.0, 0.0, 0.0, 0.1)


def test_atm_iv_of_a_flat_smile_is_its_vol():
    snap, _ = make_chain(svi_for=_flat(0.23))
    assert atm_iv(snap) == pytest.approx(0.23, abs=1e-6)


def test_atm_iv_interpolates_total_variance_between_the_bracketing_expiries():
    snap, truth = make_chain(n_expiries=12)
    target = 30 / 365
    ts = sorted(truth, key=lambda e: e.t)
    lo = max((e for e in ts if e.t <= target), key=lambda e: e.t)
    hi = min((e for e in ts if e.t > target), key=lambda e: e.t)
    w = [e.svi[0] + e.svi[1] * e.svi[4] for e in (lo, hi)]  # SVI total variance at k = 0 (m = 0)
    expected = math.sqrt((w[0] + (w[1] - w[0]) * (target - lo.t) / (hi.t - lo.t)) / target)
    assert atm_iv(snap) == pytest.approx(expected, abs=2e-4)
    # past the last expiry: the last expiry's ATM vol
    last = ts[-1]
    assert atm_iv(snap, days=5000) == pytest.approx(math.sqrt((last.svi[0] + last.svi[1] * last.svi[4]) / last.t),
                                                    abs=2e-4)


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "db.sqlite") as s:
        yield s


def test_stored_atm_iv_history_takes_the_last_snapshot_of_each_day(store):
    # day 1: 20% then 25% (the later one counts); day 2: 30%
    for when, vol in ((NOW, 0.20), (NOW + timedelta(hours=1), 0.25), (NOW + timedelta(days=1), 0.30)):
        snap, _ = make_chain(svi_for=_flat(vol), now=when, n_expiries=4)
        store.save_snapshot(snap, source="test", session="s")
    hist = stored_atm_iv_history(store, "SPX")
    assert list(hist.index) == [NOW.date(), (NOW + timedelta(days=1)).date()]
    np.testing.assert_allclose(hist.to_numpy(), [0.25, 0.30], atol=1e-6)
    assert stored_atm_iv_history(store, "SPY").empty


def test_vix_history_reads_daily_closes_on_et_dates(store):
    times = [datetime(2024, 1, d, 16, 0, tzinfo=ET) for d in (2, 3, 4)]
    bars = pd.DataFrame({"time": [t.astimezone(UTC) for t in times], "open": np.nan, "high": np.nan,
                         "low": np.nan, "close": [13.0, 14.5, 12.25], "volume": np.nan})
    store.save_bars("VIX", bars)
    vix = vix_history(store)
    assert [d.day for d in vix.index] == [2, 3, 4]
    np.testing.assert_allclose(vix.to_numpy(), [13.0, 14.5, 12.25])
    assert vix_history(store, "NONE").empty


def test_default_svi_is_used_unchanged():
    assert default_svi(0.1)[2] == -0.7  # the test above relies on m = 0 in the default family
    assert default_svi(0.1)[3] == 0.0


def test_daily_ohlc_folds_minute_and_daily_bars_by_et_date():
    from spx_core.analytics.bars import daily_ohlc

    t = [datetime(2024, 1, 2, 9, 30, tzinfo=ET), datetime(2024, 1, 2, 9, 31, tzinfo=ET),
         datetime(2024, 1, 2, 16, 0, tzinfo=ET), datetime(2024, 1, 3, 16, 0, tzinfo=ET)]
    bars = pd.DataFrame({"time": pd.to_datetime([x.astimezone(UTC) for x in t]), "open": [10, 11, np.nan, 20],
                         "high": [12, 13, 14, 21], "low": [9, 8, 10, 19], "close": [11, 12, 13, 20.5],
                         "volume": [1, np.nan, np.nan, np.nan]})
    day = daily_ohlc(bars)
    assert [d.day for d in day.index] == [2, 3]
    np.testing.assert_array_equal(day.loc[:, ["open", "high", "low", "close"]].to_numpy(),
                                  [[10, 14, 8, 13], [20, 21, 19, 20.5]])
    assert day["volume"].iloc[0] == 1 and np.isnan(day["volume"].iloc[1])
    assert daily_ohlc(bars.iloc[:0]).empty
