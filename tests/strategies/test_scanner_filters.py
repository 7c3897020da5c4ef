"""Each scanner filter and selection rule on its own: what it keeps, that it removes something, and the
one-line reason an empty result gives."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from spx_core.domain.calendar import ET
from spx_core.domain.contracts import Root
from spx_core.domain.quotes import QualityThresholds
from spx_core.strategies.scanner import (
    PRESETS,
    ScanParams,
    ScanParamsError,
    ScanStructure,
    params_for,
    scan,
)
from tests.strategies.scanner_reference import fit_all, realistic

BASE = {"short_delta": (0.10, 0.45), "widths": (5.0, 10.0, 25.0), "dte": (0, 40), "allow_flagged": True}


def _scan(params, f=None):
    f = f or realistic()
    return scan(f.snap, f.civ, f.surface, params, densities=f.densities)


def _legs(result, column):
    f = realistic()
    rows = result.table.candidates.rows
    return np.asarray(f.snap.columns[column])[rows] if column in f.snap.columns else None


def _removed(result, name):
    return dict(result.removed)[name]


def test_open_interest_filter_keeps_only_legs_with_that_much():
    loose, tight = _scan(params_for(ScanStructure.PUT_CREDIT_VERTICAL, **BASE)), _scan(
        params_for(ScanStructure.PUT_CREDIT_VERTICAL, **BASE, min_open_interest=100))
    assert np.all(_legs(tight, "open_interest") >= 100)
    assert 0 < _removed(tight, "open interest") == loose.n_passed - tight.n_passed


@pytest.mark.parametrize("name, field, limit", [("leg spread", "max_leg_spread", 0.3),
                                                ("package spread", "max_package_spread", 0.5)])
def test_spread_filters_cap_leg_and_package_bid_ask(name, field, limit):
    loose = _scan(params_for(ScanStructure.CALL_CREDIT_VERTICAL, **BASE))
    tight = _scan(params_for(ScanStructure.CALL_CREDIT_VERTICAL, **BASE, **{field: limit}))
    spreads = _legs(tight, "ask") - _legs(tight, "bid")
    if field == "max_leg_spread":
        assert spreads.max() <= limit
    else:
        assert np.all(tight.table.package_spread <= limit)
        np.testing.assert_allclose(tight.table.package_spread, spreads.sum(axis=1))
    assert 0 < _removed(tight, name) == loose.n_passed - tight.n_passed


def test_flagged_quotes_are_excluded_unless_allowed():
    f = realistic()
    snap = f.snap
    # Tight thresholds flag many ordinary quotes WIDE (flags mark, never drop).
    flagged = snap.replace_quotes(time=snap.time_ns, underlying_price=snap.underlying_price,
                                  thresholds=QualityThresholds(wide_abs=0.2, wide_rel=0.02))
    g = fit_all(flagged)
    params = params_for(ScanStructure.PUT_CREDIT_VERTICAL, **{**BASE, "allow_flagged": False})
    strict = _scan(params, g)
    allowed = _scan(params_for(ScanStructure.PUT_CREDIT_VERTICAL, **BASE), g)
    rows = strict.table.candidates.rows
    assert np.all(flagged.columns["flags"][rows] == 0)
    assert np.any(flagged.columns["flags"][allowed.table.candidates.rows] != 0)
    assert _removed(strict, "quote flags") == allowed.n_passed - strict.n_passed > 0


@pytest.mark.parametrize("field, value, name", [("min_credit_per_width", 0.25, "credit/width"),
                                                ("min_pop", 0.8, "POP")])
def test_metric_filters_keep_what_meets_the_minimum(field, value, name):
    loose = _scan(params_for(ScanStructure.PUT_CREDIT_VERTICAL, **BASE))
    tight = _scan(params_for(ScanStructure.PUT_CREDIT_VERTICAL, **BASE, **{field: value}))
    got = tight.table.credit_per_width if field == "min_credit_per_width" else tight.table.pop
    assert np.all(got >= value)
    assert 0 < _removed(tight, name) == loose.n_passed - tight.n_passed


def test_delta_range_takes_every_short_strike_inside_it_and_widths_set_the_wings():
    f = realistic()
    result = _scan(params_for(ScanStructure.PUT_CREDIT_VERTICAL, **BASE))
    rows = result.table.candidates.rows
    d = np.abs(f.civ.delta[rows[:, 0]])
    assert np.all((d >= 0.10) & (d <= 0.45))
    widths = f.snap.columns["strike"][rows[:, 0]] - f.snap.columns["strike"][rows[:, 1]]
    np.testing.assert_array_equal(widths, result.table.width)
    assert set(np.unique(widths)) == {5.0, 10.0, 25.0}
    # every in-range put of a scanned expiry with its wings listed and two-sided quotes appears once per width
    assert len(rows) == len({tuple(r) for r in rows.tolist()})


def test_dte_range_and_exact_days_select_expiries_by_the_snapshot_date():
    result = _scan(params_for(ScanStructure.PUT_CREDIT_VERTICAL, **{**BASE, "dte": (3, 16)}))
    assert set(result.table.dte.tolist()) == {3, 8, 16}  # realistic_chain lists DTE 1, 3, 8, 16, 35, ...
    only = _scan(params_for(ScanStructure.PUT_CREDIT_VERTICAL, **{**BASE, "dte": (0, 40)}, dte_days=(3, 16)))
    assert set(only.table.dte.tolist()) == {3, 16}


def test_same_day_expiry_is_scanned_and_dte_ignores_the_wall_clock():
    from tests.chains import make_chain

    # 23:30 ET on Thursday 2024-03-07 is Friday in UTC: DTE must count from the US/Eastern date.
    snap, truth = make_chain(n_expiries=3, seed=3, now=datetime(2024, 3, 7, 23, 30, tzinfo=ET))
    f = fit_all(snap)
    result = scan(f.snap, f.civ, f.surface, params_for(ScanStructure.PUT_CREDIT_VERTICAL, dte=(0, 400)),
                  densities=f.densities)
    want = {(x.expiry - datetime(2024, 3, 7).date()).days for x in truth}
    assert set(result.table.dte.tolist()) == want


def test_zero_dte_candidates_come_from_the_same_day_expiry():
    from tests.chains import make_chain

    snap, _ = make_chain(n_expiries=4, seed=6, now=datetime(2024, 3, 4, 10, 0, tzinfo=ET))
    # make_chain lists expiries after today; add today's by relabelling the first expiry as the snapshot date
    c = {k: np.asarray(v) for k, v in snap.columns.items()}
    first = c["expiry"][0]
    c["expiry"] = np.where(c["expiry"] == first, np.datetime64("2024-03-04"), c["expiry"])
    from spx_core.domain.snapshot import ChainSnapshot

    same_day = ChainSnapshot.from_columns(underlying="SPX", time=snap.time_ns, underlying_price=snap.underlying_price,
                                          **{k: v for k, v in c.items() if k != "flags"})
    f = fit_all(same_day)
    result = scan(f.snap, f.civ, f.surface, params_for(ScanStructure.PUT_CREDIT_VERTICAL, dte=(0, 0),
                                                       short_delta=(0.05, 0.45), widths=(5.0,)),
                  densities=f.densities)
    assert result.n_expiries == 1 and result.table is not None and set(result.table.dte.tolist()) == {0}
    assert all(c.expiry.isoformat() == "2024-03-04" for c in result.candidates)


def test_roots_filter():
    spxw = _scan(params_for(ScanStructure.PUT_CREDIT_VERTICAL, **{**BASE, "dte": (0, 40)}, roots=(Root.SPXW,)))
    assert {c.structure.legs[0].contract.root for c in spxw.candidates} == {Root.SPXW} and spxw.n_expiries == 1


@pytest.mark.parametrize("params, needle", [
    (params_for(ScanStructure.PUT_CREDIT_VERTICAL, dte=(2, 2)), "no listed expiry has DTE 2-2"),
    (params_for(ScanStructure.PUT_CREDIT_VERTICAL, dte=(1, 1), short_delta=(0.20001, 0.20002)), "no short strike"),
    (params_for(ScanStructure.PUT_CREDIT_VERTICAL, dte=(0, 40), widths=(7.5,)), "7.5 points away"),
    (params_for(ScanStructure.PUT_CREDIT_VERTICAL, dte=(0, 40), max_leg_spread=0.0), "leg spread filter"),
    (params_for(ScanStructure.PUT_CREDIT_VERTICAL, dte=(0, 40), min_pop=0.9999), "POP filter"),
    (params_for(ScanStructure.PUT_CREDIT_VERTICAL, dte=(0, 40), min_open_interest=10**9), "open interest"),
])
def test_an_empty_result_says_which_filter_emptied_it(params, needle):
    result = _scan(params)
    assert result.candidates == [] and result.table is None
    assert needle in result.reason and "\n" not in result.reason


def test_presets_carry_the_seed_plans():
    by = {p.structure: p for p in PRESETS.values()}
    verticals = [p for p in PRESETS.values() if p.structure is ScanStructure.PUT_CREDIT_VERTICAL]
    assert {p.short_delta for p in verticals} == {0.10, 0.20}
    assert all(p.dte_days == (3, 5, 7) and p.widths == (25.0,) for p in verticals)
    assert by[ScanStructure.CALL_CREDIT_VERTICAL].short_delta == (0.15, 0.45)
    assert by[ScanStructure.CALL_DEBIT_VERTICAL].short_delta == (0.15, 0.45)
    assert by[ScanStructure.IRON_CONDOR].dte == (7, 45)
    assert by[ScanStructure.PUT_CREDIT_VERTICAL].allows_dte(5) and not by[ScanStructure.PUT_CREDIT_VERTICAL].allows_dte(4)


@pytest.mark.parametrize("kwargs, needle", [
    ({"short_delta": 1.2}, "between 0 and 1"), ({"short_delta": (0.3, 0.1)}, "low <= high"),
    ({"widths": (0.0,)}, "positive"), ({"widths": ()}, "at least one"), ({"dte": (7, 3)}, "low <= high"),
    ({"min_pop": 1.5}, "[0, 1]"), ({"top": 0}, ">= 1"), ({"structure": "strangle"}, "strangle"),
    ({"max_leg_spread": -1.0}, ">= 0"), ({"min_open_interest": -3}, ">= 0"),
])
def test_bad_parameters_are_refused_with_the_field_named(kwargs, needle):
    with pytest.raises(ScanParamsError, match=None) as exc:
        ScanParams(**kwargs)
    assert needle in str(exc.value)


@pytest.mark.parametrize("field, column", [("pop", "pop"), ("credit_per_width", "credit_per_width"),
                                           ("ev", "ev"), ("edge_usd", "edge_usd"), ("edge_volpts", "edge_volpts")])
def test_a_single_weight_ranks_by_that_figure(field, column):
    from spx_core.strategies.scanner import ScoreWeights

    zero = dict.fromkeys(("ev", "ev_per_max_loss", "pop", "credit_per_width", "edge_usd", "edge_volpts"), 0.0)
    weights = ScoreWeights(**{**zero, field: 2.0})
    table = _scan(params_for(ScanStructure.PUT_CREDIT_VERTICAL, **BASE, weights=weights)).table
    values = np.nan_to_num(getattr(table, column), nan=0.0)
    np.testing.assert_allclose(table.score, 2.0 * values, rtol=1e-12, atol=1e-15)
    assert np.all(np.diff(values) <= 1e-12)


def test_a_scan_too_large_to_evaluate_is_refused_with_what_to_narrow(monkeypatch):
    from spx_core.strategies import scanner

    monkeypatch.setattr(scanner, "MAX_CANDIDATES", 100)
    result = _scan(params_for(ScanStructure.IRON_CONDOR, **BASE))
    assert result.table is None and result.n_considered > 100
    assert "more than one scan evaluates (100" in result.reason and "narrow the short delta range" in result.reason


def test_a_candidate_with_no_known_score_term_ranks_last_not_as_zero():
    from spx_core.strategies.scanner_params import ScoreWeights
    from spx_core.strategies.scanner_scores import score

    nan = float("nan")
    terms = {"ev": np.array([-1.0, nan, 2.0]), "ev_per_max_loss": np.array([nan, nan, nan]),
             "pop": np.array([0.5, nan, nan]), "credit_per_width": np.array([nan, nan, nan]),
             "edge_usd": np.array([nan, nan, nan]), "edge_volpts": np.array([nan, nan, nan])}
    weights = ScoreWeights(ev=1.0, ev_per_max_loss=0.0, pop=1.0, credit_per_width=0.0, edge_usd=0.0,
                           edge_volpts=0.0)
    total = score(terms, weights)
    np.testing.assert_allclose(total[[0, 2]], [-0.5, 2.0])
    assert np.isnan(total[1])
