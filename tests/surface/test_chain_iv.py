"""chain_iv: per-row forwards, bid/ask/mid IVs and greeks, against an independent Black-76."""

from __future__ import annotations

import numpy as np
import pytest

from spx_core.pricing.iv import IVReason
from spx_core.surface import chain_iv
from tests.chains import black, make_chain, svi_w


@pytest.fixture(scope="module")
def exact():
    return make_chain(n_expiries=5, noise=0.0, half_spread_vol=0.0005, seed=5)


def test_rows_align_with_snapshot_and_mid_iv_recovers_the_smile(exact):
    snap, truth = exact
    civ = chain_iv(snap)
    for name in ("t", "forward", "discount", "k", "iv_bid", "iv_ask", "iv_mid", "reason", "delta", "gamma",
                 "vega", "theta"):
        assert getattr(civ, name).shape == (len(snap),), name
    c = snap.columns
    for f, x in zip(civ.forwards, truth, strict=True):
        rows = slice(f.start, f.stop)
        k_true = np.log(c["strike"][rows] / x.forward)
        true_vol = np.sqrt(svi_w(k_true, *x.svi) / x.t)
        mid_price = black(x.forward, c["strike"][rows], x.t, true_vol, x.discount, c["is_call"][rows])
        # The quotes' mid is the model price only where the bid was not floored at 0.
        clean = (c["bid"][rows] > 0) & np.isfinite(civ.iv_mid[rows])
        assert np.allclose(0.5 * (c["bid"][rows] + c["ask"][rows])[clean], mid_price[clean], atol=1e-9)
        otm = clean & (c["is_call"][rows] == (k_true >= 0)) & (civ.vega[rows] > 0.05)
        assert np.abs(civ.iv_mid[rows][otm] - true_vol[otm]).max() < 2e-6
        both = clean & np.isfinite(civ.iv_bid[rows])
        assert both.sum() > 10
        assert np.all(civ.iv_bid[rows][both] <= civ.iv_ask[rows][both])


def test_greeks_are_in_display_units(exact):
    snap, _ = exact
    civ = chain_iv(snap)
    c = snap.columns
    i = int(np.nanargmax(civ.vega))  # an at-the-money row
    f, k, t, d, vol, call = civ.forward[i], c["strike"][i], civ.t[i], civ.discount[i], civ.iv_mid[i], c["is_call"][i]
    h = 1e-4
    vega_fd = (black(f, k, t, vol + h, d, call) - black(f, k, t, vol - h, d, call)) / (2 * h) / 100.0
    assert civ.vega[i] == pytest.approx(vega_fd, rel=1e-6)
    dt = 1e-6
    r = -np.log(d) / t
    later = black(f, k, t - dt, vol, np.exp(-r * (t - dt)), call)
    theta_fd = (later - black(f, k, t, vol, d, call)) / dt / 365.0  # F and r fixed, per calendar day
    assert civ.theta[i] == pytest.approx(theta_fd, rel=1e-4)
    assert 0.3 < abs(civ.delta[i]) < 0.7


def test_unsolvable_quotes_are_nan_with_a_reason(exact):
    snap, _ = exact
    civ = chain_iv(snap)
    zero_bid = snap.columns["bid"] == 0
    assert zero_bid.any()
    assert np.all(np.isnan(civ.iv_bid[zero_bid]))
    assert np.all(civ.reason_bid[zero_bid] != IVReason.OK)
    assert np.all((civ.reason == IVReason.OK) == np.isfinite(civ.iv_mid))


# --- one expiry at a time (what the chain shows) ------------------------------------------------

from datetime import date, datetime  # noqa: E402

from spx_core.domain import ET, ChainSnapshot, Root  # noqa: E402
from spx_core.surface import fit_surface  # noqa: E402
from spx_core.surface.chain_iv import ExpiryNotListedError, expiry_chain_iv, expiry_subsnapshot  # noqa: E402
from spx_core.surface.served import IVSource, ServeConfig, Substitution, serve_expiry  # noqa: E402

CLOSE_DAY = date(2024, 3, 13)  # a Wednesday
NEAR_CLOSE = datetime(2024, 3, 13, 15, 45, tzinfo=ET)


def zero_dte_chain(now: datetime = NEAR_CLOSE, vol: float = 0.14) -> ChainSnapshot:
    """A 0DTE SPXW chain 15 minutes before the close plus two later expiries, quoted like SPX near the close.

    Prices from this file's independent Black-76 at a flat ``vol``; bid/ask rounded outward to the
    0.05 tick with a 0.05 floor on the half-spread, so far OTM options are bid 0 / offered 0.05 and
    deep ITM ones are bid below intrinsic: the quotes that solve to 100-400% vol or not at all.
    """
    spot, rate = 5150.0, 0.05
    cols: dict[str, list] = {k: [] for k in ("root", "expiry", "strike", "is_call", "bid", "ask")}
    for exp, half_floor in ((CLOSE_DAY, 0.05), (date(2024, 3, 15), 0.05), (date(2024, 4, 12), 0.1)):
        close = datetime(exp.year, exp.month, exp.day, 16, 0, tzinfo=ET)
        t = (close - now).total_seconds() / (365 * 86400)
        if t <= 0:
            continue
        fwd, df = spot * np.exp(rate * t), np.exp(-rate * t)
        strikes = np.arange(5000.0, 5305.0, 5.0)
        for is_call in (True, False):
            fair = black(fwd, strikes, t, vol, df, is_call)
            half = np.maximum(0.004 * fair, half_floor)
            bid = np.maximum(np.floor((fair - half) / 0.05 + 1e-9) * 0.05, 0.0)
            ask = np.maximum(np.ceil((fair + half) / 0.05 - 1e-9) * 0.05, 0.05)
            cols["root"] += ["SPXW"] * len(strikes)
            cols["expiry"] += [exp] * len(strikes)
            cols["strike"] += list(strikes)
            cols["is_call"] += [is_call] * len(strikes)
            cols["bid"] += list(bid)
            cols["ask"] += list(ask)
    return ChainSnapshot.from_columns(underlying="SPX", time=now, underlying_price=spot,
                                      **{k: np.asarray(v) for k, v in cols.items()})


@pytest.mark.parametrize("source", ["synthetic", "zero_dte"])
def test_one_expiry_uses_the_surfaces_forward_and_discount_bit_for_bit(source, exact):
    snap = exact[0] if source == "synthetic" else zero_dte_chain()
    surface = fit_surface(snap)
    for sl in snap.expiries():
        one = expiry_chain_iv(snap, sl.root, sl.expiry)
        fit = surface.by_expiry(sl.root, sl.expiry)
        assert one.forwards[0].forward == fit.forward and one.forwards[0].discount == fit.discount
        assert np.all(one.discount == fit.discount) and np.all(one.forward == fit.forward)
        assert len(one.snapshot) == sl.stop - sl.start
        whole = chain_iv(snap)
        assert np.array_equal(one.iv_mid, whole.iv_mid[sl.rows], equal_nan=True)
        assert np.array_equal(one.t, whole.t[sl.rows])
    if source == "zero_dte":  # the way the chain used to do it: the 0DTE DF from its own rows alone is 1.0
        first = snap.expiries()[0]
        alone = chain_iv(expiry_subsnapshot(snap, first)).forwards[0].discount
        assert alone == 1.0 != surface.by_expiry(first.root, first.expiry).discount


def test_one_expiry_not_listed_is_a_named_error(exact):
    with pytest.raises(ExpiryNotListedError, match="not listed"):
        expiry_chain_iv(exact[0], Root.SPX, date(2099, 1, 1))


@pytest.fixture(scope="module")
def near_close():
    snap = zero_dte_chain()
    first = snap.expiries()[0]
    return snap, serve_expiry(snap, first.root, first.expiry)


def test_near_close_quotes_that_pin_no_time_value_get_the_surface_or_otm_iv(near_close):
    snap, served = near_close
    civ = served.civ
    c = served.snapshot.columns
    assert served.civ.t[0] * 365 * 24 * 60 == pytest.approx(15.0)
    zero_bid = c["bid"] == 0
    assert zero_bid.sum() > 20 and np.all(served.why[zero_bid] == Substitution.ZERO_BID)
    # the defect: the solver's mid IVs of these quotes are solver artefacts (hundreds of percent)
    assert np.nanmax(civ.iv_mid[zero_bid]) > 1.0
    assert np.all(served.source[zero_bid] != IVSource.QUOTE)
    served_ok = np.isfinite(served.iv)
    assert served_ok.all()
    assert served.iv.max() < 0.3  # the smile is flat at 14%; no artefact survives
    # deep in the money: no IV of its own, delta from the served IV, near +-1
    deep_call = c["is_call"] & (c["strike"] < civ.forward - 40)
    deep_put = ~c["is_call"] & (c["strike"] > civ.forward + 40)
    assert np.all(served.why[deep_call | deep_put] != Substitution.NONE)
    assert np.all(served.delta[deep_call] > 0.99) and np.all(served.delta[deep_put] < -0.99)
    # theta per day of options worth at most a tick is a few points, not hundreds
    cheap = c["ask"] <= 0.05
    assert np.all(np.abs(served.theta[cheap]) < 20.0)


def test_itm_quote_takes_the_otm_iv_and_the_rest_the_fitted_slice(near_close):
    snap, _ = near_close
    # the 5145 call (ITM by 5) bid below intrinsic: its IV band has no lower end; the 5145 put is clean
    bid, ask = snap.columns["bid"].copy(), snap.columns["ask"].copy()
    i_call = int(np.flatnonzero((snap.columns["strike"] == 5145.0) & snap.columns["is_call"])[0])
    bid[i_call], ask[i_call] = 4.9, 5.5
    snap = snap.replace_quotes(time=snap.time_ns, underlying_price=snap.underlying_price, bid=bid, ask=ask)
    first = snap.expiries()[0]
    served = serve_expiry(snap, first.root, first.expiry)
    civ, c = served.civ, served.snapshot.columns
    otm = np.flatnonzero(served.source == IVSource.OTM_SIDE)
    assert otm.tolist() == [i_call] and served.why[i_call] == Substitution.BID_AT_INTRINSIC
    for i in otm:
        j = i + 1 if c["is_call"][i] else i - 1  # call then put at each strike
        assert c["strike"][j] == c["strike"][i] and served.source[j] == IVSource.QUOTE
        assert served.iv[i] == civ.iv_mid[j]
    surf = served.source == IVSource.SURFACE
    assert surf.any() and served.fit is not None
    assert np.allclose(served.iv[surf], served.fit.iv(civ.k[surf]), rtol=0, atol=0)
    own = served.source == IVSource.QUOTE
    assert np.array_equal(served.iv[own], civ.iv_mid[own]) and np.array_equal(served.delta[own], civ.delta[own])
    # greeks at the served IV, against the independent Black-76
    i = int(np.flatnonzero(surf)[np.argmax(served.vega[surf])])
    f, k, t, d, v, call = civ.forward[i], c["strike"][i], civ.t[i], civ.discount[i], served.iv[i], c["is_call"][i]
    h = 1e-3
    delta_fd = (black(f + h, k, t, v, d, call) - black(f - h, k, t, v, d, call)) / (2 * h)
    assert 1e-3 < abs(served.delta[i]) < 0.999 and served.delta[i] == pytest.approx(delta_fd, abs=1e-6)


def test_theta_to_the_close_is_the_value_change_to_1600(near_close):
    snap, served = near_close
    civ, c = served.civ, served.snapshot.columns
    assert served.close_years * 365 * 24 * 60 == pytest.approx(15.0)
    now_value = black(civ.forward, c["strike"], civ.t, served.iv, civ.discount, c["is_call"])
    intrinsic = np.maximum(np.where(c["is_call"], 1, -1) * (civ.forward - c["strike"]), 0.0)
    assert np.allclose(served.theta_close, intrinsic - now_value, atol=1e-9)  # 0DTE PM: worth intrinsic at 16:00
    later = snap.expiries()[2]
    s2 = serve_expiry(snap, later.root, later.expiry)
    c2, t2 = s2.snapshot.columns, s2.civ.t
    dt = s2.close_years
    expect = (black(s2.civ.forward, c2["strike"], t2 - dt, s2.iv, s2.civ.discount ** ((t2 - dt) / t2), c2["is_call"])
              - black(s2.civ.forward, c2["strike"], t2, s2.iv, s2.civ.discount, c2["is_call"]))
    assert np.allclose(s2.theta_close, expect, atol=1e-9)
    after_hours = zero_dte_chain(datetime(2024, 3, 13, 16, 30, tzinfo=ET))
    gone = serve_expiry(after_hours, later.root, later.expiry)
    assert np.isnan(gone.close_years) and np.all(np.isnan(gone.theta_close))


def test_slice_fit_is_reused_within_refit_seconds_then_refitted(near_close):
    snap, served = near_close
    first = snap.expiries()[0]
    cfg = ServeConfig(refit_seconds=2.0)
    again = serve_expiry(snap, first.root, first.expiry, previous=served, config=cfg)
    assert again.surface is served.surface
    later = snap.replace_quotes(time=snap.time_ns + 3_000_000_000, underlying_price=snap.underlying_price,
                                bid=snap.columns["bid"], ask=snap.columns["ask"])
    refit = serve_expiry(later, first.root, first.expiry, previous=served, config=cfg)
    assert refit.surface is not served.surface and refit.fit_time_ns == later.time_ns


@pytest.mark.parametrize("shuffled", [False, True])
def test_group_median_matches_a_per_group_sort(shuffled):
    """The parity fit's robust scale (now one padded sort, since the chain implies every expiry's forward
    on each tick): per group the middle of the sorted values (NaN sorts last), 0 for an empty group."""
    from spx_core.surface.forwards import _group_median

    rng = np.random.default_rng(3)
    g = np.sort(rng.integers(0, 40, 3000))
    g = g[g != 7]  # an empty group
    v = np.abs(rng.standard_normal(len(g)))
    v[np.flatnonzero(g == 11)[0]] = np.nan  # a group holding a NaN
    if shuffled:
        order = rng.permutation(len(g))
        g, v = g[order], v[order]
    out = _group_median(g, v, 41)
    for e in range(41):
        s = np.sort(v[g == e])
        expect = 0.5 * (s[(len(s) - 1) // 2] + s[len(s) // 2]) if len(s) else 0.0
        assert out[e] == expect, e


def test_real_0dte_at_1545_serves_no_solver_artefacts(shared_data, tmp_path):
    """SPXW 2019-06-26 15:45 ET, the same-day expiry: the solver gives 100%+ IVs to 0 / 0.05 quotes and
    no IV (delta "-") to deep ITM ones; the served IVs are the fitted smile's, deltas near +-1."""
    from tests.surface.realdata import load_datashop

    snap = load_datashop(shared_data / "cboe_datashop" / "spxw20190626.csv", tmp_path)
    sl = snap.expiries()[0]
    served = serve_expiry(snap, sl.root, sl.expiry)
    civ, c = served.civ, served.snapshot.columns
    assert served.close_years * 365 * 24 * 60 == pytest.approx(15.0)
    assert np.nanmax(civ.iv_mid) > 1.0 and np.isnan(civ.delta).sum() > 10  # the defect, in the solver's output
    assert np.isfinite(served.iv).all() and served.iv.max() < 0.5
    deep_call = c["is_call"] & (c["strike"] < civ.forward - 25)
    deep_put = ~c["is_call"] & (c["strike"] > civ.forward + 25)
    assert served.delta[deep_call].min() > 0.99 and served.delta[deep_put].max() < -0.99
    cheap = c["ask"] <= 0.05
    assert cheap.sum() > 50 and np.abs(served.theta[cheap]).max() < 15.0  # points per day on a 0.05 option
    assert np.all(served.source[c["bid"] == 0] != IVSource.QUOTE)
