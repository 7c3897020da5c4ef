"""Option pricing: Black-76 / BSM prices and greeks, implied volatility (and, alongside, Merton and Heston).

Importing this package is cheap: no numba compilation and no scipy.stats (kernels compile on first use).

    from spx_core.pricing import black76, bsm, iv
    g = black76.greeks(forward=f, strike=k, t=t, vol=v, discount=d, is_call=c)
    r = iv.implied_vol(price=p, forward=f, strike=k, t=t, discount=d, is_call=c)   # IVResult(vol, reason)
"""

from spx_core.pricing import black76, bsm, iv
from spx_core.pricing._warm_up import start_background_warm_up
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
    "Greeks", "IVReason", "IVResult", "ImpliedVolError", "NoTimeValueError", "PriceAboveMaximumError",
    "PriceBelowIntrinsicError", "black76", "bsm", "implied_vol", "implied_vol_scalar", "iv",
    "start_background_warm_up",
]
