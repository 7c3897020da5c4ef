"""Cboe "delayed quotes" CSV download: a header with the index, then one wide call|strike|put row per strike.

Layouts understood (the column header is found by its ``Calls`` and ``Puts`` cells, fields by name):

* current::

      S&P 500 INDEX,Last: 6711.2002,Change:  22.7402
      "Date: October 1, 2025 at 6:06 PM EDT",Bid: 6661.1099,Ask: 6743.9702,Size: 1*1,Volume: 0
      Expiration Date,Calls,Last Sale,Net,Bid,Ask,Volume,IV,Delta,Gamma,Open Interest,Strike,Puts,...
      Fri Dec 17 2027,SPX271217C03500000,2700.14,0,3416.4,3449.8,0,0.3213,0.97,0,18,3500.00,SPX271217P03500000,...

* older (no expiry/strike columns; both are in the contract cell)::

      SPX (S&P 500 INDEX),4181.17,-6.45,
      Apr 23 2021 @ 13:45 ET,Bid,4180.95,Ask,4181.75,Size,1x1,Vol,0,
      Calls,Last Sale,Net,Bid,Ask,Vol,IV,Delta,Gamma,Open Int,Puts,Last Sale,Net,Bid,Ask,Vol,IV,Delta,Gamma,Open Int
      21 Apr 23 4180.00 (SPXW2123D4180),...

Choices made explicit:
    * root (SPX or SPXW) comes from each side's contract symbol; expiry and strike columns, when
      present, must agree with it (a disagreeing row is rejected);
    * snapshot time = the header's "Date:" time, read in any layout and browser locale by
      :mod:`~spx_core.marketdata.importers.datetext` (no zone: ET). When it cannot be read the file fails
      naming the line; ``DelayedOptions(time=...)`` (CLI ``--time ISO``) supplies or overrides it.
      After-hours downloads carry the download time, not the quote time: treat such snapshots as
      "as of the close", or pass ``--time``;
    * lines padded with trailing commas (spreadsheet exports) read as if unpadded;
    * the index Last must be a plausible level (else the file fails); an implausible Bid/Ask is stored
      as unknown and reported as a rejection of its header line;
    * a row that lists neither a call nor a put contract is rejected, not skipped;
    * underlying price = the header's Last; the header Bid/Ask are stored as underlying bid/ask but
      are junk after hours;
    * vendor IV of 0 means "none" (expired/illiquid series) and is stored as NaN; Last Sale 0 as NaN;
    * an expiry before the quote date is rejected (vendors keep listing expired series); the quote
      date's own expiry is kept.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from spx_core.domain.calendar import ET, to_ns
from spx_core.domain.contracts import ROOTS
from spx_core.marketdata.importers.base import CountingReader, FileSink, ImportFileError
from spx_core.marketdata.importers.chains import ChainBuffer, build_snapshot
from spx_core.marketdata.importers.datetext import parse_datetime_text
from spx_core.marketdata.importers.parsing import (RowErrors, duplicated, read_csv_chunks, read_physical_line,
                                                   to_float, to_int)
from spx_core.marketdata.importers.plausible import (check_expiry, check_price, check_strike,
                                                     index_price_problem, time_problem)

__all__ = ["DelayedOptions", "default_options", "import_path", "parse_header"]

_HEADER_SCAN_LINES = 12
_CHUNK_ROWS = 20_000
_ROOT_CODE = {r.value: i for i, r in enumerate(ROOTS)}
_FIELD_ALIASES = {"last sale": "last", "last": "last", "bid": "bid", "ask": "ask", "volume": "volume",
                  "vol": "volume", "iv": "vendor_iv", "delta": "vendor_delta", "open interest": "open_interest",
                  "open int": "open_interest", "oi": "open_interest"}
_OCC = r"^\s*(?P<root>[A-Z]+?)\s*(?P<ymd>\d{6})(?P<right>[CP])(?P<strike>\d{8})\s*$"
_OLD = r"^\s*(?P<yy>\d{2}) (?P<mon>[A-Za-z]{3}) (?P<dd>\d{1,2}) (?P<strike>[\d.]+) \((?P<root>SPXW|SPX|XSP)\d"
_DATE_LABEL = re.compile(r"^\s*(date|datum|fecha|data)\s*:", re.I)
_CLOCK = re.compile(r"(?<![\d:])\d{1,2}:\d{2}(?![\d])")
_VALUE_CELL = re.compile(r"^\s*(bid|ask|size|volume|vol|last|change)\b", re.I)
_KEYVAL = re.compile(r"^\s*(Last|Bid|Ask|Change)\s*:\s*(\S+)\s*$", re.I)


@dataclass(frozen=True, slots=True)
class DelayedOptions:
    """Options for the Cboe delayed-quotes importer.

    Attributes:
        time: the snapshot time, for files whose "Date:" line is missing or unreadable (CLI ``--time``);
            when given it replaces the header's time. Naive means US/Eastern.
    """

    time: datetime | None = None

    def __post_init__(self) -> None:
        if self.time is not None and self.time.tzinfo is None:
            object.__setattr__(self, "time", self.time.replace(tzinfo=ET))


def default_options() -> DelayedOptions:
    return DelayedOptions()


@dataclass(frozen=True, slots=True)
class DelayedHeader:
    """What the lines above the column header say.

    Attributes:
        notes: ``(line, reason)`` for header values not used (an implausible index bid/ask), reported
            as rejections so that nothing is dropped silently.
    """

    time: datetime
    last: float
    bid: float
    ask: float
    columns: list[str]
    first_data_line: int
    notes: tuple[tuple[int, str], ...] = ()


def import_path(sink: FileSink, path: Path, options: DelayedOptions) -> None:
    with open(path, "rb") as raw:
        stream = io.TextIOWrapper(CountingReader(raw, sink.read_bytes), encoding="utf-8-sig", newline="")
        try:
            head = parse_header(path, stream, options)
            for line, reason in head.notes:
                sink.reject(line, reason)
            _import_rows(sink, path, stream, head)
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                  f"is this really a Cboe delayed-quotes CSV?") from None


def parse_header(path: Path, stream: io.TextIOBase, options: DelayedOptions | None = None) -> DelayedHeader:
    """Read the index lines and the column header; raise :class:`ImportFileError` when unusable."""
    options = options or DelayedOptions()
    values: dict[str, tuple[float, int]] = {}
    date_line: tuple[int, str] | None = None
    for n in range(1, _HEADER_SCAN_LINES + 1):
        read = read_physical_line(stream)
        if read is None:
            break
        cells = _trim(next(csv.reader([read[0]]), []))  # one line only: a stray quote cannot run on
        lowered = [c.strip().lower() for c in cells]
        if "calls" in lowered and "puts" in lowered:
            return _finish_header(path, options, values, date_line, lowered, n)
        if date_line is None and (text := _date_text(cells)):
            date_line = (n, text)
        _header_values(cells, values, n)
    raise ImportFileError(f"{path}: no column header with 'Calls' and 'Puts' in the first {_HEADER_SCAN_LINES} "
                          f"lines; this is not a Cboe delayed-quotes CSV (check --format)")


def _trim(cells: list[str]) -> list[str]:
    """Cells without the empty ones that pad a line's end (",,,,")."""
    while cells and not cells[-1].strip():
        cells.pop()
    return cells


def _date_text(cells: list[str]) -> str | None:
    """The date/time text of a header line: from a "Date:" cell or a cell with h:mm, up to the Bid cell."""
    for i, cell in enumerate(cells):
        if _DATE_LABEL.match(cell) or _CLOCK.search(cell):
            stop = next((j for j in range(i + 1, len(cells)) if _VALUE_CELL.match(cells[j])), len(cells))
            return ", ".join(c.strip() for c in cells[i:stop])  # a "Date: May 1, 2025" split by its comma
    return None


def _finish_header(path: Path, options: DelayedOptions, values: dict[str, tuple[float, int]],
                   date_line: tuple[int, str] | None, columns: list[str], n: int) -> DelayedHeader:
    when = options.time or _header_time(path, date_line)
    if problem := time_problem(when, "the snapshot time"):
        raise ImportFileError(f"{path}: {problem}; pass --time ISO with the quote time")
    if "last" not in values:
        raise ImportFileError(f"{path}: the header lacks the index 'Last: ...' value above the column names; "
                              f"download the full Cboe delayed-quotes CSV (with the index lines)")
    last, last_line = values["last"]
    if problem := index_price_problem(last, "the index Last"):
        raise ImportFileError(f"{path}: line {last_line}: {problem}; download the file again")
    notes, quote = [], {}
    for key in ("bid", "ask"):
        value, line = values.get(key, (np.nan, 0))
        if not np.isnan(value) and (problem := index_price_problem(value, f"the index {key.title()}")):
            notes.append((line, f"{problem}; stored as unknown"))
            value = np.nan
        quote[key] = value
    return DelayedHeader(when, last, quote["bid"], quote["ask"], columns, n + 1, tuple(notes))


def _header_time(path: Path, date_line: tuple[int, str] | None) -> datetime:
    if date_line is None:
        raise ImportFileError(f"{path}: the header lacks the 'Date: ...' line above the column names; download "
                              f"the full Cboe delayed-quotes CSV, or pass --time ISO with the quote time "
                              f"(e.g. --time 2025-10-01T16:15, US/Eastern)")
    line, text = date_line
    when = parse_datetime_text(text)
    if when is None:
        raise ImportFileError(f"{path}: line {line}: cannot read the date and time in {text!r}; pass --time ISO "
                              f"with the quote time (e.g. --time 2025-10-01T16:15, US/Eastern)")
    return when


def _header_values(cells: list[str], values: dict[str, tuple[float, int]], line: int) -> None:
    """Index Last/Bid/Ask from "Last: 6711.2" cells, "Bid,4180.95" pairs or "SPX (...),4181.17"."""
    def put(key: str, text: str) -> None:
        try:
            values.setdefault(key, (float(text), line))
        except ValueError:
            pass

    for i, cell in enumerate(cells):
        if m := _KEYVAL.match(cell):
            put(m[1].lower(), m[2])
        elif cell.strip().lower() in ("bid", "ask") and i + 1 < len(cells):
            put(cell.strip().lower(), cells[i + 1])
    if cells and "(" in cells[0] and len(cells) > 1 and "last" not in values:
        put("last", cells[1])


def _layout(path: Path, columns: list[str]) -> dict[str, object]:
    calls, puts = columns.index("calls"), columns.index("puts")
    if puts < calls:
        raise ImportFileError(f"{path}: expected call columns before put columns in the header")
    strike = columns.index("strike") if "strike" in columns else None
    call_end = strike if strike is not None and calls < strike < puts else puts
    sides = {}
    for side, start, stop in (("call", calls + 1, call_end), ("put", puts + 1, len(columns))):
        named = [_FIELD_ALIASES.get(c, "") for c in columns[start:stop]]
        if twice := duplicated(named):
            field, where = next(iter(twice.items()))
            names = ", ".join(repr(columns[start + k - 1]) for k in where)
            raise ImportFileError(f"{path}: the {side} columns name {field.replace('vendor_', '')} more than once "
                                  f"({names}); remove the extra column so each value has one meaning")
        sides[side] = {name: i for i, name in enumerate(named, start) if name}
        if "bid" not in sides[side] or "ask" not in sides[side]:
            raise ImportFileError(f"{path}: the {side} columns lack Bid/Ask; not a Cboe delayed-quotes CSV")
    expiry = columns.index("expiration date") if "expiration date" in columns else None
    # both sides get the same columns (one side may lack e.g. Volume): the snapshot needs one layout
    every = sorted(set(sides["call"]) | set(sides["put"]))
    return {"calls": calls, "puts": puts, "strike": strike, "expiry": expiry, "fields": sides, "every": every}


def _import_rows(sink: FileSink, path: Path, stream: io.TextIOBase, head: DelayedHeader) -> None:
    layout = _layout(path, head.columns)
    quote_day = np.datetime64(head.time.astimezone(ET).date(), "D")
    buffer = ChainBuffer()

    def bad_line(line: int, reason: str) -> None:
        sink.count_rows(1)
        sink.reject(line, reason)

    for lines, text in read_csv_chunks(stream, ncols=len(head.columns), chunk_rows=_CHUNK_ROWS,
                                       first_line=head.first_data_line, on_reject=bad_line,
                                       fields_hint=f"the column header has {len(head.columns)}"):
        sink.count_rows(len(lines))
        for cols, side_lines in _parse_chunk(sink, text, lines, layout, quote_day):
            buffer.add(0, cols, side_lines)
    if not buffer.keys():
        return
    cols, _ = buffer.pop(0, sink.reject)
    snap = build_snapshot(cols, time_ns=to_ns(head.time), underlying_price=head.last,
                          underlying_bid=head.bid, underlying_ask=head.ask)
    sink.add_snapshot(snap)


def _parse_chunk(sink: FileSink, text: list[np.ndarray], lines: np.ndarray, layout: dict, quote_day):
    """Both sides of a chunk of wide rows: ``[(call columns, lines), (put columns, lines)]``."""
    common = RowErrors(lines)
    strike_col = expiry_col = None
    if layout["strike"] is not None:
        strike_col = to_float(text[layout["strike"]], "Strike", common, required=True)
        check_strike(strike_col, "Strike", common, text[layout["strike"]])
    if layout["expiry"] is not None:
        raw = text[layout["expiry"]]
        expiry_col = pd.to_datetime(pd.Series(raw, dtype=object).str.strip(), format="%a %b %d %Y",
                                    errors="coerce").to_numpy().astype("datetime64[D]")
        common.mark(np.isnat(expiry_col), lambda i: f"Expiration Date {raw[i]!r} is not a date like 'Fri Dec 17 2027'")
    out, side_errors, listed = [], [], np.zeros(len(lines), dtype=bool)
    for side in ("call", "put"):
        errs = RowErrors(lines)
        cols, present = _parse_side(text, lines, layout, side, errs, strike_col, expiry_col, quote_day)
        keep = present & ~errs.bad & ~common.bad
        out.append(({k: v[keep] for k, v in cols.items()}, lines[keep]))
        side_errors.append(errs)
        listed |= present | errs.bad
    common.mark(~listed, lambda i: "lists neither a call nor a put contract")
    for line, reason in common.rejections():
        sink.reject(line, reason)
    for errs in side_errors:  # a side's own problems, for rows whose shared cells were fine
        for i in np.flatnonzero(errs.bad & ~common.bad).tolist():
            sink.reject(int(lines[i]), errs.reason(i))
    return out


def _parse_side(text, lines, layout, side: str, errs: RowErrors, strike_col, expiry_col, quote_day):
    """One side's columns and the mask of rows that list a contract on that side."""
    is_call = side == "call"
    symbol = text[layout["calls" if is_call else "puts"]]
    root, expiry, strike, present = _contract(symbol, is_call, side, errs)
    if expiry_col is not None:
        errs.mark(present & ~np.isnat(expiry_col) & (expiry != expiry_col),
                  lambda i: f"{side} symbol {symbol[i]!r} has expiry {expiry[i]}, the row says {expiry_col[i]}")
    if strike_col is not None:
        errs.mark(present & np.isfinite(strike_col) & (np.abs(strike - strike_col) > 1e-6),
                  lambda i: f"{side} symbol {symbol[i]!r} has strike {strike[i]:g}, the row says {strike_col[i]:g}")
    check_expiry(expiry, quote_day, f"{side} expiry", errs)
    cols = {"root": root, "expiry": expiry, "strike": strike, "is_call": np.full(len(lines), is_call)}
    for name, i in layout["fields"][side].items():
        label = f"{side} {name.replace('vendor_', '')}"
        if name in ("volume", "open_interest"):
            cols[name] = to_int(text[i], label, errs)
        else:
            cols[name] = to_float(text[i], label, errs, non_negative=name != "vendor_delta")
            if name in ("bid", "ask", "last"):
                check_price(cols[name], label, errs, text[i])
    for name in layout["every"]:
        if name not in cols:  # a field only the other side has: unknown here
            cols[name] = np.zeros(len(lines), np.int32) if name in ("volume", "open_interest") else \
                np.full(len(lines), np.nan)
    with np.errstate(invalid="ignore"):  # 0 means "none" for the vendor's IV and for Last Sale
        for name in ("vendor_iv", "last"):
            if name in cols:
                cols[name] = np.where(cols[name] > 0, cols[name], np.nan)
    return cols, present


def _contract(symbol: np.ndarray, is_call: bool, side: str, errs: RowErrors):
    """Root codes, expiries, strikes and a present-mask from one side's contract cells."""
    series = pd.Series(symbol, dtype=object).astype(str)
    present = (series.str.strip() != "").to_numpy()
    new = series.str.extract(_OCC)
    old = series.str.extract(_OLD)
    use_old = new["root"].isna() & old["root"].notna()
    root_txt = new["root"].where(~use_old, old["root"])
    expiry_new = pd.to_datetime("20" + new["ymd"], format="%Y%m%d", errors="coerce")
    expiry_old = pd.to_datetime("20" + old["yy"] + old["mon"].str.title() + old["dd"].str.zfill(2),
                                format="%Y%b%d", errors="coerce")
    expiry = expiry_new.where(~use_old, expiry_old).to_numpy().astype("datetime64[D]")
    strike = np.where(use_old, pd.to_numeric(old["strike"], errors="coerce"),
                      pd.to_numeric(new["strike"], errors="coerce") / 1000.0).astype(np.float64)
    right_ok = (new["right"] == ("C" if is_call else "P")) | use_old
    known = root_txt.isin(list(_ROOT_CODE)).to_numpy()
    ok = known & right_ok.to_numpy() & ~np.isnat(expiry) & (strike > 0)
    errs.mark(present & ~ok, lambda i: f"{side} symbol {symbol[i]!r} is not an SPX/SPXW option symbol "
                                       f"(like SPXW271217{'C' if is_call else 'P'}03500000)")
    codes = root_txt.map(_ROOT_CODE).fillna(0).to_numpy(dtype=np.uint8)
    return codes, expiry, strike, present & ok
