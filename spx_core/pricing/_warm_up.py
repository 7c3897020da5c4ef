"""Compile the pricing kernels in the background after the app's first paint.

Above ``black76`` and ``iv`` in the import order (it calls them), so the kernels' compile module never
imports the pricing entry points back.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from spx_core.pricing import black76, iv
from spx_core.pricing._compile import KERNELS

_LOG = logging.getLogger(__name__)


def start_background_warm_up() -> threading.Thread | None:
    """Compile (or load from cache) the common kernels in a daemon thread.

    Until it finishes, calls from every other thread take the numpy path, so an app's first
    chain is priced at once instead of after the ~14 s first compile of a new install. Returns the
    thread (None when numba is disabled or unusable, or a warm-up already ran).
    """
    if not KERNELS.begin_warm_up():
        return None
    thread = threading.Thread(target=_warm_up, name="pricing-warm-up", daemon=True)
    thread.start()
    return thread


def _warm_up() -> None:
    with KERNELS.warm_up_thread():
        try:
            for n in (16, 1024):  # below and above the SIMD threshold: both loop families get compiled
                forward, discount = np.full(n, 5000.0), np.full(n, 0.99)
                strike = np.linspace(4000.0, 6000.0, n)
                t, vol = np.full(n, 0.1), np.full(n, 0.2)
                is_call = np.arange(n) % 2 == 0
                price = black76.price(forward=forward, strike=strike, t=t, vol=vol, discount=discount,
                                      is_call=is_call)
                black76.greeks(forward=forward, strike=strike, t=t, vol=vol, discount=discount, is_call=is_call)
                iv.implied_vol(price=price, forward=forward, strike=strike, t=t, discount=discount, is_call=is_call)
        except Exception:  # warm-up is an optimisation: a failure leaves compile-on-first-use
            _LOG.exception("pricing warm-up failed; kernels will compile on first use")
