"""Backtest metrics: returns, risk and trade statistics of a run's equity curve and trades.

Inputs:
    equity   a ``pd.Series`` of account value in dollars on a tz-aware ``DatetimeIndex`` (UTC; a naive index is
             read as UTC), daily or intraday, one value per stamp (unsorted stamps are sorted; a repeated stamp
             keeps its last value; a NaN value is an error).
    trades   objects with ``entry_ns`` / ``exit_ns`` (UTC nanoseconds; ``exit_ns`` None while open), ``pnl``
             (dollars, realized, **net** of commissions and fees as the trade ledger keeps it) and ``fees``
             (dollars of commission + fees paid). Trade statistics use the closed trades only.

Daily returns (every return-based figure): intraday equity is resampled to **daily closes**, the last value
stamped on each US/Eastern session date (``America/New_York``). The first day's return is measured from
``starting_cash`` (the account before the first session), so there is one return per session date and
``prod(1 + r) - 1`` is the total return. ``risk_free`` is an annual rate turned into a per-day rate by
compounding, ``rf_d = (1 + risk_free) ** (1 / periods_per_year) - 1``. A return from a zero or negative close
(short options can wipe an account out) is undefined: NaN, and every return-based figure is then NaN.

Conventions (empyrical's where they agree; the tests check against empyrical-reloaded):
    total_return       ``equity_last / starting_cash - 1`` (fraction).
    cagr               ``(equity_last / starting_cash) ** (365.25 / D) - 1`` with D the calendar days between
                       the first and last equity stamp; NaN under one day (hours annualised are noise).
                       empyrical instead counts periods (``n / 252`` years).
    volatility         ``std(r, ddof=1) * sqrt(periods_per_year)`` (fraction per year; NaN with < 2 days).
    sharpe             ``mean(r - rf_d) / std(r - rf_d, ddof=1) * sqrt(periods_per_year)``; NaN (not inf) when
                       the standard deviation is zero (a flat equity) or there are < 2 days.
    sortino            ``mean(r - rf_d) * periods_per_year / DD``, downside deviation
                       ``DD = sqrt(mean over ALL days of min(r - rf_d, 0)^2) * sqrt(periods_per_year)`` (target
                       = the risk-free rate, denominator = every day, as empyrical); NaN when DD is zero.
    max_drawdown       deepest fall from a running peak, a **positive** fraction (0.12 = 12% below the peak);
                       computed on the equity as given (intraday included), ``starting_cash`` being the first
                       peak. empyrical reports it negative.
    max_drawdown_usd   largest dollar fall from a running peak (may be another episode than the fraction's).
    max_drawdown_days  calendar days (float) from the max drawdown's peak stamp to the first stamp back at or
                       above that peak, or to the last stamp when not recovered (``max_drawdown_recovered``);
                       0 when there is no drawdown.
    calmar             ``cagr / max_drawdown``; NaN when either is NaN or the drawdown is zero.
    win_rate           winners / closed trades; a winner has ``pnl > 0``, a loser ``pnl < 0`` (a scratch,
                       ``pnl == 0``, is neither but counts in the total). NaN with no trades.
    profit_factor      gross winning pnl / |gross losing pnl|: 0 when every trade loses, **inf** when there are
                       winners and no losers, NaN with no trades or only scratches.
    expectancy         mean pnl per closed trade (dollars). average_win / average_loss: mean pnl of winners /
                       of losers (dollars, the loss negative), NaN without any. largest_loss: the most negative
                       pnl (dollars, negative), NaN without losers.
    var95 / es95       1-day historical VaR and ES at 95% of the daily returns, positive = loss, by the quantile
                       convention of :func:`spx_core.risk.var.var_es` (k = ceil(0.05 n), VaR the k-th worst, ES
                       the mean of the k worst; no interpolation, unlike empyrical's ``np.percentile``);
                       ``var95_usd`` / ``es95_usd`` the same on the daily dollar P&L (daily close changes).
    exposure           fraction of calendar time between the first and last equity stamp with at least one
                       trade open (an open trade runs to the last stamp); NaN when that span is zero.
    peak_margin        largest margin requirement (dollars) of the optional ``margin`` series;
                       ``peak_margin_use`` the largest ``margin / equity`` (equity as of each margin stamp).
                       NaN when no margin series is given.
    fees_paid          sum of ``fees`` over every trade (closed and open), dollars.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from spx_core.risk.var import var_es

__all__ = ["Metrics", "TradeLike", "compute_metrics", "daily_closes", "daily_returns", "drawdown",
           "factor_attribution", "monthly_returns"]

SESSION_TZ = "America/New_York"
DAYS_PER_YEAR = 365.25
NS_PER_DAY = 86_400 * 10**9
VAR_CONFIDENCE = 0.95
_ZERO_SD = 1e-14  # a standard deviation below this is a flat series (rounding noise, not risk)


class TradeLike(Protocol):
    entry_ns: int
    exit_ns: int | None
    pnl: float
    fees: float


@dataclass(frozen=True, slots=True)
class Metrics:
    """A run's figures; units and conventions in the module docstring (fractions unless named ``_usd``)."""

    total_return: float
    cagr: float
    volatility: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown: float
    max_drawdown_usd: float
    max_drawdown_days: float
    max_drawdown_recovered: bool
    win_rate: float
    profit_factor: float
    expectancy: float
    average_win: float
    average_loss: float
    largest_loss: float
    var95: float
    es95: float
    var95_usd: float
    es95_usd: float
    exposure: float
    peak_margin: float
    peak_margin_use: float
    n_trades: int
    n_wins: int
    n_losses: int
    open_trades: int
    fees_paid: float
    n_days: int
    starting_cash: float
    ending_equity: float
    risk_free: float
    periods_per_year: int

    def as_dict(self) -> dict[str, Any]:
        """Plain ``{name: value}`` (for ``--json``; NaN and inf stay floats, the caller picks their encoding)."""
        return asdict(self)


def _clean(equity: pd.Series) -> pd.Series:
    """The equity sorted by a UTC index, float dollars; one clear error for what cannot be used."""
    if not isinstance(equity, pd.Series) or not isinstance(equity.index, pd.DatetimeIndex):
        raise TypeError("equity must be a pandas Series on a DatetimeIndex (UTC timestamps)")
    if len(equity) == 0:
        raise ValueError("equity is empty: a run needs at least one equity stamp")
    index = equity.index.tz_localize("UTC") if equity.index.tz is None else equity.index.tz_convert("UTC")
    out = pd.Series(equity.to_numpy(dtype=np.float64), index=index.as_unit("ns")).sort_index(kind="stable")
    out = out[~out.index.duplicated(keep="last")]
    bad = out.index[~np.isfinite(out.to_numpy())]
    if len(bad):
        raise ValueError(f"equity is not a finite number at {bad[0].isoformat()}: fill or drop that stamp")
    return out


def daily_closes(equity: pd.Series) -> pd.Series:
    """Last equity value of each US/Eastern session date, indexed by that date (``datetime.date``)."""
    eq = _clean(equity)
    dates = eq.index.tz_convert(SESSION_TZ).date
    return eq.groupby(dates, sort=True).last()


def daily_returns(equity: pd.Series, starting_cash: float) -> pd.Series:
    """Daily close-to-close returns (fractions), the first from ``starting_cash``; indexed by session date."""
    closes = daily_closes(equity)
    prev = closes.shift(1)
    prev.iloc[0] = float(starting_cash)
    return _growth(closes, prev)


def _growth(value: pd.Series, base: pd.Series) -> pd.Series:
    """``value / base - 1``, NaN where the base is zero or negative (an account wiped out has no return)."""
    return (value / base.where(base > 0.0)) - 1.0


def drawdown(equity: pd.Series, *, starting_cash: float | None = None) -> pd.Series:
    """Fall below the running peak at each stamp, a fraction <= 0 (``equity / peak - 1``).

    ``starting_cash``, when given, is the first peak (a run that loses from its first stamp is in drawdown there).
    """
    eq = _clean(equity)
    peak = eq.cummax()
    if starting_cash is not None:
        peak = np.maximum(peak, float(starting_cash))
    return (eq / peak - 1.0).rename("drawdown")


def monthly_returns(equity: pd.Series, *, starting_cash: float | None = None) -> pd.DataFrame:
    """Return of each calendar month (fractions), years as rows and months 1..12 as columns (NaN: no data).

    A month's return is its last daily close over the previous month's last close; the first month's base is
    ``starting_cash`` when given, else the first equity value. Session dates are US/Eastern.
    """
    eq = _clean(equity)
    closes = daily_closes(eq)
    stamps = pd.DatetimeIndex(pd.to_datetime(list(closes.index)))
    month_close = closes.groupby([stamps.year, stamps.month]).last()
    base = float(starting_cash) if starting_cash is not None else float(eq.iloc[0])
    prev = month_close.shift(1)
    prev.iloc[0] = base
    returns = _growth(month_close, prev)
    table = returns.unstack()
    table = table.reindex(columns=range(1, 13))
    table.index.name, table.columns.name = "year", "month"
    return table


def _max_drawdown(eq: pd.Series, starting_cash: float) -> tuple[float, float, float, bool]:
    """(depth fraction >= 0, largest dollar fall, duration in calendar days, recovered) of the equity."""
    v = eq.to_numpy()
    t = eq.index.asi8
    peak = np.maximum(np.maximum.accumulate(v), starting_cash)
    dd = v / peak - 1.0
    worst = int(np.argmin(dd))
    depth = -float(dd[worst])
    dollars = float(np.max(peak - v))
    if depth <= 0.0:
        return 0.0, max(dollars, 0.0), 0.0, True
    top = peak[worst]
    at_top = np.flatnonzero(v[: worst + 1] >= top)
    start = t[at_top[-1]] if at_top.size else t[0]  # the peak was starting_cash itself: the run's start
    back = np.flatnonzero(v[worst:] >= top)
    recovered = bool(back.size)
    end = t[worst + back[0]] if recovered else t[-1]
    return depth, dollars, float(end - start) / NS_PER_DAY, recovered


def _return_figures(r: np.ndarray, rf_d: float, ppy: int) -> tuple[float, float, float]:
    """(annualised volatility, Sharpe, Sortino) of daily returns ``r`` (module docstring)."""
    if r.size < 2 or not np.all(np.isfinite(r)):
        return math.nan, math.nan, math.nan
    excess = r - rf_d
    sd = float(np.std(r, ddof=1))
    vol = sd * math.sqrt(ppy)
    sharpe = float(np.mean(excess)) / sd * math.sqrt(ppy) if sd > _ZERO_SD else math.nan
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2))) * math.sqrt(ppy)
    sortino = float(np.mean(excess)) * ppy / downside if downside > _ZERO_SD else math.nan
    return vol, sharpe, sortino


def _trade_figures(trades: Sequence[TradeLike]) -> dict[str, Any]:
    closed = [t for t in trades if t.exit_ns is not None]
    pnl = np.array([float(t.pnl) for t in closed], dtype=np.float64)
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    gross_win, gross_loss = float(wins.sum()), float(-losses.sum())
    if losses.size:
        profit_factor = gross_win / gross_loss
    else:
        profit_factor = math.inf if wins.size else math.nan
    return {
        "win_rate": wins.size / pnl.size if pnl.size else math.nan,
        "profit_factor": profit_factor,
        "expectancy": float(pnl.mean()) if pnl.size else math.nan,
        "average_win": float(wins.mean()) if wins.size else math.nan,
        "average_loss": float(losses.mean()) if losses.size else math.nan,
        "largest_loss": float(losses.min()) if losses.size else math.nan,
        "n_trades": int(pnl.size), "n_wins": int(wins.size), "n_losses": int(losses.size),
        "open_trades": len(trades) - len(closed),
        "fees_paid": float(sum(float(t.fees) for t in trades)),
    }


def _exposure(trades: Sequence[TradeLike], t0: int, t1: int) -> float:
    """Fraction of [t0, t1] covered by the union of the trades' open intervals."""
    if t1 <= t0:
        return math.nan
    spans = sorted((max(int(t.entry_ns), t0), min(t1 if t.exit_ns is None else int(t.exit_ns), t1))
                   for t in trades)
    covered, reach = 0, t0
    for lo, hi in spans:
        lo = max(lo, reach)
        if hi > lo:
            covered += hi - lo
            reach = hi
    return covered / (t1 - t0)


def _margin(margin: pd.Series | None, eq: pd.Series) -> tuple[float, float]:
    if margin is None or len(margin) == 0:
        return math.nan, math.nan
    m = _clean(margin)
    at = eq.reindex(eq.index.union(m.index)).ffill().reindex(m.index)
    use = (m / at).to_numpy()
    use = use[np.isfinite(use)]
    return float(m.max()), float(use.max()) if use.size else math.nan


def compute_metrics(equity: pd.Series, trades: Sequence[TradeLike], *, starting_cash: float,
                    risk_free: float = 0.0, periods_per_year: int = 252,
                    margin: pd.Series | None = None) -> Metrics:
    """Every figure of a run (module docstring); ``margin`` is an optional dollar series of margin required."""
    if not (math.isfinite(starting_cash) and starting_cash > 0):
        raise ValueError(f"starting_cash must be a positive number of dollars, got {starting_cash!r}")
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be positive (252 for daily returns), got {periods_per_year!r}")
    eq = _clean(equity)
    closes = daily_closes(eq)
    r = daily_returns(eq, starting_cash).to_numpy()
    pnl_usd = np.diff(closes.to_numpy(), prepend=float(starting_cash))
    rf_d = (1.0 + risk_free) ** (1.0 / periods_per_year) - 1.0
    vol, sharpe, sortino = _return_figures(r, rf_d, periods_per_year)
    t0, t1 = int(eq.index.asi8[0]), int(eq.index.asi8[-1])
    growth = float(eq.iloc[-1]) / starting_cash
    span_days = (t1 - t0) / NS_PER_DAY
    cagr = growth ** (DAYS_PER_YEAR / span_days) - 1.0 if span_days >= 1.0 and growth > 0 else math.nan
    if span_days >= 1.0 and growth <= 0:
        cagr = -1.0  # the account is wiped out: every year loses everything
    depth, dd_usd, dd_days, recovered = _max_drawdown(eq, float(starting_cash))
    calmar = cagr / depth if depth > 0 and math.isfinite(cagr) else math.nan
    var95, es95 = var_es(r, VAR_CONFIDENCE)
    var_usd, es_usd = var_es(pnl_usd, VAR_CONFIDENCE)
    peak_margin, peak_use = _margin(margin, eq)
    return Metrics(
        total_return=growth - 1.0, cagr=cagr, volatility=vol, sharpe=sharpe, sortino=sortino, calmar=calmar,
        max_drawdown=depth, max_drawdown_usd=dd_usd, max_drawdown_days=dd_days, max_drawdown_recovered=recovered,
        var95=var95, es95=es95, var95_usd=var_usd, es95_usd=es_usd, exposure=_exposure(trades, t0, t1),
        peak_margin=peak_margin, peak_margin_use=peak_use, n_days=int(r.size), starting_cash=float(starting_cash),
        ending_equity=float(eq.iloc[-1]), risk_free=float(risk_free), periods_per_year=int(periods_per_year),
        **_trade_figures(trades))


def factor_attribution(trades: Sequence[TradeLike], factors: Mapping[int, Mapping[str, float]]
                       ) -> dict[str, float]:
    """Mean of each entry factor over winning trades minus its mean over losing trades (the Quantor plan).

    ``factors`` maps a trade's position in ``trades`` (0-based, the order the run returns them) to its entry
    factors (``{"vix": 18.2, "iv_rank": 0.4, ...}``). Only closed trades count; winners have ``pnl > 0``, losers
    ``pnl < 0``; a non-finite factor value is left out. A factor with no winner or no loser value is NaN.
    Positive means winners entered with a higher value of that factor.
    """
    sums: dict[str, list[list[float]]] = {}
    for i, trade in enumerate(trades):
        if trade.exit_ns is None or i not in factors or float(trade.pnl) == 0.0:
            continue
        side = 0 if float(trade.pnl) > 0 else 1
        for name, value in factors[i].items():
            if math.isfinite(float(value)):
                sums.setdefault(name, [[], []])[side].append(float(value))
    out: dict[str, float] = {}
    for name in sorted(sums):
        won, lost = sums[name]
        out[name] = float(np.mean(won)) - float(np.mean(lost)) if won and lost else math.nan
    return out
