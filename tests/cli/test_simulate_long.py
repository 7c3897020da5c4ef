"""``spx-data simulate --days D --interval 1m|5m|eod``: whole trading days recorded in bulk.

Short ranges only (CI budget); the year of end-of-day chains is timed by ``tests/benchmarks/bench_simulator.py``.
The eod recording runs over 2024-11-13 .. 2024-11-29: a third Friday (SPX AM settles on Nov 15), Thanksgiving
(Nov 28, no session) and its early close (Nov 29, 13:00 ET).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections import defaultdict
from datetime import date, datetime, time

import numpy as np
import pytest

from spx_core.automation.config import EntrySchedule, PriceMode
from spx_core.automation.presets import PRESETS
from spx_core.backtest.engine import Backtest
from spx_core.cli.main import main
from spx_core.domain.calendar import ET, default_calendar, from_ns, to_ns
from spx_core.domain.contracts import (
    ROOTS,
    OptionContract,
    Right,
    Root,
    settlement_for_root,
)
from spx_core.marketdata.simulator import SimulatorConfig, recorder
from spx_core.marketdata.simulator.recorder import print_instants, record_history
from spx_core.portfolio.settlement_watch import SettlementWatch
from spx_core.storage.store import Store
from tests.cli.conftest import run_spx_data

CAL = default_calendar()
START = "2024-11-13"
DAYS = CAL.trading_days(date(2024, 11, 13), date(2024, 11, 29))  # 12 sessions


def _et(ns: int) -> datetime:
    return from_ns(ns).astimezone(ET)


@pytest.fixture(scope="module")
def eod(tmp_path_factory):
    db = tmp_path_factory.mktemp("eod") / "eod.sqlite"
    assert main(["simulate", "--db", str(db), "--seed", "3", "--days", str(len(DAYS)), "--interval", "eod",
                 "--start", START]) == 0
    store = Store.open(db)
    yield store
    store.close()


def _chains(store, underlying="SPX"):
    return [(info, store.load_snapshot(info.id)) for info in store.list_snapshots(underlying=underlying)]


# --- the calendar: days, prints, early closes, the AM settlement open --------------------------------------------
def test_eod_prints_follow_the_exchange_calendar(eod):
    spx, spy = eod.list_snapshots(underlying="SPX"), eod.list_snapshots(underlying="SPY")
    times = [_et(to_ns(i.time)) for i in spx]
    expected = []
    for day in DAYS:  # one chain a day, like a real end-of-day file
        eod_time = time(12, 45) if day == date(2024, 11, 29) else time(15, 45)
        expected.append(datetime.combine(day, eod_time, ET))
    assert times == expected
    assert date(2024, 11, 28) not in {t.date() for t in times}  # Thanksgiving
    assert [i.time for i in spy] == [i.time for i in spx]  # each SPX chain with its SPY companion
    (session,) = eod.list_sessions()
    assert session.name == "simulated:seed=3:eod:2024-11-13T20:45:00+00:00"


def test_intraday_prints_run_from_the_open_to_the_close_inclusive():
    regular, early = date(2024, 11, 27), date(2024, 11, 29)
    one = [_et(t) for t in print_instants(CAL, regular, "1m")]
    assert len(one) == 391 and one[0].time() == time(9, 30) and one[-1].time() == time(16)
    five = [_et(t) for t in print_instants(CAL, early, "5m")]
    assert len(five) == 43 and five[-1].time() == time(13) and five[1] - five[0] == (five[2] - five[1])
    assert (five[1] - five[0]).total_seconds() == 300


def test_each_days_chain_lists_that_days_live_expiries(eod):
    for info, snap in _chains(eod):
        t = to_ns(info.time)
        day = _et(t).date()
        live = {(Root(r), e) for r, e in CAL.listed_expiries(day)
                if to_ns(CAL.expiry_instant(e, settlement_for_root(r))) > t}
        assert {(x.root, x.expiry) for x in snap.expiries()} == live, info.time
    # the roll: each eod chain's first expiry is that day's 0DTE (15:45, 12:45 on the early close)
    for info, snap in _chains(eod):
        assert snap.expiries()[0].expiry == _et(to_ns(info.time)).date()


def _contracts(snap) -> list[OptionContract]:
    c = snap.columns
    roots = [ROOTS[int(r)] for r in c["root"]]
    return [OptionContract(root, e, float(k), Right.CALL if call else Right.PUT)
            for root, e, k, call in zip(roots, c["expiry"].astype(object), c["strike"], c["is_call"], strict=True)]


# --- settlement: the backtester's watch sees every expiry's settlement value -----------------------------------
def test_the_settlement_watch_can_settle_every_recorded_expiry(eod):
    """Replayed in time order as the backtester does: every expiry that passed is settled on the daily bars'
    values (PM: the close; AM: the open), revealed at each bar's 16:00 stamp."""
    from spx_core.backtest.settle_bars import DailySettlements

    watch = SettlementWatch(calendar=CAL)
    official = DailySettlements(eod, calendar=CAL)
    listed = {(x.root, x.expiry) for _, s in _chains(eod) for x in s.expiries()}
    bars = {t.date(): row for t, (_, row) in zip(eod.load_bars("SPX")["time"].dt.tz_convert(ET),
                                                 eod.load_bars("SPX").iterrows(), strict=True)}
    for info in eod.list_snapshots(underlying="SPX"):
        watch.observe("SPX", to_ns(info.time), info.underlying_price)
        official.reveal(to_ns(info.time), watch)
    now = to_ns(datetime.combine(DAYS[-1], time(16), ET))
    official.reveal(now, watch)
    passed = {(r, e) for r, e in listed if to_ns(CAL.expiry_instant(e, settlement_for_root(r))) <= now}
    assert (Root.SPX, date(2024, 11, 15)) in passed and len(passed) == len(DAYS) + 1
    for root, expiry in passed:
        contract = OptionContract(root, expiry, 5800.0, Right.PUT)
        column = "open" if root is Root.SPX else "close"
        assert watch.price_for(contract) == bars[expiry][column], (root, expiry)


def test_a_backtest_over_an_eod_history_settles_its_expiries(tmp_path):
    base = PRESETS["credit verticals 3/5/7 DTE"]
    hold = dataclasses.replace(base, name="hold", price=PriceMode.NATURAL, entry=EntrySchedule(times=("15:45",)),
                               exits=dataclasses.replace(base.exits, take_profit_pct=None, stop_loss_pct=None))
    with Store.open(tmp_path / "bt.sqlite") as store:
        record_history(store, SimulatorConfig(seed=5, start=datetime(2024, 3, 11, tzinfo=ET)), "eod", days=8,
                       interval="eod")
        result = Backtest(store, [hold], session="eod", profile=None).run()
        bars = store.load_bars("SPX")
        closes = {to_ns(CAL.session_close(t.date())): c
                  for t, c in zip(bars["time"].dt.tz_convert(ET), bars["close"], strict=True)}
        n_chains = len(store.list_snapshots(underlying="SPX"))
    assert n_chains == 8  # one chain a day
    settled = [t for t in result.trades if t.exit_reason == "expiry"]
    assert len(settled) >= 2
    for trade in settled:
        expiry = date.fromisoformat(trade.legs[0][1])
        assert trade.exit_ns == to_ns(CAL.session_close(expiry)) and trade.exit_ns in closes
        # a put vertical settles at its intrinsic value at the day's close (the daily bar's)
        (short, long_) = sorted(trade.legs, key=lambda leg: leg[4])
        spot = closes[trade.exit_ns]
        value = max(short[2] - spot, 0.0) - max(long_[2] - spot, 0.0)
        assert trade.exit_price == pytest.approx(value, abs=1e-6)
    last = max(closes)
    assert all(t.exit_reason != "open" or to_ns(CAL.session_close(date.fromisoformat(t.legs[0][1]))) > last
               for t in result.trades)
    assert result.equity.iloc[-1] == pytest.approx(100_000.0 + sum(t.pnl for t in result.trades))


# --- bars ------------------------------------------------------------------------------------------------------
def test_eod_records_daily_spx_and_vix_bars(eod):
    spx, vix, spy = eod.load_bars("SPX"), eod.load_bars("VIX"), eod.load_bars("SPY")
    stamps = [datetime.combine(d, time(16), ET) for d in DAYS]
    for bars in (spx, vix, spy):
        assert [t.to_pydatetime() for t in bars["time"].dt.tz_convert(ET)] == stamps
        assert bars["volume"].isna().all()
        assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
        assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    by_day = defaultdict(list)
    for info in eod.list_snapshots(underlying="SPX"):
        by_day[_et(to_ns(info.time)).date()].append(info.underlying_price)
    for (_, bar), day in zip(spx.iterrows(), DAYS, strict=True):
        (eod_print,) = by_day[day]
        assert bar["low"] <= eod_print <= bar["high"]
    assert (abs(spy["close"] * 10 / spx["close"] - 1) < 0.05).all()  # SPY tracks a tenth of the index
    assert spx["open"].iloc[0] == 5800.0  # the simulation opens at the config's spot
    assert 5 < vix["close"].min() and vix["close"].max() < 80


def test_5m_records_interval_bars_and_a_vix_bar(tmp_path, capsys):
    db = tmp_path / "5m.sqlite"
    assert main(["simulate", "--db", str(db), "--seed", "1", "--days", "1", "--interval", "5m",
                 "--start", "2024-11-29T08:00"]) == 0
    out = capsys.readouterr().out
    assert "recorded 1 trading days at 5m: 43 simulated snapshots" in out and "43 SPY companion" in out
    with Store.open(db) as store:
        spx, spy, vix = store.load_bars("SPX"), store.load_bars("SPY"), store.load_bars("VIX")
        prices = [i.underlying_price for i in store.list_snapshots(underlying="SPX")]
    for bars in (spx, spy):  # 09:30 .. 12:55, each closed by the next print (the 13:00 close closes the last)
        minutes = bars["time"].dt.tz_convert(ET).dt.strftime("%H:%M").tolist()
        assert len(bars) == 42 and minutes[0] == "09:30" and minutes[-1] == "12:55"
    assert spx["open"].tolist() == prices[:-1] and spx["close"].tolist() == prices[1:]
    assert len(vix) == 1


# --- model: determinism, strikes that stay listed -----------------------------------------------------------------
def test_same_seed_and_start_record_the_same_chains(tmp_path):
    def checksums(name: str) -> list[str]:
        with Store.open(tmp_path / f"{name}.sqlite") as store:
            record_history(store, SimulatorConfig(seed=11, start=datetime(2024, 6, 3, tzinfo=ET)), "s", days=2,
                           interval="eod")
            return [i.checksum for i in store.list_snapshots()]

    assert checksums("a") == checksums("b")


def test_a_listed_strike_stays_listed_while_near_the_money(eod):
    """The exchange never delists a strike with open interest: a held 5-point strike keeps its quote the next day
    when the index moved (it then lies in the 25-point band of a fresh listing), as long as it is within
    ``fine_sd`` standard deviations of the new open's forward."""
    params, config = SimulatorConfig().strikes, SimulatorConfig()
    opens = dict(zip(DAYS, eod.load_bars("SPX")["open"], strict=True))
    kept = 0
    chains = [s for i, s in _chains(eod) if _et(to_ns(i.time)).time() in (time(15, 45), time(12, 45))]
    for before, after in itertools.pairwise(chains):
        day = _et(after.time_ns).date()
        open_ns = to_ns(CAL.session_open(day))
        now = {(c.root, c.expiry, c.strike) for c in _contracts(after)}
        for c in _contracts(before):
            instant = to_ns(CAL.expiry_instant(c.expiry, c.settlement))
            if instant <= after.time_ns or c.strike % 25 == 0:
                continue
            years = (instant - open_ns) / 1e9 / (365.0 * 86400)
            forward = opens[day] * math.exp((config.rate - config.div_yield) * years)
            reach = params.fine_sd * params.sigma_ref * math.sqrt(max(years, params.min_t))
            if abs(math.log(c.strike / forward)) < 0.99 * reach:
                assert (c.root, c.expiry, c.strike) in now, (day, c)
                kept += 1
    assert kept > 1000


# --- the command line --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("argv, message", [
    (["--days", "3"], "--days needs --interval 1m, 5m or eod"),
    (["--minutes", "3", "--interval", "eod"], "--interval goes with --days"),
    (["--days", "0", "--interval", "eod"], "--days 0 must be >= 1"),
])
def test_bad_usage_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--db", str(tmp_path / "x.sqlite"), "--seed", "1", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_minutes_and_days_are_exclusive(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--db", str(tmp_path / "x.sqlite"), "--seed", "1", "--minutes", "2", "--days", "2",
              "--interval", "eod"])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def test_a_recorded_session_is_refused_then_replaced(tmp_path, capsys):
    db = tmp_path / "again.sqlite"
    argv = ["simulate", "--db", str(db), "--seed", "2", "--days", "1", "--interval", "eod", "--start", "2024-03-05"]
    assert main(argv) == 0
    assert main(argv) == 1
    session = "simulated:seed=2:eod:2024-03-05T20:45:00+00:00"
    assert capsys.readouterr().err.strip().endswith(
        f"session {session!r} already recorded (1 snapshots); use --session NAME to record another, "
        f"or --replace to record it again")
    assert main([*argv, "--replace"]) == 0
    with Store.open(db) as store:
        assert [s.n_snapshots for s in store.list_sessions()] == [2]  # SPX + its SPY companion


def test_a_full_disk_is_one_line_saying_how_many_days_were_kept(tmp_path, monkeypatch, capsys):
    from tests.cli.test_cli_errors import _disk_full, _one_stderr_line

    real_save, calls = Store.save_snapshots, []

    def save_until_full(self, snaps, **kw):
        calls.append(1)
        if len(calls) > 2:
            raise _disk_full()
        return real_save(self, snaps, **kw)

    monkeypatch.setattr(Store, "save_snapshots", save_until_full)
    monkeypatch.setattr(recorder, "BATCH_SNAPSHOTS", 2)  # one write per day (the chain + its SPY companion)
    db = tmp_path / "full.sqlite"
    capsys.readouterr()
    assert main(["simulate", "--db", str(db), "--seed", "4", "--days", "5", "--interval", "eod",
                 "--start", "2024-03-04"]) == 1
    assert _one_stderr_line(capsys) == (
        f"spx-data simulate: disk full while writing {db}; free some space, or pass a --db on another disk "
        f"(2 of 5 days of session 'simulated:seed=4:eod:2024-03-04T20:45:00+00:00' were recorded; rerun with "
        f"--replace to record it whole)")
    with Store.open(db) as store:
        assert len(store.list_snapshots()) == 4  # the two days written whole, nothing of the third


def test_the_real_command_records_days_with_progress_on_stderr(tmp_path):
    db = tmp_path / "cli.sqlite"
    done = run_spx_data("simulate", "--db", db, "--seed", 6, "--days", 2, "--interval", "eod",
                        "--start", "2024-03-06")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("recorded 2 trading days at eod: 2 simulated snapshots (ids 1..4, with 2 SPY ")
    assert "simulate" in done.stderr and "day" in done.stderr and done.messages == []  # the bar cleared itself
    assert np.isfinite(Store.open(db).load_bars("VIX")["close"]).all()


def test_an_hours_long_step_trades_in_the_per_trade_law():
    """A bulk recording's step of hours draws its ~10^5 trades per row: the chain's volume is still the trade
    rate times the step times the mean geometric(0.2) size, and each traded row's last is its bid or its ask."""
    from spx_core.marketdata.simulator import SimulatedMarket

    config = SimulatorConfig(seed=8, start=datetime(2024, 3, 5, 9, 30, tzinfo=ET), spy=None)
    market = SimulatedMarket(config)
    market.advance(0.0)
    snap = market.advance(6.25 * 3600).snapshot  # 09:30 -> 15:45
    expected = config.quoting.trade_rate * 6.25 * 3600 * 5.0
    assert int(snap.columns["volume"].sum()) == pytest.approx(expected, rel=0.02)
    traded = snap.columns["volume"] > 0
    last, bid, ask = (snap.columns[k][traded] for k in ("last", "bid", "ask"))
    assert np.all((last == bid) | (last == ask))
