"""Background warm-up: other threads price on the numpy path until the kernels are compiled."""

import os
import subprocess
import sys

PROBE = r"""
import threading
import numpy as np
from spx_core.pricing import black76, start_background_warm_up
from spx_core.pricing._compile import KERNELS

thread = start_background_warm_up()
assert thread is not None
assert KERNELS.get() is None, "main thread must not wait for the compile while warming"
p = black76.price(forward=np.full(3, 100.0), strike=np.array([90.0, 100.0, 110.0]), t=np.full(3, 0.5),
                  vol=np.full(3, 0.2), discount=np.full(3, 1.0), is_call=np.array([True, True, False]))
thread.join(300)
assert not thread.is_alive()
assert KERNELS.get() is not None, "after the warm-up the compiled kernels are used"
q = black76.price(forward=np.full(3, 100.0), strike=np.array([90.0, 100.0, 110.0]), t=np.full(3, 0.5),
                  vol=np.full(3, 0.2), discount=np.full(3, 1.0), is_call=np.array([True, True, False]))
assert np.allclose(p, q, rtol=1e-13, atol=0), (p, q)
assert start_background_warm_up() is None  # once per process
print("ok")
"""


def test_warm_up_runs_in_the_background_and_then_serves_compiled_kernels():
    env = dict(os.environ)  # the normal kernel cache: cold in a fresh CI run, then shared with later tests
    env.pop("SPX_NO_NUMBA", None)
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


def test_warm_up_is_a_no_op_without_numba(monkeypatch):
    from spx_core.pricing import start_background_warm_up

    monkeypatch.setenv("SPX_NO_NUMBA", "1")
    assert start_background_warm_up() is None
