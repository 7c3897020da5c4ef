"""Shared helpers for the importer tests (fixture paths, reading back, editing a line); the ``store``
fixture is in ``conftest.py``."""

from __future__ import annotations

from pathlib import Path

from spx_core.storage import Store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DATASHOP_CUT = FIXTURES / "spxw20190626_cut.csv"
DELAYED_CUT = FIXTURES / "cboe_delayed_cut.csv"
LEAN_QUOTES = FIXTURES / "lean" / "20210104_quote_european.zip"
LEAN_INDEX = FIXTURES / "lean" / "20210104_trade.zip"


def snapshots(store: Store) -> list:
    return [store.load_snapshot(i.id) for i in store.list_snapshots()]


def edit_line(src: Path, dst: Path, line: int, old: str, new: str, *, encoding: str = "utf-8") -> Path:
    """Copy ``src`` to ``dst`` with ``old`` replaced by ``new`` on 1-based ``line`` (asserting it was there)."""
    lines = src.read_text(encoding=encoding).split("\n")
    assert old in lines[line - 1], (line, lines[line - 1])
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    dst.write_text("\n".join(lines), encoding=encoding)
    return dst
