"""Heston pricer and calibration against QuantLib's AnalyticHestonEngine, finite differences and real data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import QuantLib as ql

from spx_core.pricing import heston, heston_calibration

S, R, Q = 100.0, 0.03, 0.01
PARAMS = {  # v0, kappa, theta, sigma, rho
    "feller_ok": (0.04, 3.0, 0.05, 0.3, -0.6),
    "feller_violated": (0.04, 1.5, 0.06, 0.5, -0.7),
    "spx_like_extreme": (0.01, 0.5, 0.09, 1.5, -0.9),
    "positive_rho": (0.09, 3.0, 0.04, 0.3, 0.2),
}


def ql_heston(days: int, strikes: np.ndarray, is_call: bool, p) -> np.ndarray:
    """QuantLib AnalyticHestonEngine, Andersen-Piterbarg form with adaptive Gauss-Lobatto at ~1e-13."""
    today = ql.Date(3, 1, 2022)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    curve = lambda rate: ql.YieldTermStructureHandle(ql.FlatForward(today, rate, dc))  # noqa: E731
    model = ql.HestonModel(ql.HestonProcess(curve(R), curve(Q), ql.QuoteHandle(ql.SimpleQuote(S)), *p))
    out = []
    for k in strikes:
        opt = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call if is_call else ql.Option.Put, float(k)),
                               ql.EuropeanExercise(today + days))
        for tol in (1e-13, 1e-12, 1e-11):  # the adaptive integrator sometimes gives up at the tightest
            opt.setPricingEngine(ql.AnalyticHestonEngine(model, ql.AnalyticHestonEngine.AndersenPiterbarg,
                                                         ql.FourierIntegration.gaussLobatto(tol, 1e-15, 10_000_000),
                                                         1e-14))
            try:
                out.append(opt.NPV())
                break
            except RuntimeError:
                continue
    return np.array(out)


@pytest.mark.parametrize("name", PARAMS)
@pytest.mark.parametrize("days", [1, 7, 30, 182, 730])
def test_matches_quantlib_to_1e8_over_strikes(name, days):
    p = PARAMS[name]
    t = days / 365.0
    strikes = S * np.exp(np.linspace(-1.0, 0.6, 11) * np.sqrt(max(t, 0.05)))
    f, d = S * np.exp((R - Q) * t), np.exp(-R * t)
    for is_call in (True, False):
        got = heston.price(forward=f, strike=strikes, t=t, discount=d, is_call=is_call,
                           params=heston.HestonParams(*p))
        np.testing.assert_allclose(got, ql_heston(days, strikes, is_call, p), rtol=0, atol=1e-8)


def test_one_call_over_many_expiries_equals_per_expiry_calls_and_bsm_wrapper():
    p = heston.HestonParams(*PARAMS["feller_violated"])
    t = np.array([[1 / 365], [0.1], [2.0]])
    k = np.array([80.0, 100.0, 125.0])
    together = heston.price_bsm(spot=S, strike=k, t=t, rate=R, div_yield=Q, is_call=True, params=p)
    assert together.shape == (3, 3)
    for i in range(3):
        alone = heston.price(forward=S * np.exp((R - Q) * t[i]), strike=k, t=t[i], discount=np.exp(-R * t[i]),
                             is_call=True, params=p)
        np.testing.assert_allclose(together[i], alone, rtol=1e-12, atol=1e-13)


def test_put_call_parity_expired_and_invalid_market_inputs():
    p = heston.HestonParams(*PARAMS["feller_ok"])
    k = np.linspace(60, 160, 21)
    kw = dict(forward=101.0, strike=k, t=0.4, discount=0.98, params=p)
    np.testing.assert_allclose(heston.price(is_call=True, **kw) - heston.price(is_call=False, **kw),
                               0.98 * (101.0 - k), rtol=0, atol=1e-12)
    got = heston.price(forward=100.0, strike=np.array([90.0, 110.0, -5.0]), t=np.array([0.0, 0.0, 1.0]),
                       discount=0.99, is_call=False, params=p)
    np.testing.assert_allclose(got[:2], [0.0, 0.99 * 10.0])
    assert np.isnan(got[2])


@pytest.mark.parametrize("field,value,word", [("v0", -0.01, "negative variance"), ("kappa", 0.0, "kappa"),
                                              ("theta", -1.0, "theta"), ("sigma", 0.0, "black76"),
                                              ("rho", 1.0, "rho")])
def test_invalid_params_raise_named_error_saying_how_to_fix(field, value, word):
    values = dict(zip(("v0", "kappa", "theta", "sigma", "rho"), PARAMS["feller_ok"], strict=True)) | {field: value}
    with pytest.raises(heston.InvalidHestonParamsError, match=word):
        heston.HestonParams(**values)


def test_analytic_gradient_matches_central_differences():
    p = heston.HestonParams(*PARAMS["feller_violated"])
    t = np.repeat([7 / 365, 0.25, 1.5], 9)
    k = 100.0 * np.exp(np.tile(np.linspace(-0.4, 0.3, 9), 3))
    kw = dict(forward=100.0, strike=k, t=t, discount=0.99, is_call=k > 100.0)
    _, grad = heston_calibration.price_and_gradient(params=p, **kw)
    z = p.as_array()
    for i in range(5):
        dz = np.zeros(5)
        dz[i] = 1e-5 * max(abs(z[i]), 0.01)
        up = heston.price(params=heston.HestonParams(*(z + dz)), **kw)
        dn = heston.price(params=heston.HestonParams(*(z - dz)), **kw)
        np.testing.assert_allclose(grad[:, i], (up - dn) / (2 * dz[i]), rtol=1e-5, atol=1e-7)


def test_calibration_recovers_parameters_from_a_quantlib_chain():
    true = PARAMS["feller_violated"]
    days = np.array([14, 45, 91, 182, 365])
    strikes = S * np.exp(np.linspace(-0.35, 0.25, 9))
    prices, ks, ts, calls = [], [], [], []
    for dd in days:
        call = strikes > S
        ref = np.where(call, ql_heston(int(dd), strikes, True, true), ql_heston(int(dd), strikes, False, true))
        prices.append(ref)
        ks.append(strikes)
        ts.append(np.full(strikes.shape, dd / 365.0))
        calls.append(call)
    t = np.concatenate(ts)
    fit = heston_calibration.calibrate(forward=S * np.exp((R - Q) * t), strike=np.concatenate(ks), t=t,
                                       discount=np.exp(-R * t), is_call=np.concatenate(calls),
                                       market_price=np.concatenate(prices),
                                       initial=heston.HestonParams(0.02, 0.8, 0.03, 1.0, -0.3))
    assert fit.success and fit.n_used == t.size
    np.testing.assert_allclose(fit.params.as_array(), true, rtol=1e-4, atol=1e-5)
    assert fit.rmse_vol_pts < 1e-5


def spxw_chain(path) -> dict[str, np.ndarray]:
    """OTM two-sided mids of the 2019-06-26 15:45 SPXW chain, forward and discount per expiry from parity."""
    df = pd.read_csv(path, encoding="utf-8-sig")
    df["mid"] = 0.5 * (df["bid_1545"] + df["ask_1545"])
    spot = 0.5 * (df["underlying_bid_1545"].iloc[0] + df["underlying_ask_1545"].iloc[0])
    out = {k: [] for k in ("forward", "strike", "t", "discount", "is_call", "price")}
    for expiry, g in df.groupby("expiration"):
        days = (pd.Timestamp(expiry) - pd.Timestamp("2019-06-26")).days
        if not 7 <= days <= 200:  # liquid SPXW maturities with a meaningful smile
            continue
        t = (days + 0.25 / 24.0) / 365.0  # 15:45 ET to the 16:00 ET settlement
        wide = g.pivot_table(index="strike", columns="option_type", values=["mid", "bid_1545"])
        two_sided = wide[(wide["bid_1545"]["C"] > 0) & (wide["bid_1545"]["P"] > 0)]
        near = two_sided[np.abs(two_sided.index - spot) < 0.03 * spot]
        # C - P = D (F - K): a straight line in K gives the discount (minus slope) and the forward.
        slope, icpt = np.polyfit(near.index.to_numpy(float), (near["mid"]["C"] - near["mid"]["P"]).to_numpy(), 1)
        disc, fwd = -slope, -icpt / slope
        q = g[(g["bid_1545"] > 0) & (((g["option_type"] == "C") & (g["strike"] > fwd))
                                      | ((g["option_type"] == "P") & (g["strike"] <= fwd)))]
        sd = 0.2 * np.sqrt(t)
        q = q[np.abs(np.log(q["strike"] / fwd)) < 2.5 * sd]  # liquid strikes: within ~2.5 sd of the money
        for key, val in (("forward", fwd), ("t", t), ("discount", disc)):
            out[key].append(np.full(len(q), val))
        out["strike"].append(q["strike"].to_numpy(float))
        out["is_call"].append((q["option_type"] == "C").to_numpy())
        out["price"].append(q["mid"].to_numpy(float))
    return {k: np.concatenate(v) for k, v in out.items()}


@pytest.mark.shared_data
def test_calibrates_to_real_spxw_chain_within_two_vol_points(shared_data):
    chain = spxw_chain(shared_data / "cboe_datashop" / "spxw20190626.csv")
    fit = heston_calibration.calibrate(forward=chain["forward"], strike=chain["strike"], t=chain["t"],
                                       discount=chain["discount"], is_call=chain["is_call"],
                                       market_price=chain["price"])
    print(f"SPXW 2019-06-26: {fit.n_used} quotes, {np.unique(chain['t']).size} expiries, {fit}")
    assert fit.n_used > 500
    assert fit.rmse_vol_pts < 2.0
