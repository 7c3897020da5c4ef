"""The kernel registry and its one state owner: everything compiled is in the cache key, found by following
the code from the loops (nothing to forget to list), and the kernels are built once per process."""

from __future__ import annotations

import importlib
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from spx_core.pricing import _registry
from spx_core.pricing._compile import KernelProvider


def test_editing_any_compiled_function_changes_the_cache_key():
    pytest.importorskip("numba")
    from spx_core.pricing import _compile

    before = _compile.compiled_code()
    assert len(before.functions) > 50  # loops, scalar helpers, inlined SIMD helpers, intrinsics
    for fn in before.functions:
        original = fn.__code__
        fn.__code__ = original.replace(co_consts=(*original.co_consts, "edited"))
        try:
            after = _compile.compiled_code().digest
        finally:
            fn.__code__ = original
        assert after != before.digest, f"{fn.__module__}.{fn.__qualname__} is compiled but not in the key"
    assert _compile.compiled_code().digest == before.digest


@pytest.mark.parametrize(("module", "name"), [("_black", "CODY_SMALL"), ("_special", "_MIDDLE_P"),
                                              ("_implied_vol", "ITERATIONS"), ("_branchfree", "LN2_HI"),
                                              ("_black_simd", "HUGE")])
def test_editing_a_constant_a_kernel_reads_changes_the_cache_key(monkeypatch, module, name):
    pytest.importorskip("numba")
    from spx_core.pricing import _compile

    before = _compile.compiled_code().digest
    target = importlib.import_module(f"spx_core.pricing.{module}")
    value = getattr(target, name)
    monkeypatch.setattr(target, name, (*value[:-1], value[-1] * 2.0) if isinstance(value, tuple) else value * 2)
    assert _compile.compiled_code().digest != before


_HELPERS = """
from numba import njit

SCALE = {scale}


@njit(inline="always")
def twice(x):
    return SCALE * x


def shift(x):
    return x + {offset}
"""
_LOOP = """
import probe_kernel_helpers


def probe_loop(a):
    for i in range(a.shape[0]):
        a[i] = probe_kernel_helpers.twice(shift(a[i]))


shift = probe_kernel_helpers.shift
LOOPS = (probe_loop,)
"""


def _probe(tmp_path, monkeypatch, scale: float, offset: float):
    """A kernel module of a loop whose helpers live in a module nobody lists, as the registry sees it."""
    (tmp_path / "probe_kernel_helpers.py").write_text(_HELPERS.format(scale=scale, offset=offset))
    (tmp_path / "probe_kernel_loop.py").write_text(_LOOP)
    for key in ("probe_kernel_helpers", "probe_kernel_loop"):
        sys.modules.pop(key, None)
    importlib.invalidate_caches()
    loop_module = importlib.import_module("probe_kernel_loop")
    return loop_module, _registry.discover(_registry.loops([loop_module]), {"nogil": True})


def test_a_helper_nobody_listed_is_compiled_and_in_the_cache_key(tmp_path, monkeypatch):
    numba = pytest.importorskip("numba")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # the edits below keep the file's size and second
    _, base = _probe(tmp_path, monkeypatch, 2.0, 1.0)
    _, scaled = _probe(tmp_path, monkeypatch, 3.0, 1.0)  # a constant an inlined helper reads
    _, shifted = _probe(tmp_path, monkeypatch, 2.0, 5.0)  # the body of a plain helper
    assert len({base.digest, scaled.digest, shifted.digest}) == 3
    module, code = _probe(tmp_path, monkeypatch, 2.0, 1.0)
    assert code.digest == base.digest  # the same code, the same key
    assert [fn.__name__ for fn in code.helpers] == ["shift"]  # what compiled code calls as a plain function
    assert {"probe_loop", "twice", "shift"} <= {fn.__name__ for fn in code.functions}
    for fn in code.helpers:
        numba.extending.register_jitable(fn)
    out = np.array([1.0, 2.0])
    numba.njit(module.probe_loop)(out)
    np.testing.assert_array_equal(out, [4.0, 6.0])


def test_kernels_are_built_once_however_many_threads_ask(monkeypatch):
    monkeypatch.setenv("SPX_NO_NUMBA", "0")
    builds = []

    def build():
        builds.append(threading.get_ident())
        time.sleep(0.05)  # a compile takes a while: every other thread asks meanwhile
        return SimpleNamespace()

    provider = KernelProvider(build)
    results = []
    threads = [threading.Thread(target=lambda: results.append(provider.get())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(builds) == 1 and len(results) == 8 and all(r is results[0] is not None for r in results)


def test_during_the_warm_up_only_the_warm_up_thread_compiles(monkeypatch):
    monkeypatch.setenv("SPX_NO_NUMBA", "0")
    provider = KernelProvider(SimpleNamespace)
    assert provider.begin_warm_up() and not provider.begin_warm_up()  # one warm-up per process
    assert provider.get() is None  # another thread while warming: numpy path, no wait
    seen = []
    with provider.warm_up_thread():
        seen.append(provider.get())
    assert seen[0] is not None and provider.get() is seen[0]
    assert not provider.begin_warm_up()


def test_without_numba_the_numpy_path_is_used(monkeypatch):
    monkeypatch.setenv("SPX_NO_NUMBA", "0")

    def build():
        raise ImportError("No module named 'numba'")

    provider = KernelProvider(build)
    assert provider.get() is None and provider.get() is None and not provider.begin_warm_up()
    monkeypatch.setenv("SPX_NO_NUMBA", "1")
    assert KernelProvider(SimpleNamespace).get() is None and not KernelProvider(SimpleNamespace).begin_warm_up()
