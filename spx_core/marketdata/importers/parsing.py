"""Vectorized parsing of CSV text columns with per-row rejection reasons.

Text importers read a chunk of rows with :mod:`csv` (exact physical line numbers, quoting handled),
then convert whole columns at once here. Each conversion marks bad rows in a :class:`RowErrors`
with a reason that names the column and the offending text, e.g. ``ask_1545 'abc' is not a number``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from typing import TextIO

import numpy as np
import pandas as pd

__all__ = ["RowErrors", "to_float", "to_int", "to_date", "read_csv_chunks", "columns_of", "INT32_MAX"]

INT32_MAX = 2**31 - 1
#: Cell texts that mean "no value" (after stripping, case-insensitive).
_MISSING = ("", "nan", "n/a", "na")


class RowErrors:
    """Bad-row mask plus the first reason found for each bad row of one chunk."""

    def __init__(self, lines: np.ndarray) -> None:
        self.lines = np.asarray(lines, dtype=np.int64)
        self.bad = np.zeros(len(self.lines), dtype=bool)
        self._reasons: dict[int, str] = {}

    def mark(self, mask: np.ndarray, reason: Callable[[int], str]) -> None:
        """Mark rows ``mask`` bad; ``reason(i)`` builds the text for row ``i`` (first reason wins)."""
        new = np.flatnonzero(mask & ~self.bad)
        for i in new.tolist():
            self._reasons[i] = reason(i)
        self.bad[new] = True

    def reason(self, i: int) -> str:
        """The reason row ``i`` was marked bad."""
        return self._reasons[i]

    def rejections(self) -> list[tuple[int, str]]:
        """(line, reason) for every bad row, in file order."""
        return [(int(self.lines[i]), self._reasons[i]) for i in sorted(self._reasons)]


def _text(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=object)


def to_float(values: np.ndarray, name: str, errors: RowErrors, *, required: bool = False,
             non_negative: bool = True) -> np.ndarray:
    """float64 column; empty text (or "NaN", "N/A") is NaN, or a rejection when ``required``."""
    text = _text(values)
    out = np.array(pd.to_numeric(pd.Series(text, dtype=object), errors="coerce"), dtype=np.float64)
    empty = np.zeros(len(text), dtype=bool)
    missing = np.flatnonzero(np.isnan(out))
    if len(missing):  # only the few NaN cells need a second look (padding, empty text)
        stripped = pd.Series(text[missing], dtype=object).str.strip()
        out[missing] = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=np.float64)
        empty[missing] = stripped.str.lower().isin(_MISSING).to_numpy(dtype=bool)
    notnum = ~np.isfinite(out) & ~empty
    errors.mark(notnum, lambda i: f"{name} {text[i]!r} is not a number")
    if required:
        errors.mark(empty, lambda i: f"{name} is empty")
    if non_negative:
        with np.errstate(invalid="ignore"):
            errors.mark(out < 0, lambda i: f"{name} {text[i]!r} is negative")
    out[notnum] = np.nan
    return out


def to_int(values: np.ndarray, name: str, errors: RowErrors) -> np.ndarray:
    """Non-negative int32-range counts (sizes, volume, open interest); empty text is 0."""
    text = _text(values)
    num = to_float(text, name, errors)
    with np.errstate(invalid="ignore"):
        frac = np.isfinite(num) & (num != np.floor(num))
        errors.mark(frac, lambda i: f"{name} {text[i]!r} is not a whole number")
        errors.mark(num > INT32_MAX, lambda i: f"{name} {text[i]!r} is too large")
    return np.where(np.isfinite(num) & (num >= 0) & (num <= INT32_MAX), num, 0).astype(np.int32)


def to_date(values: np.ndarray, name: str, errors: RowErrors, *, fmt: str = "%Y-%m-%d",
            shown: str = "YYYY-MM-DD") -> np.ndarray:
    """``datetime64[D]`` column; unparseable or empty text is rejected."""
    text = _text(values)
    parsed = pd.to_datetime(pd.Series(text, dtype=object), format=fmt, errors="coerce")
    out = parsed.to_numpy().astype("datetime64[D]")
    errors.mark(np.isnat(out), lambda i: f"{name} {text[i]!r} is not a date ({shown})")
    return out


def read_csv_chunks(stream: TextIO, *, ncols: int, chunk_rows: int, first_line: int,
                    on_short: Callable[[int, list[str]], None]) -> Iterator[tuple[np.ndarray, list[list[str]]]]:
    """Yield ``(line_numbers, rows)`` chunks of rows with exactly ``ncols`` fields.

    Blank lines are skipped silently, trailing empty fields are dropped; rows with another field count
    go to ``on_short(line, row)``.
    ``first_line`` is the physical line number of the first row the reader will see.
    """
    reader = csv.reader(stream)
    offset = first_line - 1
    rows: list[list[str]] = []
    lines: list[int] = []
    for row in reader:
        line = reader.line_num + offset
        if len(row) > ncols and not any(cell.strip() for cell in row[ncols:]):
            row = row[:ncols]  # trailing commas
        if len(row) == ncols:
            rows.append(row)
            lines.append(line)
        elif row and any(cell.strip() for cell in row):
            on_short(line, row)
        if len(rows) >= chunk_rows:
            yield np.array(lines, dtype=np.int64), rows
            rows, lines = [], []
    if rows:
        yield np.array(lines, dtype=np.int64), rows


def columns_of(rows: list[list[str]], ncols: int) -> list[np.ndarray]:
    """Transpose a chunk of rows into ``ncols`` object arrays of text."""
    if not rows:
        return [np.empty(0, dtype=object) for _ in range(ncols)]
    return [np.array(col, dtype=object) for col in zip(*rows, strict=True)]
