"""``spx-data risk`` / ``spx-data decisions``: the real console script on a real SQLite file with stored positions."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, time

import numpy as np
import pandas as pd
import pytest

from spx_core.domain import ET, OptionContract, default_calendar
from spx_core.domain.calendar import to_ns
from spx_core.execution.orders import Side
from spx_core.portfolio.decisions import TradeDecision
from spx_core.risk.greeks import portfolio_greeks
from spx_core.risk.history import return_history
from spx_core.risk.profiles import PROFILES
from spx_core.risk.scenarios import named_scenarios, stress
from spx_core.risk.var import historical_var, parametric_var
from spx_core.storage import Store
from spx_core.storage.orders_repo import OrderRepository
from spx_core.storage.risk_repo import RiskRepository
from spx_core.strategies.market import Market
from spx_core.surface.chain_iv import chain_iv
from tests.chains import make_chain
from tests.cli.conftest import run_spx_data
from tests.storage.orders_factory import SEC, filled_events, single

NOW = datetime(2024, 3, 4, 14, 30, tzinfo=ET)
T_FILL = to_ns(datetime(2024, 3, 4, 10, 0, tzinfo=ET))
GREEKS = ["delta", "delta_usd_pt", "delta_usd_1pct", "gamma_usd_1pct", "vega_usd_volpt", "theta_usd_day"]
TOP = ["as_of", "snapshots", "positions", "greeks", "limits", "var", "stress", "vix", "notes"]
FIG = ["var95", "es95", "var99", "es99", "n"]
DECISION_KEYS = ["time", "strategy", "action", "reasons", "snapshot_id", "snapshot_checksum", "config_hash",
                 "limit_profile", "order_ref"]


def _bars(days, closes) -> pd.DataFrame:
    stamps = [datetime.combine(d, time(16, 0), tzinfo=ET).astimezone(UTC) for d in days]
    return pd.DataFrame({"time": pd.to_datetime(stamps), "open": np.nan, "high": np.nan, "low": np.nan,
                         "close": np.asarray(closes, dtype=np.float64), "volume": np.nan})


def _contracts(snap, truth):
    s = snap.underlying_price
    short = OptionContract("SPXW", truth[1].expiry, round(s * 0.97 / 5) * 5, "P")
    long = OptionContract("SPXW", truth[1].expiry, short.strike - 25, "P")
    call = OptionContract("SPXW", truth[2].expiry, round(s * 1.02 / 5) * 5, "C")
    return short, long, call


@pytest.fixture(scope="module")
def book_db(tmp_path_factory):
    """A short put vertical (x2) and a long call (x1) on a stored chain, one unlisted put, 200 days of SPX and
    VIX bars before the snapshot and one after it, three decisions, the "iron condor" profile active."""
    path = tmp_path_factory.mktemp("risk_cli") / "book.sqlite"
    snap, truth = make_chain(n_expiries=4, seed=2, now=NOW, strikes_per_expiry=120)
    short, long, call = _contracts(snap, truth)
    odd = OptionContract("SPXW", truth[1].expiry, 1235.0, "P")
    days = default_calendar().trading_days(datetime(2023, 5, 1).date(), datetime(2024, 3, 1).date())[-200:]
    rng = np.random.default_rng(3)
    spot = snap.underlying_price * np.exp(np.cumsum(rng.normal(0, 0.01, 200)) - 0.0)
    vix = 15 + np.cumsum(rng.normal(0, 0.7, 200)).clip(-8, 30)
    with Store.open(path) as store:
        sid = store.save_snapshot(snap, source="test", session="s")
        store.save_bars("SPX", _bars([*days, datetime(2024, 3, 5).date()], [*spot, spot[-1] * 2]))
        store.save_bars("VIX", _bars([*days, datetime(2024, 3, 5).date()], [*vix, 80.0]))
        repo = OrderRepository(store)
        for k, (ref, c, side, qty) in enumerate((("a", short, Side.SELL, 2), ("b", long, Side.BUY, 2),
                                                 ("c", call, Side.BUY, 1), ("d", odd, Side.BUY, 1))):
            request = single(ref, c, side=side, quantity=qty, limit=1.0, created_ns=T_FILL + k * SEC)
            repo.add_order(request)
            for e in filled_events(request, (1.0,), T_FILL + k * SEC):
                repo.append(e)
        for k, (strategy, action, reasons, ref) in enumerate((
                ("credit verticals", "TRADE", ("entry: 0.10 delta put vertical",), "a"),
                ("iron condor", "SKIP", ("iv rank 12 < 30", "regime calm not allowed"), None),
                ("credit verticals", "TRADE", ("stop_loss: loss 100% of credit",), "b"))):
            repo.record_decision(TradeDecision(to_ns(datetime(2024, 3, 1 + 2 * k, 11, 0, tzinfo=ET)), strategy,
                                               action, reasons, sid, snap.checksum, "cfg" + "0" * 61,
                                               "credit verticals", ref))
        RiskRepository(store).set_active_profile("iron condor", to_ns(NOW))
    return path, snap, (short, long, call, odd), sid


@pytest.fixture(scope="module")
def risk_json(book_db):
    path = book_db[0]
    done = run_spx_data("risk", "--db", path, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_risk_json_keys_and_the_valued_book(risk_json, book_db):
    _, snap, (short, long, call, _), sid = book_db
    p = risk_json
    assert list(p) == TOP
    assert p["as_of"] == "2024-03-04T19:30:00Z"
    assert p["snapshots"] == [{"underlying": "SPX", "id": sid, "time": "2024-03-04T19:30:00Z",
                               "checksum": snap.checksum}]
    assert {(x["strike"], x["right"], x["quantity"]) for x in p["positions"]} == {
        (short.strike, "P", -2), (long.strike, "P", 2), (call.strike, "C", 1)}
    assert list(p["positions"][0]) == ["root", "expiry", "strike", "right", "quantity"]
    assert any("1235P" in n and "not listed in the latest SPX snapshot" in n for n in p["notes"])
    assert any("no --starting-cash" in n for n in p["notes"])


def test_risk_figures_equal_the_in_process_computation(risk_json, book_db):
    path, snap, (short, long, call, _), _ = book_db
    legs = [(short, -2), (long, 2), (call, 1)]
    market = Market.of(chain_iv(snap))
    g = portfolio_greeks(legs, market)
    with Store.open(path) as store:
        history = return_history(store, end_ns=snap.time_ns)
    p = risk_json

    assert list(p["greeks"]["total"]) == GREEKS
    for k in GREEKS:
        assert p["greeks"]["total"][k] == pytest.approx(getattr(g.total, k), rel=1e-12)
    assert [e["expiry"] for e in p["greeks"]["by_expiry"]] == [str(short.expiry), str(call.expiry)]
    assert p["greeks"]["by_expiry"][1]["delta_usd_pt"] == pytest.approx(g.by_expiry[call.expiry].delta_usd_pt)
    # the bar after the snapshot (SPX doubled, VIX 80) is never read: 199 moves, all before 2024-03-04
    assert len(history) == 199 and p["var"]["history"] == history.source
    hist, par = historical_var(legs, market, history), parametric_var(legs, market, history)
    assert list(p["var"]) == ["history", "historical", "parametric"]
    assert list(p["var"]["historical"]) == FIG and p["var"]["historical"]["n"] == 199
    for k in FIG[:4]:
        assert p["var"]["historical"][k] == pytest.approx(getattr(hist, k), rel=1e-9)
        assert p["var"]["parametric"][k] == pytest.approx(getattr(par, k), rel=1e-9)
    assert p["var"]["historical"]["var99"] > 0
    # the history ends the Friday before: its last VIX is today's
    assert p["vix"] == pytest.approx(history.last_vol)
    named = named_scenarios(history.last_vol)
    expected = stress(legs, market, named)
    assert [s["name"] for s in p["stress"]] == list(named.names)
    np.testing.assert_allclose([s["pnl"] for s in p["stress"]], expected, rtol=1e-9)


def test_risk_limit_use_is_the_active_profiles(risk_json):
    limits = risk_json["limits"]
    profile = PROFILES["iron condor"]
    assert limits["profile"] == "iron condor"
    assert [u["name"] for u in limits["usage"]] == list(profile.limits())
    assert all(list(u) == ["name", "label", "value", "limit", "pct", "unit"] for u in limits["usage"])
    use = {u["name"]: u for u in limits["usage"]}
    # the held 1235P is not listed: the book's greek limits are unknown (null), never a partial figure
    assert use["max_delta"]["value"] is None and use["max_delta"]["pct"] is None
    assert use["max_daily_drawdown_pct"]["pct"] is None  # net liq unknown without --starting-cash


def test_risk_limit_use_of_a_fully_listed_book_with_starting_cash(book_db, tmp_path):
    from spx_core.portfolio.trades import closing_request

    path = tmp_path / "closed.sqlite"
    shutil.copy(book_db[0], path)
    with Store.open(path) as store:
        repo = OrderRepository(store)
        [odd] = [t for t in repo.trades(open_only=True) if t.legs[0].contract.strike == 1235.0]
        close = closing_request(odd, limit=0.5, ref="close-odd", now_ns=T_FILL + 60 * SEC)
        repo.add_order(close)
        for e in filled_events(close, (0.5,), T_FILL + 60 * SEC):
            repo.append(e)

    done = run_spx_data("risk", "--db", path, "--json", "--starting-cash", "100000")

    assert done.returncode == 0, done.stderr
    p = json.loads(done.stdout)
    use = {u["name"]: u for u in p["limits"]["usage"]}
    delta = p["greeks"]["total"]["delta_usd_pt"]
    assert use["max_delta"]["value"] == pytest.approx(delta, rel=1e-9)
    assert use["max_delta"]["pct"] == pytest.approx(abs(delta) / 200 * 100, rel=1e-9)
    assert use["max_daily_drawdown_pct"]["pct"] is not None
    assert not any("1235P" in n or "starting-cash" in n for n in p["notes"])
    bad = run_spx_data("risk", "--db", book_db[0], "--starting-cash", "-5")
    assert "--starting-cash" in bad.assert_one_line_failure(codes=(2,))


def test_risk_text_report(book_db):
    done = run_spx_data("risk", "--db", book_db[0])
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("book of 3 leg(s) valued at 2024-03-04T19:30:00Z")
    for heading in ("limits (profile 'iron condor')", "1-day VaR / ES, dollars of loss", "named stresses, P&L $"):
        assert heading in out
    lines = out.splitlines()
    assert any(line.startswith("total ") for line in lines)
    assert any(line.startswith("historical ") for line in lines) and any(line.startswith("parametric ") for line in lines)
    assert any(line.startswith("flash crash -10%") for line in lines)
    assert any(line.startswith("note: ") and "1235P" in line for line in lines)


def test_risk_without_history_or_positions(tmp_path):
    path = tmp_path / "bare.sqlite"
    snap, _ = make_chain(n_expiries=3, seed=1, now=NOW, strikes_per_expiry=40)
    with Store.open(path) as store:
        store.save_snapshot(snap, source="test")

    done = run_spx_data("risk", "--db", path, "--json")

    assert done.returncode == 0, done.stderr
    p = json.loads(done.stdout)
    assert p["positions"] == [] and p["greeks"]["total"]["delta"] == 0.0
    assert p["var"] == {"history": None, "historical": None, "parametric": None}
    assert any(n.startswith("VaR/ES not computed: only 0 usable days") for n in p["notes"])
    assert p["limits"]["profile"] == "standard"  # the default active profile
    empty = tmp_path / "empty.sqlite"
    Store.open(empty).close()
    done = run_spx_data("risk", "--db", empty)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("book of 0 leg(s) valued at n/a")


def test_decisions_json_and_since(book_db):
    path, snap, _, sid = book_db
    done = run_spx_data("decisions", "--db", path, "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)["decisions"]
    assert [list(r) for r in rows] == [DECISION_KEYS] * 3
    assert rows[0] == {"time": "2024-03-01T16:00:00Z", "strategy": "credit verticals", "action": "TRADE",
                       "reasons": ["entry: 0.10 delta put vertical"], "snapshot_id": sid,
                       "snapshot_checksum": snap.checksum, "config_hash": "cfg" + "0" * 61,
                       "limit_profile": "credit verticals", "order_ref": "a"}
    assert rows[1]["reasons"] == ["iv rank 12 < 30", "regime calm not allowed"] and rows[1]["order_ref"] is None
    since = json.loads(run_spx_data("decisions", "--db", path, "--json", "--since", "2024-03-03").stdout)
    assert [r["time"][:10] for r in since["decisions"]] == ["2024-03-03", "2024-03-05"]


def test_decisions_text_and_errors(book_db, tmp_path):
    path = book_db[0]
    header, *rows = run_spx_data("decisions", "--db", path).stdout.splitlines()
    assert header.split()[:3] == ["time", "strategy", "action"] and len(rows) == 3
    assert rows[1].endswith("iv rank 12 < 30; regime calm not allowed")
    bad = run_spx_data("decisions", "--db", path, "--since", "March 3")
    assert "YYYY-MM-DD" in bad.assert_one_line_failure(codes=(2,))
    empty = tmp_path / "empty.sqlite"
    Store.open(empty).close()
    assert run_spx_data("decisions", "--db", empty).stdout.startswith("no trade decisions stored")


@pytest.mark.parametrize("command", ["risk", "decisions"])
def test_a_missing_database_is_one_line(tmp_path, command):
    line = run_spx_data(command, "--db", tmp_path / "nope.sqlite").assert_one_line_failure(codes=(1,))
    assert "nope.sqlite: no such database" in line and not (tmp_path / "nope.sqlite").exists()


def test_a_held_leg_without_a_mid_iv_is_valued_on_the_fitted_surface(tmp_path):
    from spx_core.domain import ChainSnapshot
    from spx_core.strategies.market import locate

    snap, truth = make_chain(n_expiries=4, seed=2, now=NOW, strikes_per_expiry=120)
    short, _, _ = _contracts(snap, truth)
    cols = {k: np.array(v, copy=True) for k, v in snap.columns.items()}
    row = int(locate(snap, [short])[0])
    cols["bid"][row], cols["ask"][row] = 0.0, 0.0  # no market on the held strike: its mid IV cannot solve
    cols.pop("flags", None)
    blank = ChainSnapshot.from_columns(underlying="SPX", time=snap.time_ns, underlying_price=snap.underlying_price,
                                       **cols)
    path = tmp_path / "blank.sqlite"
    with Store.open(path) as store:
        store.save_snapshot(blank, source="test")
        repo = OrderRepository(store)
        request = single("a", short, side=Side.SELL, quantity=1, limit=1.0, created_ns=T_FILL)
        repo.add_order(request)
        for e in filled_events(request, (1.0,), T_FILL):
            repo.append(e)

    done = run_spx_data("risk", "--db", path, "--json")

    assert done.returncode == 0, done.stderr
    p = json.loads(done.stdout)
    assert all(v is not None for v in p["greeks"]["total"].values())
    assert p["greeks"]["total"]["delta_usd_pt"] > 0  # a short put: long delta
    assert all(s["pnl"] is not None for s in p["stress"])
    assert any("greeks from the fitted surface" in n for n in p["notes"])


@pytest.mark.shared_data
def test_risk_on_the_real_index_history(tmp_path, shared_data):
    sp500, vix = shared_data / "index_daily" / "sp500.csv.gz", shared_data / "index_daily" / "vix.csv.gz"
    if not (sp500.exists() and vix.exists()):
        pytest.skip(f"{sp500} or {vix} is absent")
    path = tmp_path / "real.sqlite"
    snap, truth = make_chain(n_expiries=4, seed=2, now=NOW, strikes_per_expiry=120)
    short = _contracts(snap, truth)[0]
    with Store.open(path) as store:
        store.save_snapshot(snap, source="test")
        repo = OrderRepository(store)
        request = single("a", short, side=Side.SELL, quantity=1, limit=1.0, created_ns=T_FILL)
        repo.add_order(request)
        for e in filled_events(request, (1.0,), T_FILL):
            repo.append(e)
    assert run_spx_data("import", "--db", path, "--format", "daily-bars", sp500, vix).returncode == 0

    done = run_spx_data("risk", "--db", path, "--json")

    assert done.returncode == 0, done.stderr
    p = json.loads(done.stdout)
    assert p["var"]["history"] == "SPX + VIX daily bars, 500 days 2017-01-05..2018-12-31"
    assert p["var"]["historical"]["n"] == 500 and p["var"]["historical"]["var99"] > p["var"]["historical"]["var95"] > 0
    assert p["var"]["parametric"]["var95"] > 0
    # the history is years older than the snapshot: the VIX for "VIX to 50" is the chain's 30-day ATM IV
    assert any("days before the snapshot" in n for n in p["notes"])
    assert any(n.startswith("VIX to 50 from the SPX 30-day ATM IV") for n in p["notes"])
