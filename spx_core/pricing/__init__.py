"""Option pricing: Black-76 / BSM prices and greeks, implied volatility (and, alongside, Merton and Heston).

Importing this package is cheap: no numba compilation and no scipy.stats (kernels compile on first use).

    from spx_core.pricing import american, black76, bsm, iv
    g = black76.greeks(forward=f, strike=k, t=t, vol=v, discount=d, is_call=c)
    r = iv.implied_vol(price=p, forward=f, strike=k, t=t, discount=d, is_call=c)   # IVResult(vol, reason)
    a = american.american_price(s, k, t, r, q, v, c)      # American (SPY): Bjerksund-Stensland 2002 or BAW
"""

from spx_core.pricing import american, black76, bsm, iv
from spx_core.pricing._warm_up import start_background_warm_up
from spx_core.pricing.american import AmericanGreeks, american_greeks, american_iv, american_price
from spx_core.pricing.black76 import Greeks
from spx_core.pricing.iv import (
    ImpliedVolError,
    IVReason,
    IVResult,
    NoTimeValueError,
    PriceAboveMaximumError,
    PriceBelowIntrinsicError,
    implied_vol,
    implied_vol_scalar,
)

__all__ = [
    "AmericanGreeks", "american", "american_greeks", "american_iv", "american_price", "Greeks", "IVReason", "IVResult", "ImpliedVolError", "NoTimeValueError", "PriceAboveMaximumError",
    "PriceBelowIntrinsicError", "black76", "bsm", "implied_vol", "implied_vol_scalar", "iv",
    "start_background_warm_up",
]
