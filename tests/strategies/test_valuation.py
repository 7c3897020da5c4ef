"""value_structure against legs computed independently from the snapshot columns and ChainIV arrays."""

import math
import subprocess
import sys

import numpy as np
import pytest

from spx_core.domain.contracts import ROOTS, OptionContract, Right, Root
from spx_core.domain.quotes import QuoteFlag
from spx_core.domain.snapshot import ChainSnapshot
from spx_core.strategies import Market, MarketError, margin_requirement, value_structure
from spx_core.strategies import builders as b
from spx_core.strategies.market import locate
from spx_core.surface.chain_iv import chain_iv
from tests.chains import black, make_chain, svi_w


@pytest.fixture(scope="module")
def spx():
    snap, truth = make_chain(n_expiries=4, seed=3)
    return snap, truth, chain_iv(snap)


def _spy_snapshot(spx_snap, truth) -> ChainSnapshot:
    """A SPY chain for one SPXW expiry: forward SPX/10, the SPX smile, $1 strikes (independent Black)."""
    te = truth[1]
    fwd = te.forward / 10.0
    strikes = np.arange(np.floor(fwd) - 40, np.floor(fwd) + 41, 1.0)
    vol = np.sqrt(svi_w(np.log(strikes / fwd), *te.svi) / te.t)
    cols = {k: [] for k in ("strike", "is_call", "bid", "ask")}
    for is_call in (True, False):
        price = black(fwd, strikes, te.t, vol, te.discount, is_call)
        cols["strike"] += list(strikes)
        cols["is_call"] += [is_call] * len(strikes)
        cols["bid"] += list(np.maximum(price - 0.02, 0.0))
        cols["ask"] += list(price + 0.02)
    n = len(cols["strike"])
    return ChainSnapshot.from_columns(underlying="SPY", time=spx_snap.time_ns,
                                      underlying_price=spx_snap.underlying_price / 10, root=["SPY"] * n,
                                      expiry=[te.expiry] * n, **{k: np.asarray(v) for k, v in cols.items()})


@pytest.fixture(scope="module")
def market(spx):
    snap, truth, civ = spx
    return Market.of(civ, chain_iv(_spy_snapshot(snap, truth)))


def _row(snap: ChainSnapshot, c: OptionContract) -> int:
    mask = ((snap.root == ROOTS.index(c.root)) & (snap.expiry == np.datetime64(c.expiry, "D"))
            & (snap.strike == c.strike) & (snap.is_call == c.is_call))
    rows = np.flatnonzero(mask)
    assert len(rows) == 1, c
    return int(rows[0])


def _structures(truth):
    near, exp, far = truth[0].expiry, truth[1].expiry, truth[2].expiry
    atm = 5100.0
    return [
        b.put_credit_vertical("SPXW", exp, atm - 100, 25), b.call_credit_vertical("SPXW", exp, atm + 100, 25),
        b.put_debit_vertical("SPXW", exp, atm, 50), b.call_debit_vertical("SPXW", exp, atm, 25),
        b.iron_condor("SPXW", exp, atm - 150, atm + 100, 25, 50), b.iron_butterfly("SPXW", exp, atm, 50),
        b.butterfly("SPXW", exp, atm, 25, "C"), b.broken_wing_butterfly("SPXW", exp, atm - 50, 25, 25, "P"),
        b.calendar("SPXW", near, exp, atm, "C"), b.diagonal("SPXW", exp, far, atm, atm + 50, "C"),
        b.straddle("SPXW", exp, atm), b.strangle("SPXW", exp, atm - 100, atm + 100, short=True),
        b.spx_spy_pair(exp, atm),
    ]


def _by_hand(structure, market):
    """Independent sums: boolean-mask lookups into the columns, ChainIV greeks, x ratio x multiplier."""
    out = {k: 0.0 for k in ("natural", "far", "mid", "delta", "gamma", "vega", "theta")}
    for leg in structure.legs:
        chain = market[leg.underlying]
        snap, civ = chain.snapshot, chain.civ
        i = _row(snap, leg.contract)
        bid, ask, r, m = snap.bid[i], snap.ask[i], leg.ratio, leg.contract.multiplier
        out["natural"] += -r * (ask if r > 0 else bid)
        out["far"] += -r * (bid if r > 0 else ask)
        out["mid"] += -r * 0.5 * (bid + ask)
        scale = 0.1 if leg.contract.root is Root.SPY else 1.0
        out["delta"] += r * m * civ.delta[i] * scale
        out["gamma"] += r * m * civ.gamma[i] * 0.5 * (0.01 * snap.underlying_price) ** 2
        out["vega"] += r * m * civ.vega[i]
        out["theta"] += r * m * civ.theta[i]
    return out


def test_prices_and_greeks_are_the_sums_of_the_legs(spx, market) -> None:
    for structure in _structures(spx[1]):
        v = value_structure(structure, market)
        hand = _by_hand(structure, market)
        assert v.reason == "", structure.name
        got = (v.natural, v.bid, v.ask, v.mid, v.delta_usd, v.gamma_usd_1pct, v.vega_usd_volpt, v.theta_usd_day)
        want = (hand["natural"], hand["natural"], hand["far"], hand["mid"], hand["delta"], hand["gamma"],
                hand["vega"], hand["theta"])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9, err_msg=structure.name)
        assert v.bid <= v.mid <= v.ask
        assert v.credit == (hand["mid"] > 0)


def test_spx_vs_ten_spy_calls_is_near_delta_neutral(market, spx) -> None:
    pair = b.spx_spy_pair(spx[1][1].expiry, 5100)
    v = value_structure(pair, market)
    spx_leg = value_structure(b.single(pair.legs[0].contract), market)
    assert abs(v.delta_usd) < 0.02 * abs(spx_leg.delta_usd)
    assert "SPY = SPX/10" in v.approximated


def test_credit_vertical_risk_figures_at_mid(market, spx) -> None:
    pcv = b.put_credit_vertical("SPXW", spx[1][1].expiry, 5000, 25)
    v = value_structure(pcv, market)
    credit_usd = v.mid * 100
    assert v.width == 25.0
    assert v.max_profit == pytest.approx(credit_usd)
    assert v.max_loss == pytest.approx(2500 - credit_usd)
    assert v.breakevens == pytest.approx((5000 - v.mid,))
    assert v.return_on_risk == pytest.approx(credit_usd / (2500 - credit_usd))
    assert v.margin == pytest.approx(v.max_loss)  # width x 100 less the credit
    assert v.max_loss_text == f"${2500 - credit_usd:,.2f}"


def test_natural_basis_uses_the_worse_side_of_each_leg(market, spx) -> None:
    pcv = b.put_credit_vertical("SPXW", spx[1][1].expiry, 5000, 25)
    v = value_structure(pcv, market, basis="natural")
    assert v.leg_price == (v.leg_bid[0], v.leg_ask[1])
    assert v.max_profit == pytest.approx(v.natural * 100)
    assert v.margin == pytest.approx(margin_requirement(pcv, v, 5100.0))


def test_unlimited_loss_is_said_as_such(market, spx) -> None:
    v = value_structure(b.strangle("SPXW", spx[1][1].expiry, 5000, 5200, short=True), market)
    assert v.max_loss == math.inf and v.max_loss_text == "unlimited"
    assert math.isnan(v.return_on_risk)
    assert len(v.breakevens) == 2
    long_call = value_structure(b.single(OptionContract(Root.SPXW, spx[1][1].expiry, 5200, Right.CALL)), market)
    assert long_call.max_profit == math.inf and long_call.max_profit_text == "unlimited"


def test_debit_calendar_max_loss_is_the_debit_and_the_rest_is_said_to_need_the_surface(market, spx) -> None:
    truth = spx[1]
    v = value_structure(b.calendar("SPXW", truth[0].expiry, truth[1].expiry, 5100, "C"), market)
    assert not v.credit
    assert v.max_loss == pytest.approx(-v.mid * 100)
    assert math.isnan(v.max_profit) and v.breakevens == ()
    assert "front expiry" in v.approximated


def _edited(snap: ChainSnapshot, **changes) -> ChainSnapshot:
    cols = {k: np.array(v) for k, v in snap.columns.items()}
    cols.update(changes)
    return ChainSnapshot.from_canonical(underlying=snap.underlying, time_ns=snap.time_ns,
                                        underlying_price=snap.underlying_price, columns=cols)


def test_a_flagged_leg_makes_prices_nan_with_the_leg_and_flag_named(spx) -> None:
    snap, truth, _ = spx
    pcv = b.put_credit_vertical("SPXW", truth[1].expiry, 5000, 25)
    flags = np.array(snap.flags)
    flags[_row(snap, pcv.legs[1].contract)] = int(QuoteFlag.WIDE | QuoteFlag.STALE)
    edited = _edited(snap, flags=flags)
    v = value_structure(pcv, Market.of(chain_iv(edited)))
    assert all(math.isnan(x) for x in (v.bid, v.ask, v.mid, v.natural, v.max_profit, v.max_loss, v.margin))
    assert "4975P" in v.reason and "wide, stale" in v.reason
    assert v.breakevens == ()
    allowed = value_structure(pcv, Market.of(chain_iv(edited)), allow_flags=QuoteFlag.WIDE | QuoteFlag.STALE)
    assert allowed.reason == "" and math.isfinite(allowed.natural)


def test_a_nan_bid_makes_prices_nan_with_the_reason(spx) -> None:
    snap, truth, _ = spx
    pcv = b.put_credit_vertical("SPXW", truth[1].expiry, 5000, 25)
    bid = np.array(snap.bid)
    bid[_row(snap, pcv.legs[0].contract)] = np.nan  # flags left clean: the NaN itself must be caught
    v = value_structure(pcv, Market.of(chain_iv(_edited(snap, bid=bid))))
    assert math.isnan(v.natural) and math.isnan(v.mid)
    assert "5000P" in v.reason and "no bid" in v.reason


def test_a_missing_leg_makes_prices_nan_and_is_named(market, spx) -> None:
    exp = spx[1][1].expiry
    v = value_structure(b.put_credit_vertical("SPXW", exp, 5000, 2.5), market)  # 4997.5 is not listed
    assert math.isnan(v.natural) and math.isnan(v.delta_usd)
    assert "4997.5P" in v.reason and "not listed" in v.reason


def test_a_leg_without_iv_has_nan_greeks_without_a_surface_and_surface_greeks_with_one(spx) -> None:
    from spx_core.surface.surface import fit_surface

    snap, truth, civ = spx
    call = OptionContract(Root.SPXW, truth[1].expiry, 5100, Right.CALL)
    i = _row(snap, call)
    bid, ask = np.array(snap.bid), np.array(snap.ask)
    bid[i] = ask[i] = np.nan
    edited = _edited(snap, bid=bid, ask=ask)
    edited_civ = chain_iv(edited)
    bare = value_structure(b.single(call), Market.of(edited_civ))
    assert math.isnan(bare.delta_usd) and "no mid IV" in bare.reason
    surface = fit_surface(civ)
    fitted = value_structure(b.single(call), Market.of(edited_civ, surfaces={"SPX": surface}))
    assert "greeks from the fitted surface" in fitted.reason
    assert fitted.delta_usd == pytest.approx(100 * civ.delta[i], rel=0.02)


def test_locate_matches_a_brute_force_search(spx) -> None:
    snap = spx[0]
    rng = np.random.default_rng(7)
    rows = rng.choice(len(snap), 200, replace=False)
    contracts = [snap.contract(int(i)) for i in rows]
    contracts += [OptionContract(Root.SPXW, c.expiry, c.strike + 0.5, c.right) for c in contracts[:20]]
    contracts += [OptionContract(Root.SPX, c.expiry, c.strike, c.right) for c in contracts[:20]]
    got = locate(snap, contracts)
    want = []
    for c in contracts:
        mask = ((snap.root == ROOTS.index(c.root)) & (snap.expiry == np.datetime64(c.expiry, "D"))
                & (snap.strike == c.strike) & (snap.is_call == c.is_call))
        hits = np.flatnonzero(mask)
        want.append(int(hits[0]) if len(hits) else -1)
    np.testing.assert_array_equal(got, want)
    assert (got[:200] == rows).all()


def test_a_structure_on_an_underlying_the_market_lacks_says_so(spx) -> None:
    pair = b.spx_spy_pair(spx[1][1].expiry, 5100)
    with pytest.raises(MarketError, match="no SPY chain in the market \\(have: SPX\\)"):
        value_structure(pair, Market.of(spx[2]))


def test_kinds_without_a_width_report_nan(market, spx) -> None:
    v = value_structure(b.straddle("SPXW", spx[1][1].expiry, 5100), market)
    assert math.isnan(v.width)
    assert math.isnan(value_structure(b.spx_spy_pair(spx[1][1].expiry, 5100), market).width)


def test_importing_structures_loads_no_scipy() -> None:
    code = "import sys, spx_core.strategies; print('scipy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_market_refuses_two_chains_of_one_underlying_and_orphan_surfaces(spx) -> None:
    civ = spx[2]
    with pytest.raises(ValueError, match="two SPX chains"):
        Market.of(civ, civ)
    with pytest.raises(ValueError, match=r"surfaces given for \['SPY'\] without a chain"):
        Market.of(civ, surfaces={"SPY": object()})
    assert Market.of(civ).checksums == {"SPX": spx[0].checksum}
