"""The synthetic SPX chains of the test suite, in one place (no dependency on the simulator).

Two builders, for the two questions tests ask:
    ``make_chain``       known truth: a forward, discount factor and SVI smile per listed expiry, so surface,
                         forward and IV tests can recover the inputs (returns the snapshot and the truth).
    ``realistic_chain``  realistic feed: strikes on a 5-point grid, bid/ask on the SPX tick grid (0.05
                         under 3.00, 0.10 above), sizes, volume and open interest distributed like
                         spxw20190626.csv, quote times a few seconds old, vendor IV/delta with 4 decimals,
                         some missing bids (storage, codec and import tests, benchmarks).
Prices come from this file's own Black formula (scipy.special.ndtr), independent of spx_core.pricing, so
tests that recover the inputs check the whole pipeline against an independent reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from scipy.special import ndtr

from spx_core.domain import ET, ChainSnapshot, Root, default_calendar

NOW = datetime(2024, 3, 4, 14, 30, tzinfo=ET)
#: the time of ``realistic_chain`` snapshots by default
T0 = datetime(2024, 1, 5, 15, 30, tzinfo=UTC)


@dataclass(frozen=True)
class TrueExpiry:
    root: Root
    expiry: date
    t: float
    forward: float
    discount: float
    svi: tuple[float, float, float, float, float]  # a, b, rho, m, sigma (total variance)


def svi_w(k, a, b, rho, m, sigma):
    return a + b * (rho * (k - m) + np.sqrt((k - m) ** 2 + sigma ** 2))


def black(forward, strike, t, vol, discount, is_call):
    sd = vol * np.sqrt(t)
    d1 = np.log(forward / strike) / sd + 0.5 * sd
    d2 = d1 - sd
    call = discount * (forward * ndtr(d1) - strike * ndtr(d2))
    put = discount * (strike * ndtr(-d2) - forward * ndtr(-d1))
    return np.where(is_call, call, put)


def default_svi(t: float) -> tuple[float, float, float, float, float]:
    """A calendar- and butterfly-arbitrage-free family: ATM vol ~16-19%, equity skew."""
    atm_var = (0.16 + 0.03 * np.exp(-t * 4)) ** 2
    sigma = 0.08 + 0.1 * np.sqrt(t)
    b = 0.12 * np.sqrt(t) + 0.02 * t
    rho = -0.7
    a = atm_var * t - b * sigma * np.sqrt(1 - rho ** 2)
    return (float(a), float(b), rho, 0.0, float(sigma))


def make_chain(*, n_expiries: int = 8, spot: float = 5100.0, rate: float = 0.05, div: float = 0.015,
               noise: float = 0.0, half_spread_vol: float = 0.004, seed: int = 0, now: datetime = NOW,
               svi_for=default_svi, strikes_per_expiry: int | None = None) -> tuple[ChainSnapshot, list[TrueExpiry]]:
    """A chain with calls and puts on a 5-point grid (wider for long expiries).

    Bid/ask are the model price -/+ a half-spread of ``half_spread_vol`` vol times vega (floored at
    0.05 and at 0.1% of the price); ``noise`` adds Gaussian noise of that many half-spreads to the mid.
    """
    rng = np.random.default_rng(seed)
    cal = default_calendar()
    listed = [(r, d) for r, d in cal.listed_expiries(now.date()) if d > now.date()]
    step = max(1, len(listed) // n_expiries)
    chosen = listed[::step][:n_expiries]
    cols: dict[str, list] = {k: [] for k in ("root", "expiry", "strike", "is_call", "bid", "ask")}
    truth = []
    for root, exp in chosen:
        t = cal.time_to_expiry(now, exp, root)
        fwd, df = spot * np.exp((rate - div) * t), np.exp(-rate * t)
        params = svi_for(t)
        dk = 5.0 if t < 0.25 else 25.0
        width = 4.0 * 0.2 * np.sqrt(t) + 0.04
        strikes = np.arange(np.floor(fwd * np.exp(-1.5 * width) / dk) * dk,
                            fwd * np.exp(width) + dk, dk)
        if strikes_per_expiry is not None:
            centre = np.argmin(np.abs(strikes - fwd))
            h = strikes_per_expiry // 2
            strikes = strikes[max(centre - h, 0):centre + h]
        k = np.log(strikes / fwd)
        vol = np.sqrt(svi_w(k, *params) / t)
        for is_call in (True, False):
            price = black(fwd, strikes, t, vol, df, is_call)
            sd = vol * np.sqrt(t)
            d1 = np.log(fwd / strikes) / sd + 0.5 * sd
            vega = df * fwd * np.sqrt(t) * np.exp(-0.5 * d1 ** 2) / np.sqrt(2 * np.pi)
            half = np.maximum(np.maximum(half_spread_vol * vega, 0.05), 0.001 * price)  # ITM: wider, like SPX
            mid = price + noise * half * rng.standard_normal(len(strikes))
            bid = np.maximum(mid - half, 0.0)
            cols["root"] += [root.value] * len(strikes)
            cols["expiry"] += [exp] * len(strikes)
            cols["strike"] += list(strikes)
            cols["is_call"] += [is_call] * len(strikes)
            cols["bid"] += list(bid)
            cols["ask"] += list(mid + half)
        truth.append(TrueExpiry(root, exp, t, fwd, df, params))
    snap = ChainSnapshot.from_columns(underlying="SPX", time=now, underlying_price=spot,
                                      **{k: np.asarray(v) for k, v in cols.items()})
    return snap, truth


def shift_day(now: datetime, days: int) -> datetime:
    return now + timedelta(days=days)


# --- realistic feed -----------------------------------------------------------------------------------
def _tick_round(x: np.ndarray, *, up: bool) -> np.ndarray:
    tick = np.where(x < 3.0, 0.05, 0.10)
    steps = np.ceil(x / tick - 1e-9) if up else np.floor(x / tick + 1e-9)
    # Via integer cents, so each price is the same double a CSV parser would produce ("12.35").
    return np.round(steps * tick * 100) / 100


def _lognormal_int(rng: np.random.Generator, n: int, median: float, sigma: float) -> np.ndarray:
    return np.maximum(1, np.round(median * np.exp(sigma * rng.standard_normal(n)))).astype(np.int64)


def _sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    favourites = rng.choice([10, 20, 25, 40, 50, 70, 100], n)
    return np.where(rng.random(n) < 0.5, favourites, _lognormal_int(rng, n, 60, 1.5))


def realistic_chain(*, n_quotes: int = 20_000, seed: int = 0, time: datetime = T0, spot: float = 4700.0,
                    vendor_fields: bool = True) -> ChainSnapshot:
    """A chain of about ``n_quotes`` quotes (rounded down to whole strike pairs per expiry)."""
    rng = np.random.default_rng(seed)
    n_exp = max(1, n_quotes // 500)
    per_exp = max(1, n_quotes // (2 * n_exp))
    first = date(2024, 1, 5)
    expiries = np.array([np.datetime64(first + timedelta(days=int(d)), "D")
                         for d in np.unique(np.round(np.geomspace(1, 400, n_exp)).astype(int) + np.arange(n_exp))])
    n_exp = len(expiries)
    center = round(spot / 5) * 5
    strikes = center + 5.0 * (np.arange(per_exp) - per_exp // 2)
    strikes = strikes[strikes > 0]
    exp = np.repeat(expiries, 2 * len(strikes))
    strike = np.tile(np.repeat(strikes, 2), n_exp)
    is_call = np.tile([True, False], n_exp * len(strikes))
    t = np.maximum((exp - np.datetime64(first, "D")).astype(float) / 365.0, 0.5 / 365)
    k = np.log(strike / spot)
    vol = np.clip(0.14 - 0.25 * k + 0.6 * k * k, 0.08, 1.5)
    sd = vol * np.sqrt(t)
    d1 = -k / sd + 0.5 * sd
    call = spot * ndtr(d1) - strike * ndtr(d1 - sd)
    theo = np.maximum(np.where(is_call, call, call - spot + strike), 0.0)
    half = np.maximum(0.05, 0.004 * theo + rng.uniform(0.0, 0.15, len(theo)))
    bid = _tick_round(np.maximum(theo - half, 0.0), up=False)
    ask = _tick_round(theo + half, up=True)
    bid = np.where(rng.random(len(bid)) < 0.02, np.nan, bid)
    age_ns = (rng.exponential(3.0, len(bid)) * 1e9).astype(np.int64) // 1_000_000 * 1_000_000  # ms stamps
    n = len(bid)
    # Size/volume/OI distributions follow spxw20190626.csv: round-lot favourites, heavy tails, many zeros.
    volume = np.where(rng.random(n) < 0.75, 0, _lognormal_int(rng, n, 5, 1.8))
    last = np.where(volume == 0, np.nan, _tick_round(theo * rng.uniform(0.9, 1.1, n), up=False))  # traded today
    columns = dict(bid=bid, ask=ask, last=last, bid_size=_sizes(rng, n), ask_size=_sizes(rng, n), volume=volume,
                   open_interest=np.where(rng.random(n) < 0.38, 0, _lognormal_int(rng, n, 150, 2.0)))
    if vendor_fields:
        delta = np.where(is_call, ndtr(d1), ndtr(d1) - 1.0)
        columns |= dict(vendor_iv=np.round(vol * 1e4) / 1e4, vendor_delta=np.round(delta * 1e4) / 1e4)
    ns = int(time.timestamp()) * 1_000_000_000
    return ChainSnapshot.from_columns(underlying="SPX", time=ns, underlying_price=spot,
                                      underlying_bid=spot - 0.25, underlying_ask=spot + 0.25,
                                      root=np.where(exp == expiries[0], "SPXW", "SPX"), expiry=exp,
                                      strike=strike, is_call=is_call, quote_time=ns - age_ns, **columns)
