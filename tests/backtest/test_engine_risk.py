"""The backtest engine drives the live risk parts too: the circuit breaker (trip, cancel, close-all, entries
refused for the rest of the day), the entry filters' market state, each entry's factors, per-leg fills."""

from __future__ import annotations

import dataclasses
import math

import pytest

from spx_core.automation.config import EntryFilters, EntrySchedule, PriceMode
from spx_core.backtest.engine import Backtest
from spx_core.execution.fill_model import FillMode, FillModel
from spx_core.risk.profiles import profile
from tests.backtest.test_engine import BASE, FEES, store  # noqa: F401  (the module's recorded session)

#: enters at 10:00 and 11:00 (both inside the recorded 75 minutes), never exits by itself
HOLD = dataclasses.replace(BASE, name="hold", price=PriceMode.NATURAL, entry=EntrySchedule(times=("10:00", "11:00")),
                           exits=dataclasses.replace(BASE.exits, take_profit_pct=None, stop_loss_pct=None),
                           limit_profile="standard")


def test_breaker_trips_on_the_daily_loss_closes_everything_and_refuses_the_next_entry(store):  # noqa: F811
    # crossing the spread costs ~$25 at once (the entry passes the limit), the mark then falls past $30: a trip
    tight = dataclasses.replace(profile("standard"), name="tight", max_daily_loss=30.0, max_daily_loss_pct=None)
    result = Backtest(store, [HOLD], session="s", fees=FEES, profile=tight, close_on_breaker=True).run()
    (trip,) = result.breaker_trips
    assert trip.reason.startswith("tight: max_daily_loss $30: day loss $") and trip.closed == 1
    entry, *rest = result.decisions
    assert entry.action == "TRADE" and entry.time_ns < trip.time_ns
    closing = [d for d in rest if d.strategy == "breaker"]
    assert len(closing) == 1 and closing[0].reasons[0].startswith("breaker: tight: max_daily_loss")
    later = [d for d in rest if d.strategy == "hold"]
    assert later and all(d.action == "SKIP" for d in later)
    assert any("circuit breaker: tripped at" in r for d in later for r in d.reasons)
    (trade,) = result.trades
    assert trade.exit_ns is not None and trade.exit_ns >= trip.time_ns
    # without close-all the trade stays open, the breaker still refuses the 11:00 entry
    held = Backtest(store, [HOLD], session="s", fees=FEES, profile=tight).run()
    assert held.breaker_trips[0].closed == 0 and [t.exit_reason for t in held.trades] == ["open"]
    assert held.config_hash != result.config_hash


def test_no_profile_means_no_breaker(store):  # noqa: F811
    result = Backtest(store, [HOLD], session="s", fees=FEES, profile=None).run()
    assert result.breaker_trips == () and len(result.trades) == 2


def test_entry_factors_and_their_attribution(store):  # noqa: F811
    result = Backtest(store, [HOLD], session="s", fees=FEES, profile=None).run()
    assert set(result.factors) == {0, 1}
    first = result.factors[0]
    t = result.trades[0]
    strikes = [leg[2] for leg in t.legs]
    assert first["width"] == max(strikes) - min(strikes) and first["credit"] == pytest.approx(t.entry_price)
    assert first["credit_per_width"] == pytest.approx(t.entry_price / first["width"])
    assert first["hour_et"] == 10.0 and first["dte"] in (3.0, 5.0, 7.0) and first["spot"] > 1000
    assert 0.02 < first["atm_iv"] < 2.0 and math.isnan(first["vix"])  # no market state: no filter asked for it
    assert result.factors[1]["hour_et"] == 11.0
    m = result.metrics()
    assert m.n_trades == 0 and m.open_trades == 2 and m.starting_cash == 100_000.0
    assert result.factor_attribution() == {}  # no closed trade: nothing to compare


def test_a_vix_filter_reads_the_market_state_and_skips_saying_why(store):  # noqa: F811
    vix = dataclasses.replace(HOLD, name="vix", filters=EntryFilters(vix_max=30.0))
    result = Backtest(store, [vix], session="s", fees=FEES, profile=None).run()
    assert result.trades == () and result.decisions
    reasons = " ".join(r for d in result.decisions for r in d.reasons)
    assert "VIX" in reasons and "unknown" not in reasons.split("VIX")[0][-5:]  # names the missing bars, not "?"
    assert "import" in reasons  # says how to fix it (no VIX bars stored)


def test_per_leg_fills_price_each_leg_on_its_own_tick(store):  # noqa: F811
    package = Backtest(store, [HOLD], session="s", fees=FEES, profile=None,
                       fill=FillModel(mode=FillMode.MID)).run()
    legs = Backtest(store, [HOLD], session="s", fees=FEES, profile=None,
                    fill=FillModel(mode=FillMode.MID, per_leg=True)).run()
    p, q = package.trades[0], legs.trades[0]
    assert p.legs == q.legs
    # a SELL of a credit vertical legged in: the short leg's tick below, the long leg's tick above: never better
    assert q.entry_price <= p.entry_price + 1e-9
    assert round(q.entry_price * 20) == pytest.approx(q.entry_price * 20, abs=1e-6)  # on the 0.05 grid


def test_an_expiry_with_no_settlement_price_in_the_data_is_left_open_and_said(tmp_path):
    from datetime import datetime

    from spx_core.domain.calendar import ET, to_ns
    from tests.backtest.test_engine import ZERO, record

    data = record(tmp_path / "short.sqlite", datetime(2024, 3, 13, 15, 29, tzinfo=ET), 15)  # ends 15:43: no close
    try:
        start, end = to_ns(datetime(2024, 3, 13, 15, 0, tzinfo=ET)), to_ns(datetime(2024, 3, 13, 17, 0, tzinfo=ET))
        result = Backtest(data, [ZERO], start_ns=start, end_ns=end, fees=FEES).run()
        (trade,) = result.trades
        assert trade.exit_reason == "open"
        (note,) = [n for n in result.notes if n.startswith("unsettled:")]
        assert note.startswith("unsettled: 2 expired legs have no settlement price in the data (SPXW")
        assert "spx-data import" in note
    finally:
        data.close()
