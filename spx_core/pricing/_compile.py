"""Lazy numba compilation of the pricing kernels, with a pure-numpy fallback; the one owner of run-time state.

Nothing here runs at import: numba is imported and the kernels compiled (or loaded from numba's
on-disk cache) the first time a price, greek or implied vol is asked for, so importing
``spx_core.pricing`` stays cheap for the app's start. ``SPX_NO_NUMBA=1`` (read at every call, so
tests can switch it) selects the pure-numpy path; so does a missing or broken numba. Caching
is best effort: in a frozen (PyInstaller) app or a read-only install numba may not find a
writable cache folder, and the kernels are then compiled in memory. What is compiled, and the cache key
over all of it, comes from following the code from the loops (``_registry.py``), so no helper can be
forgotten.

The process's compiled kernels and the background warm-up's flags live in one ``KernelProvider``
(``KERNELS``), behind a lock: no other module keeps state that changes at run time.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import MappingProxyType, SimpleNamespace
from typing import Final

from spx_core.pricing import _registry

_LOG = logging.getLogger(__name__)
# Only the "contract" fast-math flag: it lets LLVM fuse a*b+c into one FMA (one rounding instead of two,
# never less accurate); every other fast-math liberty (reassociation, reciprocals, no-NaN) stays off.
JIT_OPTIONS = MappingProxyType({"fastmath": frozenset({"contract"}), "error_model": "numpy", "nogil": True})


def numba_disabled() -> bool:
    """True when SPX_NO_NUMBA is set to a true value (1/true/yes)."""
    return os.environ.get("SPX_NO_NUMBA", "").strip().lower() in {"1", "true", "yes", "on"}


def _njit(numba, fn, cache_class):
    options = {key: set(value) if isinstance(value, frozenset) else value for key, value in JIT_OPTIONS.items()}
    dispatcher = numba.njit(cache=False, **options)(fn)
    if cache_class is None:
        return dispatcher
    try:
        # numba has no public hook for a custom cache class; this is what njit(cache=True) does
        # (Dispatcher.enable_caching) with numba's own FunctionCache.
        dispatcher._cache = cache_class(fn)
    except RuntimeError as exc:  # "cannot cache function ...: no locator available" (no writable folder)
        _LOG.info("numba cache unavailable for %s (%s); compiling in memory", fn.__name__, exc)
    return dispatcher


def kernel_loops() -> tuple:
    """The loops of every kernel module (importing them needs numba)."""
    return _registry.loops(importlib.import_module(name) for name in _registry.KERNEL_MODULES)


def compiled_code() -> _registry.CompiledCode:
    """Everything compiled into the kernels and its cache key (imports the kernel modules, compiles nothing)."""
    return _registry.discover(kernel_loops(), JIT_OPTIONS, builders=(build_kernels, _njit))


def build_kernels() -> SimpleNamespace:
    """Compile (or load from the cache) every loop; the namespace maps each loop's name to its dispatcher."""
    # Deliberately lazy imports: numba costs ~0.3 s to import, and _cache and the kernel modules need it.
    import numba
    from numba.extending import register_jitable

    from spx_core.pricing import _cache

    code = compiled_code()
    for fn in code.helpers:  # plain functions called from compiled code must be made jit-callable
        register_jitable(fn)
    try:
        cache_class = _cache.make_cache_class(code.digest)
    except OSError as exc:  # e.g. no home folder to put the user cache folder in
        _LOG.info("numba cache unavailable (%s); compiling in memory", exc)
        cache_class = None
    return SimpleNamespace(**{fn.__name__: _njit(numba, fn, cache_class) for fn in kernel_loops()})


class KernelProvider:
    """The compiled kernels of this process (built once, on first use) and the state of the background warm-up.

    While a warm-up runs (``begin_warm_up`` then ``warm_up_thread``), only the warm-up thread compiles: every
    other thread gets None from ``get`` and prices on the numpy path instead of waiting for the compile.
    """

    __slots__ = ("_build", "_build_lock", "_failed", "_kernels", "_state_lock", "_thread", "_warmed", "_warming")

    def __init__(self, build: Callable[[], SimpleNamespace] = build_kernels) -> None:
        self._build = build
        self._build_lock = threading.Lock()  # held while compiling: a second thread waits, never compiles twice
        self._state_lock = threading.Lock()  # guards the warm-up flags (never held for long)
        self._kernels: SimpleNamespace | None = None
        self._failed = False
        self._warming = False
        self._warmed = False
        self._thread = threading.local()  # marks the warm-up thread

    def get(self) -> SimpleNamespace | None:
        """The compiled kernels, or None when the numpy path must be used (disabled, unusable or warming up)."""
        if numba_disabled() or self._failed:
            return None
        if self._warming and not getattr(self._thread, "warm_up", False):
            return None
        if self._kernels is None:
            with self._build_lock:
                if self._kernels is None and not self._failed:
                    try:
                        self._kernels = self._build()
                    except ImportError as exc:
                        _LOG.warning("numba unavailable (%s); using the numpy pricing path", exc)
                        self._failed = True
        return self._kernels

    def begin_warm_up(self) -> bool:
        """Claim this process's one warm-up: True for the first caller while numba is enabled and usable."""
        with self._state_lock:
            if numba_disabled() or self._failed or self._warming or self._warmed:
                return False
            self._warming = True
            return True

    @contextmanager
    def warm_up_thread(self) -> Iterator[None]:
        """Run the body as the warm-up thread (the one that compiles); afterwards every thread uses the kernels."""
        self._thread.warm_up = True
        try:
            yield
        finally:
            self._thread.warm_up = False
            with self._state_lock:
                self._warmed = True
                self._warming = False


KERNELS: Final = KernelProvider()
