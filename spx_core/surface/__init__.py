"""Forwards from put-call parity, chain IVs and greeks, arbitrage-free SVI surfaces, arbitrage checks."""

from spx_core.surface.arbitrage import (
    ArbFlag,
    ArbReport,
    fit_arbitrage,
    market_arbitrage,
)
from spx_core.surface.chain_iv import ChainIV, chain_iv
from spx_core.surface.correction import CorrectionConfig, SmileCorrection
from spx_core.surface.forwards import (
    ExpiryForward,
    ForwardConfig,
    ForwardMethod,
    implied_forwards,
)
from spx_core.surface.surface import ExpiryFit, SurfaceConfig, VolSurface, fit_surface
from spx_core.surface.svi import SVIConfig, SVIParams, g_function, svi_w

__all__ = [
    "ArbFlag",
    "ArbReport",
    "ChainIV",
    "CorrectionConfig",
    "ExpiryFit",
    "ExpiryForward",
    "ForwardConfig",
    "ForwardMethod",
    "SVIConfig",
    "SVIParams",
    "SmileCorrection",
    "SurfaceConfig",
    "VolSurface",
    "chain_iv",
    "fit_arbitrage",
    "fit_surface",
    "g_function",
    "implied_forwards",
    "market_arbitrage",
    "svi_w",
]
