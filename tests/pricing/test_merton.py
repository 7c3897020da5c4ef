"""Merton jump diffusion against QuantLib's BatesEngine (vol-of-vol -> 0) and a 50-digit mpmath series."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
import QuantLib as ql

from spx_core.pricing import black76, merton

S, R, Q = 100.0, 0.03, 0.01
CASES = [  # vol, jumps per year, mean log jump, log jump std
    (0.15, 0.5, -0.10, 0.15),
    (0.20, 2.0, -0.05, 0.10),
    (0.10, 0.1, 0.05, 0.30),
]


def ql_bates_as_merton(days: int, strikes: np.ndarray, is_call: bool, vol, lam, mu, delta) -> np.ndarray:
    """Bates with v0 = theta = vol^2 and vol-of-vol 1e-5 is Merton to ~1e-10 (checked: 1e-4 leaves ~1e-7)."""
    today = ql.Date(3, 1, 2022)
    ql.Settings.instance().evaluationDate = today
    dc = ql.Actual365Fixed()
    curve = lambda rate: ql.YieldTermStructureHandle(ql.FlatForward(today, rate, dc))  # noqa: E731
    proc = ql.BatesProcess(curve(R), curve(Q), ql.QuoteHandle(ql.SimpleQuote(S)), vol * vol, 50.0, vol * vol,
                           1e-5, 0.0, lam, mu, delta)
    model = ql.BatesModel(proc)
    out = []
    for k in strikes:
        opt = ql.VanillaOption(ql.PlainVanillaPayoff(ql.Option.Call if is_call else ql.Option.Put, float(k)),
                               ql.EuropeanExercise(today + days))
        for tol in (1e-11, 1e-10, 1e-9):  # QuantLib's adaptive Lobatto sometimes gives up at the tightest
            opt.setPricingEngine(ql.BatesEngine(model, tol, 1_000_000))
            try:
                out.append(opt.NPV())
                break
            except RuntimeError:
                continue
    return np.array(out)


@pytest.mark.parametrize("vol,lam,mu,delta", CASES)
@pytest.mark.parametrize("days", [1, 30, 365, 730])
def test_matches_quantlib_bates_with_tiny_vol_of_vol(vol, lam, mu, delta, days):
    t = days / 365.0
    f, d = S * np.exp((R - Q) * t), np.exp(-R * t)
    strikes = S * np.exp(np.linspace(-0.8, 0.5, 9) * np.sqrt(max(t, 0.05)))
    for is_call in (True, False):
        ref = ql_bates_as_merton(days, strikes, is_call, vol, lam, mu, delta)
        got = merton.price(forward=f, strike=strikes, t=t, vol=vol, discount=d, is_call=is_call,
                           jump_intensity=lam, jump_mean=mu, jump_vol=delta)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-8)


def mp_merton(f, k, t, vol, d, is_call, lam, mu, delta) -> mp.mpf:
    """Independent 50-digit series, summed until terms are below 1e-45."""
    with mp.workdps(50):
        f, k, t, vol, d, lam, mu, delta = (mp.mpf(x) for x in (f, k, t, vol, d, lam, mu, delta))
        kbar = mp.exp(mu + delta ** 2 / 2) - 1
        total, n = mp.mpf(0), 0
        while True:
            w = mp.exp(-lam * t) * (lam * t) ** n / mp.factorial(n)
            s = mp.sqrt(vol ** 2 * t + n * delta ** 2)
            fn = f * mp.exp(-lam * kbar * t) * (1 + kbar) ** n
            d1 = (mp.log(fn / k) + s ** 2 / 2) / s
            c = d * (fn * mp.ncdf(d1) - k * mp.ncdf(d1 - s))
            term = w * (c if is_call else c - d * (fn - k))
            total += term
            if n > lam * t and abs(term) < mp.mpf(10) ** -45 * (f + k):
                return total
            n += 1


@pytest.mark.parametrize("strike,is_call", [(60.0, False), (90.0, False), (100.0, True), (130.0, True),
                                            (200.0, True), (45.0, False)])
def test_matches_mpmath_series_to_1e12_relative(strike, is_call):
    # Plus ~1 ulp of F+K absolute: far OTM puts sum in-the-money terms (large negative jumps) with tiny weights.
    args = dict(f=101.0, k=strike, t=0.5, vol=0.12, d=0.985, lam=1.5, mu=-0.08, delta=0.12)
    ref = float(mp_merton(is_call=is_call, **args))
    got = merton.price(forward=101.0, strike=strike, t=0.5, vol=0.12, discount=0.985, is_call=is_call,
                       jump_intensity=1.5, jump_mean=-0.08, jump_vol=0.12)
    assert abs(got - ref) <= 1e-12 * ref + 1e-16 * (101.0 + strike)


def test_no_jumps_is_black76_and_put_call_parity_holds():
    k = np.linspace(50, 150, 11)
    got = merton.price(forward=100.0, strike=k, t=0.7, vol=0.2, discount=0.97, is_call=True,
                       jump_intensity=0.0, jump_mean=-0.1, jump_vol=0.2)
    ref = black76.price(forward=100.0, strike=k, t=0.7, vol=0.2, discount=0.97, is_call=True)
    np.testing.assert_allclose(got, ref, rtol=1e-14, atol=0)
    kw = dict(forward=100.0, strike=k, t=0.7, vol=0.2, discount=0.97, jump_intensity=1.0, jump_mean=-0.1,
              jump_vol=0.2)
    parity = merton.price(is_call=True, **kw) - merton.price(is_call=False, **kw)
    np.testing.assert_allclose(parity, 0.97 * (100.0 - k), rtol=0, atol=1e-12)


def test_broadcasts_over_expiries_and_params_and_bsm_wrapper_matches():
    t = np.array([[0.1], [1.0]])
    k = np.array([90.0, 100.0, 110.0])
    lam = np.array([0.5, 1.0, 2.0])
    got = merton.price(forward=100.0, strike=k, t=t, vol=0.2, discount=1.0, is_call=True, jump_intensity=lam,
                       jump_mean=-0.1, jump_vol=0.1)
    assert got.shape == (2, 3)
    one = merton.price(forward=100.0, strike=110.0, t=1.0, vol=0.2, discount=1.0, is_call=True,
                       jump_intensity=2.0, jump_mean=-0.1, jump_vol=0.1)
    assert got[1, 2] == pytest.approx(float(one), rel=1e-15)
    via_spot = merton.price_bsm(spot=S, strike=k, t=0.5, vol=0.2, rate=R, div_yield=Q, is_call=False,
                                jump_intensity=1.0, jump_mean=-0.1, jump_vol=0.1)
    via_fwd = merton.price(forward=S * np.exp((R - Q) * 0.5), strike=k, t=0.5, vol=0.2, discount=np.exp(-R * 0.5),
                           is_call=False, jump_intensity=1.0, jump_mean=-0.1, jump_vol=0.1)
    np.testing.assert_allclose(via_spot, via_fwd, rtol=1e-15)


def test_expired_is_intrinsic_and_bad_market_inputs_are_nan():
    got = merton.price(forward=100.0, strike=np.array([90.0, 110.0, -1.0]), t=0.0, vol=0.2, discount=0.99,
                       is_call=True, jump_intensity=1.0, jump_mean=-0.1, jump_vol=0.1)
    np.testing.assert_allclose(got[:2], [0.99 * 10.0, 0.0])
    assert np.isnan(got[2])


@pytest.mark.parametrize("bad,word", [(dict(vol=-0.1), "vol"), (dict(jump_intensity=-1.0), "jump_intensity"),
                                      (dict(jump_vol=-0.1), "jump_vol"), (dict(jump_mean=np.nan), "jump_mean")])
def test_invalid_params_raise_named_error_saying_how_to_fix(bad, word):
    kw = dict(forward=100.0, strike=100.0, t=1.0, vol=0.2, discount=1.0, is_call=True, jump_intensity=1.0,
              jump_mean=-0.1, jump_vol=0.1) | bad
    with pytest.raises(merton.InvalidMertonParamsError, match=word):
        merton.price(**kw)


def test_truncation_is_adaptive_and_refuses_absurd_intensity():
    few = merton.terms_needed(lam_t=np.array([0.01]), lam_t_prime=np.array([0.011]), forward=np.array([100.0]),
                              strike=np.array([100.0]))
    many = merton.terms_needed(lam_t=np.array([20.0]), lam_t_prime=np.array([22.0]), forward=np.array([100.0]),
                               strike=np.array([100.0]))
    assert few < 10 < many < 100
    with pytest.raises(merton.MertonTruncationError, match="jump intensity"):
        merton.price(forward=100.0, strike=100.0, t=10.0, vol=0.2, discount=1.0, is_call=True,
                     jump_intensity=1e4, jump_mean=0.0, jump_vol=0.01)
