"""Pricing tests run every numerical check on both paths: compiled (numba) and pure numpy (SPX_NO_NUMBA=1)."""

import pytest


@pytest.fixture(params=["numba", "numpy"])
def backend(request, monkeypatch):
    """Selects the kernel path for the test through the same switch the app uses (SPX_NO_NUMBA)."""
    monkeypatch.setenv("SPX_NO_NUMBA", "1" if request.param == "numpy" else "0")
    return request.param
