"""Lazy numba compilation of the pricing kernels, with a pure-numpy fallback.

Nothing here runs at import: numba is imported and the kernels compiled (or loaded from numba's
on-disk cache) the first time a price, greek or implied vol is asked for, so importing
``spx_core.pricing`` stays cheap for the app's start. ``SPX_NO_NUMBA=1`` (read at every call, so
tests can switch it) selects the pure-numpy path; so does a missing or broken numba. Caching
is best effort: in a frozen (PyInstaller) app or a read-only install numba may not find a
writable cache folder or the source file, and the kernels are then compiled in memory.
"""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace

_LOG = logging.getLogger(__name__)
_JIT_OPTIONS = {"fastmath": False, "error_model": "numpy", "nogil": True}


class _KernelCache:
    """Holds the compiled kernels once built (one instance per process, owned by this module)."""

    def __init__(self) -> None:
        self.kernels: SimpleNamespace | None = None
        self.failed = False


_STATE = _KernelCache()


def numba_disabled() -> bool:
    """True when SPX_NO_NUMBA is set to a true value (1/true/yes)."""
    return os.environ.get("SPX_NO_NUMBA", "").strip().lower() in {"1", "true", "yes", "on"}


def _njit(numba, fn):
    try:
        return numba.njit(cache=True, **_JIT_OPTIONS)(fn)
    except RuntimeError as exc:  # numba: "cannot cache function ...: no locator available" (frozen / read-only)
        _LOG.info("numba cache unavailable for %s (%s); compiling in memory", fn.__name__, exc)
        return numba.njit(cache=False, **_JIT_OPTIONS)(fn)


def _build() -> SimpleNamespace:
    import numba  # noqa: PLC0415 - deliberately lazy: numba costs ~0.3 s to import
    from numba.extending import register_jitable  # noqa: PLC0415

    from spx_core.pricing import _black, _kernels, _lbr, _special  # noqa: PLC0415

    for module in (_special, _black, _kernels, _lbr):
        for fn in module.FUNCTIONS:
            register_jitable(fn)
    loops = {fn.__name__: _njit(numba, fn) for fn in (*_kernels.LOOPS, *_lbr.LOOPS)}
    return SimpleNamespace(**loops)


def kernels() -> SimpleNamespace | None:
    """The compiled kernels, or None when the numpy path must be used (disabled or numba unusable)."""
    if numba_disabled() or _STATE.failed:
        return None
    if _STATE.kernels is None:
        try:
            _STATE.kernels = _build()
        except ImportError as exc:
            _LOG.warning("numba unavailable (%s); using the numpy pricing path", exc)
            _STATE.failed = True
            return None
    return _STATE.kernels
