"""``spx-data simulate`` records the simulated index's 1-minute bars, and the analytics run on them."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest

from spx_core.analytics.volatility import close_to_close, parkinson
from spx_core.cli.main import main
from spx_core.cli.simulate_command import MinuteBars
from spx_core.domain.calendar import ET, to_ns
from spx_core.storage import Store

MIN = 60 * 10**9
T0 = to_ns(datetime(2024, 3, 5, 10, 0, tzinfo=ET))


def _rows(bars: MinuteBars, samples) -> list[dict]:
    out = []
    for t, p in samples:
        frame = bars.add(t, p)
        out.append(None if frame is None else frame.iloc[0].to_dict())
    return out


def test_one_price_a_minute_makes_bars_from_consecutive_prices():
    rows = _rows(MinuteBars(), [(T0, 100.0), (T0 + MIN, 101.0), (T0 + 2 * MIN, 100.5)])
    assert rows[0] is None  # one price: no bar yet
    assert rows[1] == {"time": T0, "open": 100.0, "high": 101.0, "low": 100.0, "close": 101.0,
                       "volume": pytest.approx(math.nan, nan_ok=True)}
    assert (rows[2]["time"], rows[2]["open"], rows[2]["high"], rows[2]["low"], rows[2]["close"]) == (
        T0 + MIN, 101.0, 101.0, 100.5, 100.5)


def test_several_prices_a_minute_fold_into_one_bar():
    step = 20 * 10**9
    prices = [100.0, 102.0, 99.0, 101.0, 100.0]  # 10:00:00, :20, :40, 10:01:00, 10:01:20
    rows = _rows(MinuteBars(), [(T0 + i * step, p) for i, p in enumerate(prices)])
    # the segments starting at 10:00:00, :20 and :40 build bar 10:00; the last write holds it whole
    assert (rows[3]["time"], rows[3]["open"], rows[3]["high"], rows[3]["low"], rows[3]["close"]) == (
        T0, 100.0, 102.0, 99.0, 101.0)
    assert (rows[4]["time"], rows[4]["open"], rows[4]["close"]) == (T0 + MIN, 101.0, 100.0)


def test_gaps_and_missing_prices_start_afresh():
    rows = _rows(MinuteBars(), [(T0, 100.0), (T0 + 6 * MIN, 101.0), (T0 + 7 * MIN, math.nan),
                                (T0 + 8 * MIN, 102.0), (T0 + 9 * MIN, 103.0)])
    assert rows[:4] == [None] * 4  # 6 minutes apart (> 5): no bar spans the gap; NaN breaks the chain
    assert (rows[4]["time"], rows[4]["open"], rows[4]["close"]) == (T0 + 8 * MIN, 102.0, 103.0)


def test_simulate_records_minute_bars_of_the_snapshot_prices(tmp_path, capsys):
    db = tmp_path / "sim.sqlite"
    assert main(["simulate", "--db", str(db), "--seed", "5", "--minutes", "8", "--start", "2024-03-05T15:55"]) == 0
    capsys.readouterr()
    with Store.open(db) as store:
        snaps = [store.load_snapshot(i.id) for i in store.list_snapshots(underlying="SPX")]  # SPY companions aside
        bars = store.load_bars("SPX")
    times = [datetime.fromtimestamp(s.time_ns / 1e9, ET).strftime("%m-%d %H:%M") for s in snaps]
    # 15:55 .. 16:00, then the next session opens: no bar spans the night
    assert times == ["03-05 15:55", "03-05 15:56", "03-05 15:57", "03-05 15:58", "03-05 15:59", "03-05 16:00",
                     "03-06 09:30", "03-06 09:31"]
    bar_times = [t.tz_convert(ET).strftime("%m-%d %H:%M") for t in bars["time"]]
    assert bar_times == ["03-05 15:55", "03-05 15:56", "03-05 15:57", "03-05 15:58", "03-05 15:59", "03-06 09:30"]
    prices = np.array([s.underlying_price for s in snaps])
    pairs = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (6, 7)]
    np.testing.assert_array_equal(bars["open"], [prices[a] for a, _ in pairs])
    np.testing.assert_array_equal(bars["close"], [prices[b] for _, b in pairs])
    np.testing.assert_array_equal(bars["high"], [max(prices[a], prices[b]) for a, b in pairs])
    assert bars["volume"].isna().all()


def test_analytics_run_on_a_simulated_session(tmp_path, capsys):
    db = tmp_path / "sim.sqlite"
    assert main(["simulate", "--db", str(db), "--seed", "3", "--minutes", "40", "--start", "2024-03-05T10:00"]) == 0
    capsys.readouterr()
    with Store.open(db) as store:
        bars = store.load_bars("SPX")
    assert len(bars) == 39
    per_year = 252 * 390  # 1-minute bars of a regular session
    vol = close_to_close(bars["close"], 30, periods_per_year=per_year)
    assert np.isnan(vol.iloc[:30]).all() and 0.02 < vol.iloc[-1] < 1.0  # the simulator's vol, annualized
    assert np.isfinite(parkinson(bars["high"], bars["low"], 30, periods_per_year=per_year).iloc[-1])
