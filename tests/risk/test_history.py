"""Daily return history: alignment, gaps, NaNs, duplicates, no look-ahead, the sessions fallback, the real files."""

from __future__ import annotations

from datetime import UTC, datetime, time

import numpy as np
import pandas as pd
import pytest

from spx_core.domain import ET, default_calendar
from spx_core.risk.history import MIN_DAYS, HistoryError, ReturnHistory, return_history
from spx_core.storage import Store
from tests.chains import make_chain


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "db.sqlite") as s:
        yield s


START = datetime(2024, 1, 2).date()


def _days(n: int):
    return default_calendar().trading_days(START, START.replace(year=START.year + 2))[:n]


def _bars(days, closes, *, at=time(16, 0)) -> pd.DataFrame:
    stamps = [datetime.combine(d, at, tzinfo=ET).astimezone(UTC) for d in days]
    return pd.DataFrame({"time": pd.to_datetime(stamps), "open": np.nan, "high": np.nan, "low": np.nan,
                         "close": np.asarray(closes, dtype=np.float64), "volume": np.nan})


def _series(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    spot = 4800.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    vix = 15.0 + np.cumsum(rng.normal(0, 0.8, n)).clip(-10, 40)
    return spot, vix


def test_moves_are_log_returns_and_point_changes_on_common_dates(store):
    days = _days(100)
    spot, vix = _series(100)
    store.save_bars("SPX", _bars(days, spot))
    store.save_bars("VIX", _bars(days, vix))

    h = return_history(store)

    assert len(h) == 99 and h.dates[0] == np.datetime64(days[1]) and h.dates[-1] == np.datetime64(days[-1])
    np.testing.assert_allclose(h.spot_returns, np.log(spot[1:] / spot[:-1]), rtol=1e-15)
    np.testing.assert_allclose(h.vol_changes, np.diff(vix), atol=1e-12)
    assert (h.last_spot, h.last_vol) == (pytest.approx(spot[-1]), pytest.approx(vix[-1]))
    assert h.source.startswith("SPX + VIX daily bars, 99 days")
    assert len(return_history(store, lookback=60)) == 60  # the last 60


def test_gaps_nans_and_duplicate_days_are_tolerated(store):
    days = _days(90)
    spot, vix = _series(90)
    vix_closes = vix.copy()
    vix_closes[10] = np.nan  # a '.' day: no VIX that day
    spx_days = [d for i, d in enumerate(days) if i != 40]  # SPX missing day 40
    store.save_bars("SPX", _bars(spx_days, np.delete(spot, 40)))
    store.save_bars("SPX", _bars(days[:5], spot[:5] * 0.5, at=time(10, 0)))  # earlier bars of the same days
    store.save_bars("VIX", _bars(days, vix_closes))

    h = return_history(store)

    # days 10 and 40 are unusable: the moves into 10, out of 10, into 40 and out of 40 are gone, and the
    # two moves that would span them (9 -> 11, 39 -> 41) are dropped rather than counted as 1-day moves
    assert len(h) == 89 - 4 and "2 gap-spanning move(s) dropped" in h.source
    kept = {np.datetime64(d) for d in days}
    assert set(h.dates) <= kept and np.datetime64(days[11]) not in set(h.dates)
    assert np.datetime64(days[12]) in set(h.dates)
    i = list(h.dates).index(np.datetime64(days[2]))
    assert h.spot_returns[i] == pytest.approx(np.log(spot[2] / spot[1]))  # the 16:00 close wins over 10:00
    assert np.all(np.isfinite(h.spot_returns)) and np.all(np.isfinite(h.vol_changes))


def test_no_look_ahead_past_end_ns(store):
    days = _days(120)
    spot, vix = _series(120)
    store.save_bars("SPX", _bars(days, spot))
    store.save_bars("VIX", _bars(days, vix))
    cut = datetime.combine(days[80], time(12, 0), tzinfo=ET)  # midday: day 80's close is not known yet
    end_ns = int(cut.timestamp() * 1e9)

    h = return_history(store, end_ns=end_ns)
    store.save_bars("SPX", _bars(days[81:], spot[81:] * 3))  # later data changes: nothing before the cut may move
    again = return_history(store, end_ns=end_ns)

    assert h.dates[-1] == np.datetime64(days[79]) and h.last_spot == pytest.approx(spot[79])
    np.testing.assert_array_equal(h.spot_returns, again.spot_returns)


def test_too_little_history_is_one_line_naming_both_sources(store):
    days = _days(MIN_DAYS)  # 60 closes: 59 moves
    spot, vix = _series(MIN_DAYS)
    store.save_bars("SPX", _bars(days, spot))
    store.save_bars("VIX", _bars(days, vix))

    with pytest.raises(HistoryError) as info:
        return_history(store)

    text = str(info.value)
    assert "\n" not in text and "59 usable days of SPX + VIX daily bars" in text and "0 of stored SPX" in text
    assert "spx-data import" in text


def test_bad_lookback_is_refused(store):
    with pytest.raises(ValueError, match="lookback"):
        return_history(store, lookback=10)


def test_history_rejects_unaligned_or_nan_moves():
    d = np.array(["2024-01-02"], dtype="datetime64[D]")
    with pytest.raises(ValueError, match="aligned"):
        ReturnHistory(d, np.zeros(2), np.zeros(1), "x")
    with pytest.raises(ValueError, match="finite"):
        ReturnHistory(d, np.array([np.nan]), np.zeros(1), "x")


def _flat(vol):
    return lambda t: (vol * vol * t, 0.0, 0.0, 0.0, 0.1)


def test_falls_back_to_stored_sessions_when_bars_are_missing(store):
    days = _days(64)
    rng = np.random.default_rng(5)
    spot = 5000.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 64)))
    vols = 0.15 + 0.03 * rng.random(64)
    for d, s, v in zip(days, spot, vols, strict=True):
        for hour, scale in ((11, 0.9), (15, 1.0)):  # two snapshots a day: the later one is the close
            snap, _ = make_chain(spot=s * scale, svi_for=_flat(v), n_expiries=3, strikes_per_expiry=30,
                                 now=datetime.combine(d, time(hour, 0), tzinfo=ET))
            store.save_snapshot(snap, source="test", session=str(d))
    store.save_bars("SPX", _bars(days, spot))  # SPX bars alone (a simulated session's) do not make a history

    h = return_history(store)

    assert h.source.startswith("stored SPX sessions") and len(h) == 63
    np.testing.assert_allclose(h.spot_returns, np.log(spot[1:] / spot[:-1]), rtol=1e-12)
    np.testing.assert_allclose(h.vol_changes, 100 * np.diff(vols), atol=1e-3)
    assert h.last_vol == pytest.approx(100 * vols[-1], abs=1e-3)


@pytest.mark.shared_data
def test_real_index_files(store, shared_data):
    from spx_core.marketdata.importers import import_files

    sp500, vix = shared_data / "index_daily" / "sp500.csv.gz", shared_data / "index_daily" / "vix.csv.gz"
    if not (sp500.exists() and vix.exists()):
        pytest.skip(f"{sp500} or {vix} is absent")
    import_files(store, [sp500, vix], "daily-bars")

    h = return_history(store)
    every = return_history(store, lookback=10_000)

    assert len(h) == 500 and str(h.dates[-1]) == "2018-12-31" and h.last_spot == pytest.approx(2506.850098)
    # VIX runs 2014-01-03..2019-01-03 with 46 '.' days; SPX ends 2018-12-31
    assert str(every.dates[0]) == "2014-01-06" and 1100 < len(every) < 1258
    ref = pd.read_csv(sp500)
    closes = ref["Close"].to_numpy()[pd.to_datetime(ref["Date"], format="%m/%d/%Y").dt.year.to_numpy() == 2018]
    assert h.spot_returns[-1] == pytest.approx(np.log(closes[-1] / closes[-2]), rel=1e-12)
    assert np.abs(h.spot_returns).max() < 0.1 and np.abs(h.vol_changes).max() < 30
