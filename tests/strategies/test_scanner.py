"""The spread scanner against its Python-loop reference, and what its candidates carry."""

from __future__ import annotations

import numpy as np
import pytest

from spx_core.strategies.scanner import (
    Fill,
    ScanError,
    ScanParams,
    ScanStructure,
    ScoreWeights,
    params_for,
    scan,
)
from spx_core.strategies.scanner_candidates import books_of
from spx_core.strategies.scanner_scores import MIN_RISK
from spx_core.strategies.scanner_surface import ServedSlices
from spx_core.strategies.structure import StructureKind
from tests.strategies.scanner_reference import realistic, reference_scan, synthetic

ALL = list(ScanStructure)


def _run(f, params):
    return scan(f.snap, f.civ, f.surface, params, densities=f.densities)


def _assert_matches_reference(f, params) -> int:
    result = _run(f, params)
    ref = reference_scan(f.snap, f.civ, f.surface, params, f.densities)
    table = result.table
    assert table is not None and len(ref) > 0, result.reason
    c = table.candidates
    got = {(int(b), tuple(int(x) for x in rows)): i for i, (b, rows) in enumerate(zip(c.book, c.rows, strict=True))}
    assert set(got) == {(x.book, x.rows) for x in ref}
    idx = np.array([got[(x.book, x.rows)] for x in ref])
    tol = {"credit_mid": 1e-12, "credit_natural": 1e-12, "max_loss": 1e-10, "pop": 1e-5, "edge_usd": 1e-7,
           "edge_volpts": 1e-9}
    for name, atol in tol.items():
        want = np.array([getattr(x, name) for x in ref])
        np.testing.assert_allclose(getattr(table, name)[idx], want, rtol=0, atol=atol, err_msg=name)
    # EV: the scan's exact C_fit/D identity vs the density's own quadrature, which is exact up to the density's
    # normalization defect (the 1-DTE slice of this chain integrates to 1 - 1.7e-4 while its CDF spans 0..1):
    # allowed as slack, nothing more; every other slice integrates to 1 within 1e-9, so there it is exact.
    slack = np.array([x.ev_slack for x in ref])
    assert np.all(np.abs(table.ev[idx] - [x.ev for x in ref]) <= 1e-8 + slack)
    assert np.mean(slack < 1e-9) > 0.5
    risk = np.maximum([x.max_loss for x in ref], MIN_RISK)
    w = params.weights
    score_tol = 1e-7 + w.pop * 1e-5 + w.ev * slack + w.ev_per_max_loss * slack / risk
    assert np.all(np.abs(table.score[idx] - [x.score for x in ref]) <= score_tol)
    np.testing.assert_array_equal(c.width[idx], [x.width for x in ref])
    if len(c.ratios) == 2:  # verticals and calendars: natural = short bid - long ask, bit for bit
        np.testing.assert_array_equal(table.credit_natural[idx], [x.credit_natural for x in ref])
    assert np.all(np.diff(table.score) <= 0), "best score first"
    assert result.n_passed == len(ref)
    return len(ref)


@pytest.mark.parametrize("structure", ALL, ids=[s.value for s in ALL])
def test_vectorized_scan_equals_the_python_loop_on_a_realistic_chain(structure):
    delta = (0.15, 0.25) if structure is ScanStructure.IRON_CONDOR else (0.15, 0.35)
    params = params_for(structure, short_delta=delta, widths=(10.0, 25.0), dte=(0, 40), skips=(10.0,),
                        allow_flagged=True, weights=ScoreWeights(ev=0.1, ev_per_max_loss=1.0, pop=0.3,
                                                                 credit_per_width=0.2, edge_usd=0.001,
                                                                 edge_volpts=0.02))
    assert _assert_matches_reference(realistic(), params) >= 5


@pytest.mark.parametrize("structure", [ScanStructure.PUT_CREDIT_VERTICAL, ScanStructure.IRON_CONDOR,
                                       ScanStructure.BWB, ScanStructure.CALENDAR], ids=lambda s: s.value)
def test_with_every_filter_and_natural_fill_the_scan_still_equals_the_loop(structure):
    params = params_for(structure, short_delta=(0.10, 0.40), widths=(10.0, 25.0), dte=(0, 40), skips=(10.0,),
                        min_open_interest=1, max_leg_spread=1.5, max_package_spread=4.0, min_pop=0.2,
                        min_credit_per_width=-0.9 if structure is not ScanStructure.CALENDAR else None,
                        fill=Fill.NATURAL)
    _assert_matches_reference(realistic(), params)


def test_target_delta_takes_the_one_nearest_short_strike_per_expiry_and_the_listed_wing():
    f = realistic()
    result = _run(f, ScanParams(ScanStructure.PUT_CREDIT_VERTICAL, short_delta=0.20, widths=(25.0,), dte=(0, 500),
                                top=100))
    assert result.n_expiries == 8 and len(result.candidates) == result.n_considered >= 7  # one lacks a 25-wide wing
    for cand in result.candidates:
        short, long_ = cand.structure.legs
        assert short.ratio == -1 and long_.ratio == 1 and short.contract.strike - long_.contract.strike == 25.0
        rows = [i for i in range(len(f.snap)) if f.snap.contract(i).expiry == cand.expiry
                and not f.snap.columns["is_call"][i] and np.isfinite(f.civ.delta[i])]
        nearest = min(rows, key=lambda i: abs(abs(f.civ.delta[i]) - 0.20))
        assert short.contract.strike == f.snap.columns["strike"][nearest]


def test_candidates_carry_real_structures_and_consistent_figures():
    result = _run(synthetic(), params_for(ScanStructure.IRON_CONDOR, dte=(0, 90), widths=(25.0, 50.0), top=3))
    assert len(result.candidates) == 3 and result.n_passed >= 3
    for cand in result.candidates:
        s = cand.structure
        assert s.kind is StructureKind.IRON_CONDOR and list(s.ratios) == [1, -1, -1, 1]
        assert s.name.startswith("SPXW ") and s.name.endswith(f"iron condor ({cand.width:g} wide)")
        # max loss at mid = wider wing - credit; the structure's own expiry value agrees (dollars per unit)
        assert cand.max_loss == pytest.approx(cand.width - cand.credit_mid, abs=1e-12)
        worst = s.expiry_value(np.linspace(0.0, 2 * max(s.kinks()), 20001)).min() / 100.0
        assert -(worst + cand.credit_mid) == pytest.approx(cand.max_loss, abs=1e-9)
        assert 0.0 < cand.pop < 1.0 and cand.credit_per_width == pytest.approx(cand.credit_mid / cand.width)


def test_candidate_json_has_the_documented_keys_and_signs():
    result = _run(synthetic(), params_for(ScanStructure.PUT_CREDIT_VERTICAL, dte=(0, 90), top=2))
    payload = result.to_json(7)
    assert payload["snapshot"] == 7 and payload["checksum"] == synthetic().snap.checksum
    cand = payload["candidates"][0]
    assert {"structure", "expiry", "legs", "credit_mid", "credit_natural", "width", "max_loss", "pop", "ev",
            "edge_volpts", "score"} <= set(cand)
    assert cand["structure"] == "put-credit-vertical" and cand["credit_mid"] > 0
    assert [leg["ratio"] for leg in cand["legs"]] == [-1, 1]
    assert set(cand["legs"][0]) == {"root", "expiry", "strike", "right", "ratio"} and cand["legs"][0]["right"] == "P"


def test_selling_a_strike_rich_to_the_fit_scores_a_positive_edge():
    from tests.chains import make_chain
    from tests.strategies.scanner_reference import fit_all

    snap, _ = make_chain(n_expiries=2, noise=0.0, seed=4)
    params = ScanParams(ScanStructure.PUT_CREDIT_VERTICAL, short_delta=(0.05, 0.45), widths=(10.0,), dte=(0, 60))
    base = fit_all(snap)
    first = _run(base, params).candidates
    target = first[len(first) // 2].structure.legs[0].contract  # some short put in the middle of the range
    c = snap.columns
    row = int(np.flatnonzero((c["strike"] == target.strike) & ~c["is_call"]
                             & (c["expiry"] == np.datetime64(target.expiry)))[0])
    bump = np.zeros(len(snap))
    bump[row] = 0.6  # the market pays 0.60 more for this one put than the smile around it
    rich = fit_all(snap.replace_quotes(time=snap.time_ns, underlying_price=snap.underlying_price,
                                       bid=c["bid"] + bump, ask=c["ask"] + bump))
    table = _run(rich, params).table
    rows = table.candidates.rows
    sells = np.flatnonzero(rows[:, 0] == row)
    buys = np.flatnonzero(rows[:, 1] == row)
    assert len(sells) == 1 and len(buys) == 1
    assert table.edge_volpts[sells[0]] > 0.5 and table.edge_usd[sells[0]] > 30.0  # most of the 0.60 bump
    assert table.edge_volpts[buys[0]] < -0.5 and table.edge_usd[buys[0]] < -30.0
    assert sells[0] < len(table) // 4, "selling the rich strike ranks near the top"


def test_a_flat_smile_gives_the_lognormal_pop():
    from scipy.special import ndtr

    from tests.chains import make_chain
    from tests.strategies.scanner_reference import fit_all

    vol = 0.18
    snap, truth = make_chain(n_expiries=3, seed=1, svi_for=lambda t: (vol * vol * t, 0.0, 0.0, 0.0, 0.1))
    f = fit_all(snap)
    result = _run(f, ScanParams(ScanStructure.PUT_CREDIT_VERTICAL, short_delta=0.25, widths=(25.0,), dte=(0, 400)))
    fwd = {x.expiry: x for x in truth}
    for cand in result.candidates:
        x = fwd[cand.expiry]
        breakeven = cand.structure.legs[0].contract.strike - cand.credit_mid
        sd = vol * np.sqrt(x.t)
        lognormal_pop = ndtr(np.log(x.forward / breakeven) / sd - 0.5 * sd)  # P(S_T > breakeven)
        assert cand.pop == pytest.approx(lognormal_pop, abs=3e-3)


def test_inputs_of_another_snapshot_are_refused():
    a, b = realistic(), synthetic()
    with pytest.raises(ScanError, match="ChainIV"):
        scan(a.snap, b.civ, a.surface, ScanParams())
    with pytest.raises(ScanError, match="surface"):
        scan(a.snap, a.civ, b.surface, ScanParams())


def test_calendars_compute_the_near_densities_they_need_and_verticals_need_none():
    f = synthetic()
    params = params_for(ScanStructure.CALENDAR, dte=(0, 60))
    given = _run(f, params)
    computed = scan(f.snap, f.civ, f.surface, params)
    np.testing.assert_array_equal(computed.table.pop, given.table.pop)
    assert set(computed.densities) == {(c.structure.legs[0].contract.root, c.expiry) for c in computed.candidates}
    assert scan(f.snap, f.civ, f.surface, params_for(ScanStructure.CALL_CREDIT_VERTICAL, dte=(0, 90))).densities == {}


def test_batched_fitted_iv_and_cdf_equal_the_fit_and_the_density_per_expiry():
    f = realistic()
    books = books_of(f.snap)
    slices = ServedSlices(f.surface, [f.surface.by_expiry(b.root, b.expiry) for b in books])
    for book in books:
        fit = f.surface.by_expiry(book.root, book.expiry)
        density = f.densities[(book.root, book.expiry)]
        k = np.linspace(-0.3, 0.2, 41)
        group = np.full(len(k), book.index)
        np.testing.assert_allclose(slices.iv(group, k), fit.iv(k), rtol=1e-13)
        x = fit.forward * np.exp(k)
        np.testing.assert_allclose(slices.prob_below(group, x), density.prob_below(x), rtol=0, atol=1e-14)
    assert slices.prob_below(np.array([0, 0, 0]), np.array([0.0, np.inf, np.nan]))[:2].tolist() == [0.0, 1.0]
