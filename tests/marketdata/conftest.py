"""Fixtures for the market-data tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spx_core.storage import Store


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    """A real SQLite store in tmp_path, closed after the test."""
    s = Store.open(tmp_path / "import.sqlite")
    yield s
    s.close()
