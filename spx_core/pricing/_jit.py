"""Lazy numba compilation of the pricing kernels, with a pure-numpy fallback.

Nothing here runs at import: numba is imported and the kernels compiled (or loaded from numba's
on-disk cache) the first time a price, greek or implied vol is asked for, so importing
``spx_core.pricing`` stays cheap for the app's start. ``SPX_NO_NUMBA=1`` (read at every call, so
tests can switch it) selects the pure-numpy path; so does a missing or broken numba. Caching
is best effort: in a frozen (PyInstaller) app or a read-only install numba may not find a
writable cache folder, and the kernels are then compiled in memory. The on-disk cache is keyed on
all the code compiled into the kernels, not only the file of the top-level loop (see ``_cache.py``).
"""

from __future__ import annotations

import logging
import os
import threading
from types import SimpleNamespace

_LOG = logging.getLogger(__name__)
# Only the "contract" fast-math flag: it lets LLVM fuse a*b+c into one FMA (one rounding instead of two,
# never less accurate); every other fast-math liberty (reassociation, reciprocals, no-NaN) stays off.
_JIT_OPTIONS = {"fastmath": {"contract"}, "error_model": "numpy", "nogil": True}


class _KernelCache:
    """Holds the compiled kernels once built (one instance per process, owned by this module)."""

    def __init__(self) -> None:
        self.kernels: SimpleNamespace | None = None
        self.failed = False
        self.warming = False  # a background warm-up is compiling: other threads use the numpy path
        self.warmed = False


_STATE = _KernelCache()
_LOCAL = threading.local()  # marks the warm-up thread, the only one that compiles while warming


def numba_disabled() -> bool:
    """True when SPX_NO_NUMBA is set to a true value (1/true/yes)."""
    return os.environ.get("SPX_NO_NUMBA", "").strip().lower() in {"1", "true", "yes", "on"}


def _njit(numba, fn, cache_class):
    dispatcher = numba.njit(cache=False, **_JIT_OPTIONS)(fn)
    if cache_class is None:
        return dispatcher
    try:
        # numba has no public hook for a custom cache class; this is what njit(cache=True) does
        # (Dispatcher.enable_caching) with numba's own FunctionCache.
        dispatcher._cache = cache_class(fn)
    except RuntimeError as exc:  # "cannot cache function ...: no locator available" (no writable folder)
        _LOG.info("numba cache unavailable for %s (%s); compiling in memory", fn.__name__, exc)
    return dispatcher


def _build() -> SimpleNamespace:
    # Deliberately lazy imports: numba costs ~0.3 s to import, and _cache and the _simd* modules need it.
    import numba
    from numba.extending import register_jitable

    from spx_core.pricing import (
        _black,
        _cache,
        _kernels,
        _lbr,
        _simd,
        _simd_guess,
        _simd_iv,
        _special,
    )

    modules = (_special, _black, _kernels, _lbr, _simd, _simd_iv, _simd_guess)
    for module in modules:
        for fn in getattr(module, "FUNCTIONS", ()):  # _simd* modules inline their own helpers
            register_jitable(fn)
    try:
        cache_class = _cache.make_cache_class(_cache.code_digest(modules, _JIT_OPTIONS, (_build, _njit)))
    except OSError as exc:  # e.g. no home folder to put the user cache folder in
        _LOG.info("numba cache unavailable (%s); compiling in memory", exc)
        cache_class = None
    loops = (*_kernels.LOOPS, *_lbr.LOOPS, *_simd.LOOPS, *_simd_iv.LOOPS, *_simd_guess.LOOPS)
    return SimpleNamespace(**{fn.__name__: _njit(numba, fn, cache_class) for fn in loops})


def kernels() -> SimpleNamespace | None:
    """The compiled kernels, or None when the numpy path must be used (disabled or numba unusable)."""
    if numba_disabled() or _STATE.failed:
        return None
    if _STATE.warming and not getattr(_LOCAL, "warm_up", False):
        return None
    if _STATE.kernels is None:
        try:
            _STATE.kernels = _build()
        except ImportError as exc:
            _LOG.warning("numba unavailable (%s); using the numpy pricing path", exc)
            _STATE.failed = True
            return None
    return _STATE.kernels


def start_background_warm_up() -> threading.Thread | None:
    """Compile (or load from cache) the common kernels in a daemon thread.

    Until it finishes, calls from every other thread take the numpy path, so an app's first
    chain is priced at once instead of after the ~14 s first compile of a new install. Returns the
    thread (None when numba is disabled or unusable, or a warm-up already ran).
    """
    if numba_disabled() or _STATE.failed or _STATE.warming or _STATE.warmed:
        return None
    _STATE.warming = True
    thread = threading.Thread(target=_warm_up, name="pricing-warm-up", daemon=True)
    thread.start()
    return thread


def _warm_up() -> None:
    import numpy as np

    from spx_core.pricing import black76, iv

    _LOCAL.warm_up = True
    try:
        for n in (16, 1024):  # below and above the SIMD threshold: both loop families get compiled
            forward, discount = np.full(n, 5000.0), np.full(n, 0.99)
            strike = np.linspace(4000.0, 6000.0, n)
            t, vol = np.full(n, 0.1), np.full(n, 0.2)
            is_call = np.arange(n) % 2 == 0
            price = black76.price(forward=forward, strike=strike, t=t, vol=vol, discount=discount, is_call=is_call)
            black76.greeks(forward=forward, strike=strike, t=t, vol=vol, discount=discount, is_call=is_call)
            iv.implied_vol(price=price, forward=forward, strike=strike, t=t, discount=discount, is_call=is_call)
    except Exception:  # warm-up is an optimisation: a failure leaves compile-on-first-use
        _LOG.exception("pricing warm-up failed; kernels will compile on first use")
    finally:
        _LOCAL.warm_up = False
        _STATE.warmed = True
        _STATE.warming = False
