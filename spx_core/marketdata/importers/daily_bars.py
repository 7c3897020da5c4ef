"""Daily OHLCV CSVs (Yahoo/arch style, FRED style): one ``underlying_bars`` row per trading day.

Examples: ``Date,Open,High,Low,Close,Adj Close,Volume`` (``1/4/1999,1229.22998,...``) and
``Date,vix`` (FRED: ``.`` marks a day without a value). Plain or gzip text (recognised by its magic
bytes, not by the name), UTF-8 with or without a BOM.

Header: names are matched without case, spaces, dots, dashes or underscores. The date column is one
of date, day, datetime, timestamp, time, observation_date, caldt; ``open``/``high``/``low`` and
``volume`` (vol) are optional (missing -> NULL). The close is the first of: close, last, price,
value, a column named after the symbol (``vix``), adj close; a file of exactly two columns takes the
second as the close. ``Adj Close`` is not used when a Close is present (an index has no adjustments).

Dates: the format is chosen per file, as the one that reads most of the first rows' dates, among
ISO ``2019-01-02`` (also with a time of day), US ``1/2/2019``, ``2019/01/02``, ``20190102``,
``02.01.2019``, ``02-Jan-2019`` and ``Jan 2, 2019``; day-first slashes ``31/12/2018`` are taken when
US order cannot read the file (when both can, US order wins). Each bar is stamped at 16:00 ET of its
date, the regular close: when all of its values are known (a backtest reading bars up to an instant
never sees a close before it happened), and never on a 1-minute bar's start.

Rows are rejected with their own line number and reason (the rest imports): unreadable date, no
close (empty, ``.``, text), a price that is not a plausible index level, ``high < low``, open or
close outside ``[low, high]``, negative volume, a date before 1900 or in the future, a date seen
earlier in the file.

Symbol: ``DailyBarsOptions(symbol=...)`` (CLI ``--symbol``), else from the file name without its
``.csv``/``.gz``/``.txt`` endings: sp500, spx, gspc, ^gspc, s&p500, snp500 -> ``SPX``; vix, ^vix,
vixcls -> ``VIX``; any other name of up to 10 letters/digits is upper-cased (``spy.csv`` -> ``SPY``);
anything else fails the file and asks for ``--symbol``.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from spx_core.marketdata.importers.base import CountingReader, FileSink, ImportFileError
from spx_core.marketdata.importers.parsing import (
    RowErrors,
    duplicated,
    quoting_reason,
    read_csv_chunks,
    read_physical_line,
    split_line,
    to_float,
)
from spx_core.marketdata.importers.plausible import check_index_price, latest_day

__all__ = [
    "BAR_CLOCK",
    "EARLIEST_BAR_DAY",
    "DailyBarsOptions",
    "default_options",
    "import_path",
    "looks_like_daily_bars",
    "symbol_from_name",
]

#: Wall-clock time (ET) every daily bar is stamped with: the regular session's close.
BAR_CLOCK = "16:00"
#: No daily index bar predates this (the S&P composite's daily history starts in the 1920s).
EARLIEST_BAR_DAY = date(1900, 1, 1)
_CHUNK_ROWS = 20_000
_GZIP_MAGIC = b"\x1f\x8b"
_DATE_NAMES = ("date", "day", "datetime", "timestamp", "time", "observationdate", "caldt")
_CLOSE_NAMES = ("close", "last", "price", "value")
_SYMBOLS = {"sp500": "SPX", "spx": "SPX", "gspc": "SPX", "^gspc": "SPX", "s&p500": "SPX", "snp500": "SPX",
            "vix": "VIX", "^vix": "VIX", "vixcls": "VIX"}
_DATE_FORMATS = (("%Y-%m-%d", "YYYY-MM-DD"), ("%m/%d/%Y", "M/D/YYYY"), ("%d/%m/%Y", "D/M/YYYY"),
                 ("%Y/%m/%d", "YYYY/MM/DD"), ("%Y%m%d", "YYYYMMDD"), ("%d.%m.%Y", "DD.MM.YYYY"),
                 ("%d-%b-%Y", "DD-Mon-YYYY"), ("%b %d %Y", "Mon D, YYYY"))


@dataclass(frozen=True, slots=True)
class DailyBarsOptions:
    """Options for the daily-bars importer.

    Attributes:
        symbol: the symbol to store the bars under (upper-cased); None: from the file name (module docstring).
    """

    symbol: str | None = None

    def __post_init__(self) -> None:
        if self.symbol is not None:
            symbol = self.symbol.strip().upper()
            if not symbol:
                raise ValueError("the symbol must not be empty")
            object.__setattr__(self, "symbol", symbol)


def default_options() -> DailyBarsOptions:
    return DailyBarsOptions()


def _norm(name: str) -> str:
    return re.sub(r"[\s._\-]", "", name.strip().lower())


def symbol_from_name(path: Path) -> str | None:
    """The symbol a file name implies (module docstring), or None when it implies none."""
    stem = path.name.lower()
    while (suffix := Path(stem).suffix) in (".csv", ".gz", ".txt"):
        stem = stem[: -len(suffix)]
    if stem in _SYMBOLS:
        return _SYMBOLS[stem]
    stem = stem.lstrip("^")
    return stem.upper() if re.fullmatch(r"[a-z0-9]{1,10}", stem) else None


def _open_text(raw) -> io.TextIOWrapper:
    head = raw.peek(2)[:2] if hasattr(raw, "peek") else b""
    stream = gzip.GzipFile(fileobj=raw, mode="rb") if head == _GZIP_MAGIC else raw
    return io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")


def looks_like_daily_bars(path: str | Path) -> bool:
    """True when the file's header names a date column and a close (how ``spx-data import`` detects it)."""
    try:
        with open(path, "rb") as fh, _open_text(fh) as text:
            first = read_physical_line(text)
        symbol = symbol_from_name(Path(path)) or ""
        columns = _columns([_norm(h) for h in split_line(first[0])], symbol) if first else None
    except (OSError, UnicodeDecodeError, EOFError, zlib.error, csv.Error, ImportFileError):
        return False
    return columns is not None


def _columns(header: list[str], symbol: str) -> dict[str, int] | None:
    """Column index per field (date, close and the optional ones), or None when there is no date or close."""
    index = {name: i for i, name in reversed(list(enumerate(header)))}  # first occurrence wins
    date_col = next((index[n] for n in _DATE_NAMES if n in index), None)
    if date_col is None:
        return None
    names = (*_CLOSE_NAMES, symbol.lower(), *(k for k, v in _SYMBOLS.items() if v == symbol), "adjclose")
    close = next((index[n] for n in names if n in index), None)
    if close is None and len(header) == 2:
        close = 1 - date_col
    if close is None:
        return None
    found = {"date": date_col, "close": close}
    for field, aliases in (("open", ("open",)), ("high", ("high",)), ("low", ("low",)),
                           ("volume", ("volume", "vol"))):
        if (col := next((index[a] for a in aliases if a in index), None)) is not None:
            found[field] = col
    return found


def import_path(sink: FileSink, path: Path, options: DailyBarsOptions) -> None:
    symbol = options.symbol or symbol_from_name(path)
    if symbol is None:
        raise ImportFileError(f"{path}: cannot tell the symbol from the file name; pass --symbol "
                              f"(e.g. --symbol SPX)")
    with open(path, "rb") as raw:
        try:
            with _open_text(io.BufferedReader(CountingReader(raw, sink.read_bytes))) as stream:
                _import_stream(sink, path, stream, symbol)
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                  f"is this really a daily OHLCV CSV?") from None
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:  # cut short, corrupt deflate data, bad CRC
            raise ImportFileError(f"{path}: the gzip data is damaged ({exc}); download the file again") from None


def _header(path: Path, stream: io.TextIOBase, symbol: str) -> tuple[list[str], dict[str, int]]:
    first = read_physical_line(stream)
    try:
        raw = split_line(first[0] if first else "")
    except csv.Error as exc:
        raise ImportFileError(f"{path}: line 1 (the header): {quoting_reason(exc)}") from None
    header = [_norm(h) for h in raw]
    columns = _columns(header, symbol)
    if columns is None:
        raise ImportFileError(f"{path}: not a daily OHLCV CSV: the header ({','.join(raw)[:120]!r}) needs a Date "
                              f"column and a Close column (e.g. Date,Open,High,Low,Close,Volume); check --format")
    used = {header[i] for i in columns.values()}
    if twice := {n: w for n, w in duplicated(header).items() if n in used}:
        name, where = next(iter(twice.items()))
        raise ImportFileError(f"{path}: line 1 (the header) names column {name!r} more than once (columns "
                              f"{', '.join(map(str, where))}); remove the extra column so each value has one meaning")
    return header, columns


def _import_stream(sink: FileSink, path: Path, stream: io.TextIOBase, symbol: str) -> None:
    header, columns = _header(path, stream, symbol)
    fmt: tuple[str, str] | None = None
    seen: dict[np.datetime64, int] = {}
    frames: list[pd.DataFrame] = []

    def bad_line(line: int, reason: str) -> None:
        sink.count_rows(1)
        sink.reject(line, reason)

    for lines, text in read_csv_chunks(stream, ncols=len(header), chunk_rows=_CHUNK_ROWS, first_line=2,
                                       on_reject=bad_line, fields_hint=f"the header has {len(header)}"):
        sink.count_rows(len(lines))
        dates_text = _date_text(text[columns["date"]])
        fmt = fmt or _date_format(path, dates_text)
        frame, days, errors = _parse_chunk(text, columns, lines, dates_text, fmt)
        _reject_repeats(days, lines, errors, seen)
        for line, reason in errors.rejections():
            sink.reject(line, reason)
        frames.append(frame[~errors.bad])
    if frames:
        bars = pd.concat(frames, ignore_index=True).sort_values("time", kind="stable").reset_index(drop=True)
        if len(bars):
            sink.add_bars(symbol, bars)


def _date_text(values: np.ndarray) -> np.ndarray:
    """Date cells made uniform: stripped, an ISO date's time of day dropped, commas removed."""
    text = pd.Series(values, dtype=object).astype(str).str.strip()
    text = text.str.replace(r"^(\d{4}-\d{1,2}-\d{1,2})[ T].*$", r"\1", regex=True).str.replace(",", "", regex=False)
    return text.to_numpy(dtype=object)


def _date_format(path: Path, dates_text: np.ndarray) -> tuple[str, str]:
    """The format that reads most of the first dates (ties: the earlier in the list, so US before day-first)."""
    sample = pd.Series(dates_text[:500], dtype=object)
    sample = sample[sample != ""]
    counts = [int(pd.to_datetime(sample, format=f, errors="coerce").notna().sum()) for f, _ in _DATE_FORMATS]
    best = int(np.argmax(counts))
    if counts[best] == 0:
        shown = sample.iloc[0] if len(sample) else ""
        raise ImportFileError(f"{path}: the dates are in no known format (first: {shown!r}); write them as "
                              f"YYYY-MM-DD or M/D/YYYY")
    return _DATE_FORMATS[best]


def _parse_chunk(text: list[np.ndarray], columns: dict[str, int], lines: np.ndarray, dates_text: np.ndarray,
                 fmt: tuple[str, str]) -> tuple[pd.DataFrame, np.ndarray, RowErrors]:
    errors = RowErrors(lines)
    parsed = pd.to_datetime(pd.Series(dates_text, dtype=object), format=fmt[0], errors="coerce")
    days = parsed.to_numpy().astype("datetime64[D]")
    errors.mark(np.isnat(days), lambda i: f"date {text[columns['date']][i]!r} is not a date ({fmt[1]})")
    lo, hi = np.datetime64(EARLIEST_BAR_DAY, "D"), np.datetime64(latest_day(), "D")
    errors.mark(~np.isnat(days) & ((days < lo) | (days > hi)),
                lambda i: f"date {days[i]} is not a plausible day ({EARLIEST_BAR_DAY} to {hi})")
    close_text = text[columns["close"]]
    dot = pd.Series(close_text, dtype=object).astype(str).str.strip().to_numpy() == "."
    errors.mark(dot, lambda i: "close is missing ('.': no value that day)")
    values = {"close": to_float(close_text, "close", errors, required=True)}
    for field in ("open", "high", "low", "volume"):
        values[field] = (to_float(text[columns[field]], field, errors) if field in columns
                         else np.full(len(lines), np.nan))
    for field in ("open", "high", "low", "close"):
        check_index_price(values[field], field, errors, text[columns[field]] if field in columns else None)
    _check_ranges(values, errors)
    frame = pd.DataFrame({"time": _bar_times(days), **{f: values[f] for f in ("open", "high", "low", "close",
                                                                                 "volume")}})
    return frame, days, errors


def _check_ranges(v: dict[str, np.ndarray], errors: RowErrors) -> None:
    """high >= low, and open/close within [low, high] where both ends are known (1e-9 relative slack)."""
    high, low = v["high"], v["low"]
    slack = 1e-9 * np.abs(np.where(np.isfinite(high), high, 0.0))
    with np.errstate(invalid="ignore"):
        errors.mark(high < low - slack, lambda i: f"high {high[i]:g} is below low {low[i]:g}")
        for field in ("open", "close"):
            x = v[field]
            errors.mark((x > high + slack) | (x < low - slack),
                        lambda i, x=x, field=field: f"{field} {x[i]:g} is outside the day's range "
                                                    f"[{low[i]:g}, {high[i]:g}]")


def _reject_repeats(days: np.ndarray, lines: np.ndarray, errors: RowErrors, seen: dict) -> None:
    """Mark rows whose date came earlier in the file (the first row of a day is kept)."""
    repeat = np.zeros(len(days), dtype=bool)
    first: dict[int, int] = {}
    for i in np.flatnonzero(~errors.bad).tolist():
        day = days[i]
        if day in seen:
            repeat[i] = True
            first[i] = seen[day]
        else:
            seen[day] = int(lines[i])
    errors.mark(repeat, lambda i: f"date {days[i]} appears again (first on line {first[i]}); keep one row per day")


def _bar_times(days: np.ndarray) -> np.ndarray:
    """int64 ns (UTC) of :data:`BAR_CLOCK` ET on each day (NaT days -> 0; those rows are rejected)."""
    from spx_core.domain.calendar import ET

    safe = np.where(np.isnat(days), np.datetime64("2000-01-03", "D"), days)
    local = pd.DatetimeIndex(safe.astype("datetime64[ns]")) + pd.Timedelta(BAR_CLOCK + ":00")
    return local.tz_localize(ET).tz_convert("UTC").asi8.astype(np.int64)
