"""Test-wide setup: offscreen Qt, temp data folder, shared-data location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Point the data folder, database and settings at a temp dir so a developer's files never leak in."""
    home = tmp_path_factory.mktemp("spx_home")
    monkeypatch.setenv("SPX_TERMINAL_HOME", str(home))
    monkeypatch.delenv("SPX_TERMINAL_DB", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    yield home


@pytest.fixture
def shared_data() -> Path:
    """The ``../shared/data`` folder of real market files; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real market data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
