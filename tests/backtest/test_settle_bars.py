"""End-of-day data settles expiries from the stored daily bars (close for PM roots, open for AM SPX), revealed
only once the bar is known (its 16:00 ET stamp); an observed price within the tolerance is still preferred."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd

from spx_core.backtest.settle_bars import DailySettlements
from spx_core.domain.calendar import ET, to_ns
from spx_core.domain.contracts import OptionContract, Right, Root
from spx_core.portfolio.settlement_watch import SettlementWatch
from spx_core.storage.store import Store


def _bars(rows):
    times = pd.to_datetime([to_ns(datetime(*d, tzinfo=ET)) for d, _, _ in rows], unit="ns", utc=True)
    return pd.DataFrame({"time": times, "open": [o for _, o, _ in rows], "high": [max(o, c) + 5 for _, o, c in rows],
                         "low": [min(o, c) - 5 for _, o, c in rows], "close": [c for _, _, c in rows],
                         "volume": [float("nan")] * len(rows)})


def test_daily_bar_settles_pm_at_its_close_and_am_at_its_open_only_once_known(tmp_path):
    store = Store.open(tmp_path / "b.sqlite")
    try:
        # 2024-03-15 is a monthly expiry (third Friday): SPX AM and SPXW PM both expire that day
        store.save_bars("SPX", _bars([((2024, 3, 14, 16, 0), 5150.0, 5160.0), ((2024, 3, 15, 16, 0), 5170.0, 5120.0)]))
        # many bars on one date: intraday minutes, left to the watch's own observations
        store.save_bars("SPX", _bars([((2024, 3, 18, 9, 30 + i), 5200.0 + i, 5201.0 + i) for i in range(3)]))
        official = DailySettlements(store)
        assert len(official) == 4  # two dates x (close, open)
        watch = SettlementWatch()
        pm = OptionContract(Root.SPXW, date(2024, 3, 15), 5100.0, Right.PUT)
        am = OptionContract(Root.SPX, date(2024, 3, 15), 5100.0, Right.PUT)
        assert official.reveal(to_ns(datetime(2024, 3, 15, 15, 59, tzinfo=ET)), watch) == 2  # only the 14th's
        assert watch.price_for(pm) is None and watch.price_for(am) is None  # the 15th's bar is not known yet
        assert official.reveal(to_ns(datetime(2024, 3, 15, 16, 0, tzinfo=ET)), watch) == 2
        assert watch.price_for(pm) == 5120.0 and watch.price_for(am) == 5170.0
        assert official.reveal(to_ns(datetime(2024, 3, 20, tzinfo=ET)), watch) == 0
        # a price observed within the tolerance of the close wins over the bar
        seen = SettlementWatch()
        seen.observe("SPX", to_ns(datetime(2024, 3, 15, 15, 58, tzinfo=ET)), 5125.5)
        DailySettlements(store).reveal(to_ns(datetime(2024, 3, 16, tzinfo=ET)), seen)
        assert seen.price_for(pm) == 5125.5
    finally:
        store.close()
