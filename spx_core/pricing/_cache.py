"""On-disk cache for the compiled pricing kernels, keyed on ALL the code compiled into them.

Why not plain ``numba.njit(cache=True)``: numba stamps a cache entry with the source of the file that
holds the top-level function only. Our loops inline helpers from other modules (``_special``,
``_black``, ...), so after editing a helper numba would happily load a stale kernel. Here the stamp is
the digest of ``_registry.discover``: the bytecode of every function compiled into the kernels (found by
following the code from the loops) and every constant they read; any edit gives a new digest, hence a
fresh cache folder.

It also works in a frozen (PyInstaller) app, where there are no ``.py`` files for numba's own
locators: the folder is ``$NUMBA_CACHE_DIR`` when set, else the user's cache folder
(platformdirs), under ``numba-<digest>``. When no writable folder exists the caller compiles in memory.
"""

from __future__ import annotations

import os

from numba.core.caching import CompileResultCacheImpl, FunctionCache, _CacheLocator

from spx_core.paths import APP_AUTHOR, APP_NAME


def cache_root() -> str:
    """Base folder: $NUMBA_CACHE_DIR if set (read by numba at import), else the user's cache folder."""
    from numba.core import config

    if config.CACHE_DIR:
        return config.CACHE_DIR
    import platformdirs

    return platformdirs.user_cache_dir(APP_NAME, APP_AUTHOR)


def make_cache_class(digest: str) -> type[FunctionCache]:
    """A numba FunctionCache class whose entries live in ``<root>/numba-<digest[:20]>`` stamped with ``digest``."""
    folder = os.path.join(cache_root(), f"numba-{digest[:20]}")

    class _Locator(_CacheLocator):
        def __init__(self, py_func) -> None:
            self._lineno = py_func.__code__.co_firstlineno

        def get_cache_path(self) -> str:
            return folder

        def get_source_stamp(self) -> str:
            return digest

        def get_disambiguator(self) -> str:
            return str(self._lineno)

        @classmethod
        def from_function(cls, py_func, py_file):
            locator = cls(py_func)
            try:
                locator.ensure_cache_path()  # creates the folder and checks it is writable
            except OSError:
                return None  # numba then raises "no locator available": the caller compiles in memory
            return locator

    class _Impl(CompileResultCacheImpl):
        _locator_classes = (_Locator,)

    class _PricingCache(FunctionCache):
        _impl_class = _Impl

    return _PricingCache
