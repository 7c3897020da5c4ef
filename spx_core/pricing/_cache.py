"""On-disk cache for the compiled pricing kernels, keyed on ALL the code compiled into them.

Why not plain ``numba.njit(cache=True)``: numba stamps a cache entry with the source of the file that
holds the top-level function only. Our loops inline helpers from other modules (``_special``,
``_black``, ...), so after editing a helper numba would happily load a stale kernel. Here the stamp is
a digest of the bytecode and constants of every function compiled into the kernels plus the numeric
module constants they read; any edit gives a new digest, hence a fresh cache folder.

It also works in a frozen (PyInstaller) app, where there are no ``.py`` files for numba's own
locators: the folder is ``$NUMBA_CACHE_DIR`` when set, else the user's cache folder
(platformdirs), under ``numba-<digest>``. When no writable folder exists the caller compiles in memory.
"""

from __future__ import annotations

import hashlib
import os
from types import CodeType, ModuleType

from numba.core.caching import CompileResultCacheImpl, FunctionCache, _CacheLocator

from spx_core.paths import APP_AUTHOR, APP_NAME


def _update_with_code(hasher, code: CodeType) -> None:
    # marshal output depends on reference counts, so hash the parts that define behaviour instead.
    hasher.update(code.co_code)
    hasher.update(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars)).encode())
    for const in code.co_consts:
        if isinstance(const, CodeType):
            _update_with_code(hasher, const)
        else:
            hasher.update(repr(const).encode())


def code_digest(modules: tuple[ModuleType, ...], options: dict, builders: tuple = ()) -> str:
    """sha256 over every function compiled from ``modules`` (their FUNCTIONS, LOOPS and HASHED), their numeric
    module constants (numba freezes globals into the machine code), the jit options and the ``builders``
    (the functions that decide how all that is compiled)."""
    hasher = hashlib.sha256(repr(sorted(options.items())).encode())
    for fn in builders:
        _update_with_code(hasher, fn.__code__)
    for module in modules:
        hasher.update(module.__name__.encode())
        for fn in (*getattr(module, "FUNCTIONS", ()), *getattr(module, "LOOPS", ()), *getattr(module, "HASHED", ())):
            hasher.update(fn.__qualname__.encode())
            _update_with_code(hasher, fn.__code__)
        constants = sorted((name, repr(value)) for name, value in vars(module).items()
                           if isinstance(value, int | float) and not name.startswith("__"))
        hasher.update(repr(constants).encode())
    return hasher.hexdigest()


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
