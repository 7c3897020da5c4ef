"""Market-maker quoting for the simulated chain: bid/ask on the tick grid, sizes, liquidity, trades.

Widths follow what the real SPXW chain shows (2019-06-26 15:45): one to two ticks for options
under $3, 0.2-0.4 for $5-50, ~1 point above $100 and several points deep in the money; wider for
long-dated expiries. Ticks are 0.05 below 3.00 and 0.10 at and above (Cboe SPX rules). Cheap far
out-of-the-money options get a zero bid and a 0.05 ask, like the real chain.
"""

from __future__ import annotations

import numpy as np

from spx_core.marketdata.simulator.config import QuotingParams

__all__ = ["floor_tick", "ceil_tick", "quote_width", "make_quotes", "liquidity", "draw_sizes",
           "initial_open_interest"]

_SWITCH = 3.0  # price where the tick goes from 0.05 to 0.10


def floor_tick(x: np.ndarray) -> np.ndarray:
    """Round down to the SPX tick grid (0.05 below 3.00, 0.10 from 3.00); negatives clip to 0."""
    fine = np.floor(x * 20.0 + 1e-7) / 20.0
    coarse = np.floor(x * 10.0 + 1e-7) / 10.0
    return np.round(np.maximum(np.where(fine < _SWITCH, fine, coarse), 0.0), 2)


def ceil_tick(x: np.ndarray) -> np.ndarray:
    """Round up to the SPX tick grid; at least one minimum tick (0.05)."""
    fine = np.ceil(x * 20.0 - 1e-7) / 20.0
    coarse = np.ceil(x * 10.0 - 1e-7) / 10.0
    return np.round(np.maximum(np.where(fine < _SWITCH, fine, coarse), 0.05), 2)


def quote_width(*, theo: np.ndarray, days: np.ndarray, jitter: np.ndarray, params: QuotingParams) -> np.ndarray:
    """Target width (index points) before tick rounding, from the theoretical price and days to expiry."""
    log_p = np.log(np.maximum(theo, params.width_prices[0]))
    base = np.interp(log_p, np.log(params.width_prices), params.width_points)
    term = 1.0 + (params.long_dated_factor - 1.0) * np.clip((days - 30.0) / (params.long_dated_days - 30.0), 0, 1)
    term = np.where(days < 1.0, params.zero_dte_factor, term)
    return base * term * jitter


def _nearest_tick(x: np.ndarray) -> np.ndarray:
    fine = np.rint(x * 20.0) / 20.0
    return np.round(np.where(fine < _SWITCH, fine, np.rint(x * 10.0) / 10.0), 2)


def make_quotes(*, theo: np.ndarray, width: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bid and ask ``n`` ticks apart around ``theo`` (``n = max(1, round(width / tick))``).

    The bid is the tick nearest ``theo - n*tick/2``, so ``bid <= theo <= ask``; a bid that would be
    zero or less is 0 (zero bid) with the ask at least one tick.
    """
    tick = np.where(theo < _SWITCH, 0.05, 0.10)
    span = np.maximum(np.rint(width / tick), 1.0) * tick
    bid = np.maximum(_nearest_tick(theo - 0.5 * span), 0.0)
    ask = np.maximum(ceil_tick(bid + span), ceil_tick(theo))
    return bid, ask


def liquidity(*, z: np.ndarray, otm: np.ndarray, roundness: np.ndarray, term: np.ndarray) -> np.ndarray:
    """Relative liquidity in (0, ~3]: near the money, out of the money, round strikes, short expiries.

    Args:
        z: standardized log-moneyness ``ln(K/F) / (sigma*sqrt(T))``.
        otm: True where the option is out of the money.
        roundness: 1 / 1.5 / 2 / 3 for 5/25/50/100-point multiples.
        term: per-row expiry weight (short expiries trade most).
    """
    bell = np.exp(-0.5 * (z / 1.4) ** 2) + 0.02
    return bell * np.where(otm, 1.0, 0.35) * roundness * term


def draw_sizes(*, liq: np.ndarray, theo: np.ndarray, params: QuotingParams,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Displayed bid and ask sizes (contracts): larger near the money and far out (cheap wings)."""
    n = len(liq)
    cheap = np.where(theo < 0.5, 6.0, 1.0)  # dealers show size in nickel wings
    base = params.base_size * (0.5 + np.minimum(liq, 2.0)) * cheap
    noise = rng.lognormal(0.0, 0.7, size=(2, n))
    sizes = np.maximum(np.rint(base * noise), 1.0).astype(np.int32)
    return sizes[0], sizes[1]


def initial_open_interest(*, liq: np.ndarray, roundness: np.ndarray, days: np.ndarray,
                          rng: np.random.Generator) -> np.ndarray:
    """Open interest at listing (contracts): built up over an expiry's life, clustered at round strikes
    (beyond their trading liquidity: positions concentrate there, ~5x odd strikes in the real chain)."""
    age = np.clip(days, 1.0, 365.0) ** 0.4
    lam = 700.0 * liq * roundness ** 0.8 * age * rng.lognormal(0.0, 1.0, size=len(liq))
    return np.rint(lam).astype(np.int32)
