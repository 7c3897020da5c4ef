"""Reading CSV text into columns, and vectorized conversion with per-row rejection reasons.

:func:`read_csv_chunks` is the one row reader of every text format. Each physical line (ended by
``\\n``, ``\\r\\n`` or ``\\r``) is one record: a quote opened on a line must close on it, so a stray
``"`` rejects that line alone instead of swallowing the lines after it (the :mod:`csv` module would
join them into one field). Every line is a row, a rejection with its own number, or blank. Lines are
split in blocks (str.split, then one reshape into columns); only odd lines (quoted, short, padded)
take the slow path. Lines are bounded (:data:`MAX_LINE_CHARS`) so memory is bounded too.

The conversions then work on whole columns: each marks bad rows in a :class:`RowErrors` with a
reason that names the column and the offending text, e.g. ``ask_1545 'abc' is not a number``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from itertools import repeat
from typing import TextIO

import numpy as np
import pandas as pd

__all__ = ["RowErrors", "to_float", "to_int", "to_date", "read_csv_chunks", "read_physical_line", "split_line",
           "quoting_reason", "duplicated", "INT32_MAX", "MAX_LINE_CHARS"]

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


#: Longest physical line accepted (characters). No row of these formats comes near it; a longer "line" is
#: binary or corrupt data, rejected on its own so that reading stays bounded in memory.
MAX_LINE_CHARS = 1 << 20
_BLOCK_CHARS = 1 << 20
_NEWLINE = re.compile(r"\r\n|\r|\n")


def read_physical_line(stream: TextIO) -> tuple[str, bool] | None:
    """The next physical line without its terminator, and whether it fit in :data:`MAX_LINE_CHARS`.

    None at the end of the stream. An overlong line is consumed to its end (so line numbers stay
    right) and returned cut at the limit. Used for header lines; data rows go through
    :func:`read_csv_chunks`, which splits lines by the same rules (``\\n``, ``\\r\\n`` or ``\\r``).
    """
    line = stream.readline(MAX_LINE_CHARS)
    if not line:
        return None
    if line.endswith(("\n", "\r")):
        return line.rstrip("\r\n"), True
    if len(line) < MAX_LINE_CHARS:
        return line, True  # the last line, without a terminator
    while (rest := stream.readline(MAX_LINE_CHARS)) and not rest.endswith(("\n", "\r")):
        pass
    return line, False


def split_line(text: str) -> list[str]:
    """The fields of one physical line; raises :class:`csv.Error` for quoting that does not close on it.

    Records never span lines in these formats, so a quote is only honoured within its own line: a stray
    ``"`` makes that one line bad instead of swallowing the lines after it.
    """
    if '"' not in text:
        return text.split(",")
    return next(csv.reader([text], strict=True), [""])


def quoting_reason(exc: csv.Error) -> str:
    return f'bad quoting ({exc}); a field that starts with " must end with " on the same line'


def _line_blocks(stream: TextIO, first_line: int) -> Iterator[tuple[int, list[str], list[int], bool]]:
    """``(number of the first line, lines, indices of overlong lines, any quote)`` per ~1 MiB of text.

    Physical lines end at ``\\n``, ``\\r\\n`` or ``\\r``; an overlong line is reported as "" at its index.
    """
    pending, skipping, number = "", False, first_line
    while True:
        text = stream.read(_BLOCK_CHARS)
        if not text:
            if pending and not skipping:
                yield number, [pending.rstrip("\r")], [], '"' in pending
            return
        text = pending + text
        if skipping:  # the rest of an overlong line: drop it up to its terminator
            m = _NEWLINE.search(text)
            if m is None or (m.group() == "\r" and m.end() == len(text)):
                pending = text[-1:] if text.endswith("\r") else ""
                continue
            text, skipping = text[m.end():], False
        hold = text.endswith("\r")  # it may be the first half of a \r\n split between two reads
        lines = _NEWLINE.split(text[:-1] if hold else text)
        pending = lines.pop() + ("\r" if hold else "")
        overlong = [i for i, line in enumerate(lines) if len(line) > MAX_LINE_CHARS]
        if len(pending) > MAX_LINE_CHARS:
            overlong.append(len(lines))
            lines.append("")
            pending, skipping = "", True
        for i in overlong:
            lines[i] = ""
        if lines:
            yield number, lines, overlong, '"' in text
            number += len(lines)


def read_csv_chunks(stream: TextIO, *, ncols: int, chunk_rows: int, first_line: int,
                    on_reject: Callable[[int, str], None],
                    fields_hint: str | None = None) -> Iterator[tuple[np.ndarray, list[np.ndarray]]]:
    """Yield ``(line_numbers, columns)`` chunks of at most ``chunk_rows`` rows with ``ncols`` fields.

    Every physical line is one record (see :func:`split_line`): it becomes a row, or goes to
    ``on_reject(line, reason)`` (wrong field count, bad quoting, overlong), or is blank (no text in
    any field) and skipped. Trailing empty fields past ``ncols`` are dropped (padded exports).
    ``columns`` are ``ncols`` object arrays of cell text; ``first_line`` is the physical line number
    of the stream's next line; ``fields_hint`` ends the field-count reason (default "expected N").
    """
    hint = fields_hint or f"expected {ncols}"
    pieces: list[tuple[np.ndarray, np.ndarray]] = []
    held = 0
    for number, lines, overlong, quoted in _line_blocks(stream, first_line):
        numbers, table = _block_rows(number, lines, overlong, quoted, ncols, hint, on_reject)
        if len(numbers):
            pieces.append((numbers, table))
            held += len(numbers)
        while held >= chunk_rows:
            numbers, table = _take(pieces, chunk_rows)
            held -= len(numbers)
            yield numbers, [table[:, j] for j in range(ncols)]
    if held:
        numbers, table = _take(pieces, held)
        yield numbers, [table[:, j] for j in range(ncols)]


def _block_rows(first: int, lines: list[str], overlong: list[int], quoted: bool, ncols: int, hint: str,
                on_reject: Callable[[int, str], None]) -> tuple[np.ndarray, np.ndarray]:
    """Line numbers and an (n, ncols) object table of one block's rows; odd lines handled one by one."""
    commas = np.fromiter(map(str.count, lines, repeat(",")), dtype=np.int64, count=len(lines))
    ok = commas == ncols - 1
    if quoted:
        ok &= np.fromiter(('"' not in line for line in lines), dtype=bool, count=len(lines))
    ok[overlong] = False
    good = np.flatnonzero(ok)
    text = lines if len(good) == len(lines) else [lines[i] for i in good.tolist()]
    table = np.array(",".join(text).split(","), dtype=object).reshape(len(text), ncols) if text else \
        np.empty((0, ncols), dtype=object)
    numbers = good + first
    if len(good) == len(lines):
        return numbers, table
    extra_numbers, extra_rows = [], []
    too_long = set(overlong)
    for i in np.flatnonzero(~ok).tolist():
        line = first + i
        if i in too_long:
            on_reject(line, f"the line is longer than {MAX_LINE_CHARS:,} characters; not a row of this format")
            continue
        try:
            row = split_line(lines[i])
        except csv.Error as exc:
            on_reject(line, quoting_reason(exc))
            continue
        if len(row) > ncols and not any(cell.strip() for cell in row[ncols:]):
            row = row[:ncols]  # trailing commas
        if len(row) == ncols:
            extra_numbers.append(line)
            extra_rows.append(row)
        elif any(cell.strip() for cell in row):
            on_reject(line, f"has {len(row)} fields, {hint}")
    if extra_rows:
        extra = np.empty((len(extra_rows), ncols), dtype=object)
        extra[:] = extra_rows
        numbers = np.concatenate([numbers, np.array(extra_numbers, dtype=np.int64)])
        table = np.concatenate([table, extra])
        order = np.argsort(numbers, kind="stable")
        numbers, table = numbers[order], table[order]
    return numbers, table


def _take(pieces: list[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove and return the first ``n`` rows held in ``pieces``."""
    out_numbers, out_tables, need = [], [], n
    while need:
        numbers, table = pieces[0]
        if len(numbers) <= need:
            pieces.pop(0)
        else:
            pieces[0] = (numbers[need:], table[need:])
            numbers, table = numbers[:need], table[:need]
        out_numbers.append(numbers)
        out_tables.append(table)
        need -= len(numbers)
    return np.concatenate(out_numbers), np.concatenate(out_tables)


def duplicated(names: list[str]) -> dict[str, list[int]]:
    """Names that occur more than once, with their 1-based positions (for header checks)."""
    seen: dict[str, list[int]] = {}
    for i, name in enumerate(names, 1):
        seen.setdefault(name, []).append(i)
    return {name: where for name, where in seen.items() if len(where) > 1 and name}
