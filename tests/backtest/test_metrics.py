"""Backtest metrics: return figures against empyrical-reloaded, everything else by hand.

Reference values were produced once, outside the shared venv, with empyrical-reloaded 0.7.1 (numpy 2.4.6,
pandas 3.1.1) in a throwaway venv (``python3 -m venv /tmp/metrics-ref && /tmp/metrics-ref/bin/pip install numpy
pandas empyrical-reloaded``), by a script that builds exactly the returns ``compute_metrics`` measures:
``r = e / np.r_[starting_cash, e[:-1]] - 1`` of the equity ``e`` below, as a Series on the session dates, then calls
``empyrical.cum_returns_final(r)``, ``annual_volatility(r)`` (period="daily", i.e. 252),
``sharpe_ratio(r, risk_free=rf_d)``, ``sortino_ratio(r, required_return=rf_d)``, ``downside_risk(r,
required_return=rf_d)``, ``max_drawdown(r)`` and ``aggregate_returns(r, "monthly")``, with
``rf_d = (1 + 0.03) ** (1 / 252) - 1`` for series B and 0 otherwise.

Conventions that differ from empyrical and are therefore checked by hand here: CAGR (ours: calendar days between
the first and last stamp, empyrical: n / 252 years), hence Calmar; VaR/ES (ours: the k-th worst / mean of the k
worst, spx_core.risk.var; empyrical: ``np.percentile`` interpolation); max drawdown sign (ours positive).
"""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError, dataclass

import numpy as np
import pandas as pd
import pytest

from spx_core.backtest.metrics import (
    Metrics,
    compute_metrics,
    daily_closes,
    drawdown,
    factor_attribution,
    monthly_returns,
)

REL = 1e-10
CASH = 100_000.0
R_A = [0.012, -0.008, 0.004, -0.021, 0.017, 0.0, 0.009, -0.013, 0.006, 0.011, -0.004, -0.016,
       0.023, -0.002, 0.007, -0.011, 0.005, 0.014, -0.009, 0.003, -0.027, 0.018, 0.002, 0.008]

# empyrical-reloaded 0.7.1 on series A (R_A from 2021-01-04, business days, starting cash 100,000), rf = 0.
EMP_A = {"cum_returns_final": 0.02645720519792394, "annual_volatility": 0.20230239956452625,
         "sharpe_ratio": 1.4532699593917244, "sortino_ratio": 2.0919836362385507,
         "max_drawdown": -0.03286427100000013}
EMP_A_MONTHLY = {(2021, 1): 0.026010902537624947, (2021, 2): 0.00043498822399956616}
# Series B: the same returns, risk_free = 3% a year (rf_d as in the module docstring).
EMP_B = {"sharpe_ratio": 1.3071494192996997, "sortino_ratio": 1.8686840893020917,
         "downside_risk": 0.14151105883952167}
# Series C: S&P 500 closes 1999-01-04..2018-12-31 (../shared/data/index_daily/sp500.csv.gz), equity
# 1,000,000 x close[1:] / close[0] stamped on the dates from the second row on (5030 returns).
EMP_C = {"cum_returns_final": 1.0412426895120976, "annual_volatility": 0.1909820714137126,
         "sharpe_ratio": 0.2827392290446046, "sortino_ratio": 0.3986140298563937,
         "max_drawdown": -0.5677538775030551}
EMP_C_MONTHLY = {(2008, 10): -0.16942452376742012, (2018, 12): -0.09177689459656391}


@dataclass(frozen=True)
class T:
    entry_ns: int
    exit_ns: int | None
    pnl: float
    fees: float = 0.0
    exit_reason: str = "take_profit"


def _stamps(dates, hour_utc: int = 21) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(dates)).tz_localize("UTC") + pd.Timedelta(hours=hour_utc)


def _series_a() -> pd.Series:
    e = CASH * np.cumprod(1.0 + np.asarray(R_A))
    return pd.Series(e, index=_stamps(pd.bdate_range("2021-01-04", periods=len(R_A))))


def _ns(text: str) -> int:
    return int(pd.Timestamp(text, tz="UTC").value)


def test_series_a_matches_empyrical():
    m = compute_metrics(_series_a(), [], starting_cash=CASH)
    assert m.n_days == len(R_A)
    assert m.total_return == pytest.approx(EMP_A["cum_returns_final"], rel=REL)
    assert m.volatility == pytest.approx(EMP_A["annual_volatility"], rel=REL)
    assert m.sharpe == pytest.approx(EMP_A["sharpe_ratio"], rel=REL)
    assert m.sortino == pytest.approx(EMP_A["sortino_ratio"], rel=REL)
    assert -m.max_drawdown == pytest.approx(EMP_A["max_drawdown"], rel=REL)
    table = monthly_returns(_series_a(), starting_cash=CASH)
    for (year, month), want in EMP_A_MONTHLY.items():
        assert table.loc[year, month] == pytest.approx(want, rel=REL)
    assert table.shape == (1, 12) and table.loc[2021].isna().sum() == 10


def test_series_b_risk_free_matches_empyrical():
    m = compute_metrics(_series_a(), [], starting_cash=CASH, risk_free=0.03)
    assert m.sharpe == pytest.approx(EMP_B["sharpe_ratio"], rel=REL)
    assert m.sortino == pytest.approx(EMP_B["sortino_ratio"], rel=REL)
    rf_d = 1.03 ** (1 / 252) - 1
    dd = math.sqrt(np.mean(np.minimum(np.asarray(R_A) - rf_d, 0.0) ** 2) * 252)
    assert dd == pytest.approx(EMP_B["downside_risk"], rel=1e-9)  # the stated downside convention is empyrical's


@pytest.mark.shared_data
def test_sp500_matches_empyrical(shared_data):
    path = shared_data / "index_daily" / "sp500.csv.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    df = pd.read_csv(path)
    close = df["Close"].to_numpy(dtype=np.float64)
    stamps = _stamps(pd.to_datetime(df["Date"], format="%m/%d/%Y")[1:])
    equity = pd.Series(1_000_000.0 * close[1:] / close[0], index=stamps)
    m = compute_metrics(equity, [], starting_cash=1_000_000.0)
    assert m.n_days == 5030
    assert m.total_return == pytest.approx(EMP_C["cum_returns_final"], rel=REL)
    assert m.volatility == pytest.approx(EMP_C["annual_volatility"], rel=REL)
    assert m.sharpe == pytest.approx(EMP_C["sharpe_ratio"], rel=REL)
    assert m.sortino == pytest.approx(EMP_C["sortino_ratio"], rel=REL)
    assert -m.max_drawdown == pytest.approx(EMP_C["max_drawdown"], rel=REL)
    table = monthly_returns(equity, starting_cash=1_000_000.0)
    assert table.shape == (20, 12) and not table.isna().any().any()
    for (year, month), want in EMP_C_MONTHLY.items():
        assert table.loc[year, month] == pytest.approx(want, rel=REL)
    # The 2007-10-09 peak was regained only on 2013-03-28: the 2008 drawdown's duration in calendar days.
    assert m.max_drawdown_recovered
    assert m.max_drawdown_days == (pd.Timestamp("2013-03-28") - pd.Timestamp("2007-10-09")).days


def test_cagr_and_calmar_by_calendar_days():
    equity = pd.Series([101_000.0, 99_000.0, 110_000.0],
                       index=_stamps(["2021-01-04", "2021-06-01", "2022-03-04"]))
    m = compute_metrics(equity, [], starting_cash=CASH)
    days = (pd.Timestamp("2022-03-04") - pd.Timestamp("2021-01-04")).days
    assert m.cagr == pytest.approx(1.10 ** (365.25 / days) - 1, rel=1e-12)
    assert m.max_drawdown == pytest.approx(1 - 99_000 / 101_000, rel=1e-12)
    assert m.calmar == pytest.approx(m.cagr / m.max_drawdown, rel=1e-12)


def test_drawdown_depth_dollars_and_duration():
    dates = ["2021-03-01", "2021-03-02", "2021-03-04", "2021-03-08", "2021-03-10", "2021-03-15"]
    equity = pd.Series([100.0, 110.0, 99.0, 105.0, 111.0, 104.0], index=_stamps(dates))
    dd = drawdown(equity)
    assert list(dd) == pytest.approx([0, 0, 99 / 110 - 1, 105 / 110 - 1, 0, 104 / 111 - 1], rel=1e-12)
    m = compute_metrics(equity, [], starting_cash=100.0)
    assert m.max_drawdown == pytest.approx(0.1, rel=1e-12)  # 110 -> 99
    assert m.max_drawdown_usd == pytest.approx(11.0, rel=1e-12)
    assert m.max_drawdown_recovered and m.max_drawdown_days == 8.0  # 03-02 peak, 03-10 back above it
    # Deeper and never recovered: runs from the 111 peak to the last stamp; the dollar fall is the larger one.
    deeper = pd.concat([equity, pd.Series([80.0], index=_stamps(["2021-03-20"]))])
    m = compute_metrics(deeper, [], starting_cash=100.0)
    assert m.max_drawdown == pytest.approx(1 - 80 / 111, rel=1e-12) and m.max_drawdown_usd == pytest.approx(31.0)
    assert not m.max_drawdown_recovered and m.max_drawdown_days == 10.0


def test_drawdown_from_starting_cash_when_the_first_stamp_is_a_loss():
    equity = pd.Series([95.0, 97.0, 101.0], index=_stamps(["2021-03-01", "2021-03-03", "2021-03-05"]))
    assert drawdown(equity, starting_cash=100.0).iloc[0] == pytest.approx(-0.05)
    assert drawdown(equity).iloc[0] == 0.0
    m = compute_metrics(equity, [], starting_cash=100.0)
    assert m.max_drawdown == pytest.approx(0.05) and m.max_drawdown_days == 4.0


def test_var_es_use_the_risk_quantile_convention():
    rng = np.random.default_rng(3)
    r = rng.normal(0.0005, 0.01, 40)
    equity = pd.Series(CASH * np.cumprod(1 + r), index=_stamps(pd.bdate_range("2021-01-04", periods=40)))
    m = compute_metrics(equity, [], starting_cash=CASH)
    rr = equity.to_numpy() / np.r_[CASH, equity.to_numpy()[:-1]] - 1
    worst = np.sort(-rr)[::-1]  # k = ceil(40 x 0.05) = 2: VaR the 2nd worst loss, ES the mean of the 2 worst
    assert m.var95 == pytest.approx(worst[1], rel=1e-12) and m.es95 == pytest.approx(worst[:2].mean(), rel=1e-12)
    usd = np.sort(-np.diff(equity.to_numpy(), prepend=CASH))[::-1]
    assert m.var95_usd == pytest.approx(usd[1], rel=1e-12) and m.es95_usd == pytest.approx(usd[:2].mean(), rel=1e-12)


def test_trade_statistics_by_hand():
    day = 86_400 * 10**9
    t0 = _ns("2021-03-01 21:00")
    trades = [T(t0, t0 + day, 120.0, 2.3), T(t0 + day, t0 + 2 * day, -80.0, 2.3), T(t0, t0 + day, 0.0, 1.0),
              T(t0 + 2 * day, t0 + 3 * day, 200.0, 4.6), T(t0 + 3 * day, t0 + 4 * day, -40.0, 2.3),
              T(t0 + 4 * day, None, -500.0, 1.15)]
    equity = pd.Series([CASH, CASH + 200], index=pd.DatetimeIndex([t0, t0 + 5 * day]).tz_localize("UTC"))
    m = compute_metrics(equity, trades, starting_cash=CASH)
    assert (m.n_trades, m.n_wins, m.n_losses, m.open_trades) == (5, 2, 2, 1)
    assert m.win_rate == pytest.approx(2 / 5)
    assert m.profit_factor == pytest.approx(320 / 120)
    assert m.expectancy == pytest.approx(200 / 5)
    assert m.average_win == pytest.approx(160.0) and m.average_loss == pytest.approx(-60.0)
    assert m.largest_loss == -80.0
    assert m.fees_paid == pytest.approx(13.65)
    assert m.exposure == pytest.approx(1.0)  # trades cover every day, the open one to the end


def test_exposure_merges_overlaps_and_clips_to_the_run():
    t0, t1 = _ns("2021-03-01 00:00"), _ns("2021-03-11 00:00")
    h = 3_600 * 10**9
    trades = [T(t0 - 24 * h, t0 + 24 * h, 1.0), T(t0 + 12 * h, t0 + 48 * h, 1.0),  # overlap: 48 h from t0
              T(t0 + 120 * h, t0 + 144 * h, -1.0), T(t1 - 12 * h, None, 0.0)]
    equity = pd.Series([CASH, CASH], index=pd.DatetimeIndex([t0, t1]).tz_localize("UTC"))
    m = compute_metrics(equity, trades, starting_cash=CASH)
    assert m.exposure == pytest.approx((48 + 24 + 12) / 240)
    assert compute_metrics(equity, [], starting_cash=CASH).exposure == 0.0


def test_profit_factor_edges():
    equity = _series_a()
    ns = _ns("2021-01-05 15:00")
    def pf(pnls):
        return compute_metrics(equity, [T(ns, ns + 1, p) for p in pnls], starting_cash=CASH).profit_factor
    assert pf([-10.0, -5.0]) == 0.0
    assert pf([10.0, 5.0]) == math.inf
    assert math.isnan(pf([0.0])) and math.isnan(pf([]))
    m = compute_metrics(equity, [], starting_cash=CASH)
    assert m.n_trades == 0 and all(math.isnan(x) for x in (m.win_rate, m.expectancy, m.average_win,
                                                             m.average_loss, m.largest_loss))
    all_losses = compute_metrics(equity, [T(ns, ns + 1, -10.0)], starting_cash=CASH)
    assert all_losses.win_rate == 0.0 and math.isnan(all_losses.average_win)


def test_flat_equity_gives_nan_ratios_not_inf():
    equity = pd.Series(CASH, index=_stamps(pd.bdate_range("2021-01-04", periods=30)))
    m = compute_metrics(equity, [], starting_cash=CASH)
    assert m.volatility == 0.0 and m.total_return == 0.0 and m.cagr == 0.0
    assert math.isnan(m.sharpe) and math.isnan(m.sortino) and math.isnan(m.calmar)
    assert m.max_drawdown == 0.0 and m.max_drawdown_days == 0.0 and m.var95 == 0.0
    # A constant positive return: zero spread up to rounding, still NaN rather than a huge Sharpe.
    steady = pd.Series(CASH * 1.001 ** np.arange(1, 31), index=equity.index)
    assert math.isnan(compute_metrics(steady, [], starting_cash=CASH).sharpe)
    assert math.isnan(compute_metrics(steady, [], starting_cash=CASH).sortino)  # no downside


def test_intraday_equity_resamples_to_eastern_session_closes():
    # 2021-03-01 (EST, UTC-5): 15:00 and 20:30 UTC; 01:00 UTC on 03-02 is still 20:00 ET on 03-01.
    stamps = pd.DatetimeIndex(["2021-03-01 15:00", "2021-03-01 20:30", "2021-03-02 01:00",
                               "2021-03-02 15:00", "2021-03-02 21:00"]).tz_localize("UTC")
    equity = pd.Series([100.5, 99.0, 102.0, 101.0, 104.0], index=stamps)
    closes = daily_closes(equity)
    assert [str(d) for d in closes.index] == ["2021-03-01", "2021-03-02"] and list(closes) == [102.0, 104.0]
    m = compute_metrics(equity.sample(frac=1.0, random_state=1), [], starting_cash=100.0)  # order-free
    assert m.n_days == 2
    r = np.array([0.02, 104 / 102 - 1])
    assert m.volatility == pytest.approx(np.std(r, ddof=1) * math.sqrt(252), rel=1e-12)
    assert m.max_drawdown == pytest.approx(1 - 99 / 100.5, rel=1e-12)  # the intraday dip counts for drawdown
    assert m.max_drawdown_days == pytest.approx(10 / 24)  # 15:00 peak, back above at 01:00 UTC next day


def test_one_session_day():
    stamps = pd.DatetimeIndex(["2021-03-01 15:00", "2021-03-01 20:00"]).tz_localize("UTC")
    m = compute_metrics(pd.Series([100.0, 97.0], index=stamps), [], starting_cash=100.0)
    assert m.n_days == 1 and m.total_return == pytest.approx(-0.03)
    assert all(math.isnan(x) for x in (m.volatility, m.sharpe, m.sortino, m.cagr, m.calmar))
    assert m.var95 == pytest.approx(0.03) and m.es95 == pytest.approx(0.03) and m.var95_usd == pytest.approx(3.0)
    assert m.exposure == 0.0


def test_margin_use():
    stamps = _stamps(["2021-03-01", "2021-03-02", "2021-03-03"])
    equity = pd.Series([100_000.0, 80_000.0, 90_000.0], index=stamps)
    margin = pd.Series([20_000.0, 18_000.0], index=stamps[:2] + pd.Timedelta(hours=1))
    m = compute_metrics(equity, [], starting_cash=CASH, margin=margin)
    assert m.peak_margin == 20_000.0 and m.peak_margin_use == pytest.approx(18_000 / 80_000)
    assert math.isnan(compute_metrics(equity, [], starting_cash=CASH).peak_margin)


def test_monthly_returns_across_a_year_boundary():
    stamps = _stamps(["2020-11-30", "2020-12-15", "2020-12-31", "2021-01-29", "2021-03-01"])
    equity = pd.Series([105.0, 90.0, 99.0, 108.9, 98.01], index=stamps)
    table = monthly_returns(equity, starting_cash=100.0)
    assert list(table.index) == [2020, 2021] and list(table.columns) == list(range(1, 13))
    assert table.loc[2020, 11] == pytest.approx(0.05) and table.loc[2020, 12] == pytest.approx(99 / 105 - 1)
    assert table.loc[2021, 1] == pytest.approx(0.10) and table.loc[2021, 3] == pytest.approx(-0.10)
    assert math.isnan(table.loc[2021, 2]) and math.isnan(table.loc[2020, 1])
    assert monthly_returns(equity).loc[2020, 11] == 0.0  # no starting cash: the first value is the base


def test_factor_attribution_by_hand():
    ns = _ns("2021-03-01 15:00")
    trades = [T(ns, ns + 1, 100.0), T(ns, ns + 1, 50.0), T(ns, ns + 1, -70.0), T(ns, ns + 1, 0.0),
              T(ns, None, 10.0), T(ns, ns + 1, -30.0)]
    factors = {0: {"vix": 20.0, "iv_rank": 0.6}, 1: {"vix": 16.0, "iv_rank": math.nan},
               2: {"vix": 25.0, "iv_rank": 0.2}, 3: {"vix": 99.0}, 4: {"vix": 99.0}, 5: {"vix": 27.0, "skew": 1.0}}
    got = factor_attribution(trades, factors)
    assert got["vix"] == pytest.approx((20 + 16) / 2 - (25 + 27) / 2)
    assert got["iv_rank"] == pytest.approx(0.6 - 0.2)
    assert math.isnan(got["skew"])  # only a loser has it
    assert factor_attribution([], {}) == {}


def test_metrics_is_frozen_and_plain():
    m = compute_metrics(_series_a(), [], starting_cash=CASH)
    with pytest.raises(FrozenInstanceError):
        m.sharpe = 1.0  # type: ignore[misc]
    d = m.as_dict()
    assert set(d) == set(Metrics.__dataclass_fields__) and all(type(v) in (float, int, bool) for v in d.values())


@pytest.mark.parametrize("equity, cash, message", [
    (pd.Series([], dtype=float, index=pd.DatetimeIndex([], tz="UTC")), CASH, "equity is empty"),
    (pd.Series([1.0, math.nan], index=_stamps(["2021-03-01", "2021-03-02"])), CASH,
     "not a finite number at 2021-03-02"),
    (pd.Series([1.0], index=_stamps(["2021-03-01"])), 0.0, "starting_cash must be a positive"),
])
def test_bad_input_is_one_clear_line(equity, cash, message):
    with pytest.raises(ValueError, match=message) as err:
        compute_metrics(equity, [], starting_cash=cash)
    assert "\n" not in str(err.value)


def test_equity_without_timestamps_is_a_type_error():
    with pytest.raises(TypeError, match="DatetimeIndex"):
        compute_metrics(pd.Series([1.0, 2.0]), [], starting_cash=CASH)


def test_an_account_wiped_out_has_undefined_returns_not_a_crash():
    # Short options can take the account to zero and below; a return from a zero or negative close is undefined.
    equity = pd.Series([100.0, 50.0, 0.0, -10.0], index=_stamps(pd.bdate_range("2021-01-04", periods=4)))
    m = compute_metrics(equity, [], starting_cash=100.0)
    assert all(math.isnan(x) for x in (m.volatility, m.sharpe, m.sortino, m.var95, m.es95))
    assert m.total_return == pytest.approx(-1.1) and m.cagr == -1.0
    assert m.max_drawdown == pytest.approx(1.1) and m.max_drawdown_usd == pytest.approx(110.0)
    assert m.var95_usd == pytest.approx(50.0)  # k = 1 of 4 daily dollar P&Ls: the worst, -50
    table = monthly_returns(pd.Series([100.0, 0.0, 5.0], index=_stamps(["2021-01-29", "2021-02-26", "2021-03-31"])))
    assert table.loc[2021, 2] == -1.0 and math.isnan(table.loc[2021, 3])
