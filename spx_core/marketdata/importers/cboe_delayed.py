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
    * snapshot time = the header's "Date:" time (ET). After-hours downloads carry the download time,
      not the quote time: treat such snapshots as "as of the close";
    * underlying price = the header's Last; the header Bid/Ask are stored as underlying bid/ask but
      are junk after hours;
    * vendor IV of 0 means "none" (expired/illiquid series) and is stored as NaN; Last Sale 0 as NaN;
    * an expiry before the quote date is rejected (vendors keep listing expired series); the quote
      date's own expiry is kept.
"""

from __future__ import annotations

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
from spx_core.marketdata.importers.parsing import RowErrors, columns_of, read_csv_chunks, to_float, to_int

__all__ = ["DelayedOptions", "default_options", "import_path", "parse_header"]

_HEADER_SCAN_LINES = 12
_CHUNK_ROWS = 20_000
_ROOT_CODE = {r.value: i for i, r in enumerate(ROOTS)}
_FIELD_ALIASES = {"last sale": "last", "last": "last", "bid": "bid", "ask": "ask", "volume": "volume",
                  "vol": "volume", "iv": "vendor_iv", "delta": "vendor_delta", "open interest": "open_interest",
                  "open int": "open_interest", "oi": "open_interest"}
_OCC = r"^\s*(?P<root>[A-Z]+?)\s*(?P<ymd>\d{6})(?P<right>[CP])(?P<strike>\d{8})\s*$"
_OLD = r"^\s*(?P<yy>\d{2}) (?P<mon>[A-Za-z]{3}) (?P<dd>\d{1,2}) (?P<strike>[\d.]+) \((?P<root>SPXW|SPX|XSP)\d"
_DATE_NEW = re.compile(r"Date:\s*([A-Za-z]+ \d{1,2}, \d{4}) at (\d{1,2}:\d{2}\s*[AP]M)", re.I)
_DATE_OLD = re.compile(r"([A-Za-z]{3} \d{1,2} \d{4}) @ (\d{1,2}:\d{2})\s*ET", re.I)
_KEYVAL = re.compile(r"^\s*(Last|Bid|Ask|Change)\s*:\s*(-?[\d.]+)\s*$", re.I)


@dataclass(frozen=True, slots=True)
class DelayedOptions:
    """Options for the Cboe delayed-quotes importer (none yet; kept for a uniform API)."""


def default_options() -> DelayedOptions:
    return DelayedOptions()


@dataclass(frozen=True, slots=True)
class DelayedHeader:
    """What the lines above the column header say."""

    time: datetime
    last: float
    bid: float
    ask: float
    columns: list[str]
    first_data_line: int


def import_path(sink: FileSink, path: Path, options: DelayedOptions) -> None:
    with open(path, "rb") as raw:
        stream = io.TextIOWrapper(CountingReader(raw, sink.read_bytes), encoding="utf-8-sig", newline="")
        try:
            head = parse_header(path, stream)
            _import_rows(sink, path, stream, head)
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                  f"is this really a Cboe delayed-quotes CSV?") from None


def parse_header(path: Path, stream: io.TextIOBase) -> DelayedHeader:
    """Read the index lines and the column header; raise :class:`ImportFileError` when absent."""
    import csv

    values: dict[str, float] = {}
    when: datetime | None = None
    for n in range(1, _HEADER_SCAN_LINES + 1):
        line = stream.readline()
        if not line:
            break
        cells = next(csv.reader([line]), [])
        lowered = [c.strip().lower() for c in cells]
        if "calls" in lowered and "puts" in lowered:
            if when is None or "last" not in values:
                missing = "the 'Date: ...' line" if when is None else "the index 'Last: ...' value"
                raise ImportFileError(f"{path}: the header lacks {missing} above the column names; "
                                      f"download the full Cboe delayed-quotes CSV (with the index lines)")
            return DelayedHeader(when, values["last"], values.get("bid", np.nan), values.get("ask", np.nan),
                                 lowered, n + 1)
        when = when or _header_time(line)
        _header_values(cells, values)
    raise ImportFileError(f"{path}: no column header with 'Calls' and 'Puts' in the first {_HEADER_SCAN_LINES} "
                          f"lines; this is not a Cboe delayed-quotes CSV (check --format)")


def _header_time(line: str) -> datetime | None:
    if m := _DATE_NEW.search(line):
        stamp = datetime.strptime(f"{m[1]} {m[2].upper().replace(' ', '')}", "%B %d, %Y %I:%M%p")
        return stamp.replace(tzinfo=ET)
    if m := _DATE_OLD.search(line):
        return datetime.strptime(f"{m[1]} {m[2]}", "%b %d %Y %H:%M").replace(tzinfo=ET)
    return None


def _header_values(cells: list[str], values: dict[str, float]) -> None:
    for i, cell in enumerate(cells):
        if m := _KEYVAL.match(cell):  # "Last: 6711.2"
            values.setdefault(m[1].lower(), float(m[2]))
        elif cell.strip().lower() in ("bid", "ask") and i + 1 < len(cells):  # "Bid,4180.95"
            try:
                values.setdefault(cell.strip().lower(), float(cells[i + 1]))
            except ValueError:
                pass
    if cells and "(" in cells[0] and len(cells) > 1 and "last" not in values:  # "SPX (S&P 500 INDEX),4181.17"
        try:
            values["last"] = float(cells[1])
        except ValueError:
            pass


def _layout(path: Path, columns: list[str]) -> dict[str, object]:
    calls, puts = columns.index("calls"), columns.index("puts")
    if puts < calls:
        raise ImportFileError(f"{path}: expected call columns before put columns in the header")
    strike = columns.index("strike") if "strike" in columns else None
    call_end = strike if strike is not None and calls < strike < puts else puts
    sides = {}
    for side, start, stop in (("call", calls + 1, call_end), ("put", puts + 1, len(columns))):
        sides[side] = {_FIELD_ALIASES[c]: i for i, c in enumerate(columns[start:stop], start)
                       if c in _FIELD_ALIASES}
        if "bid" not in sides[side] or "ask" not in sides[side]:
            raise ImportFileError(f"{path}: the {side} columns lack Bid/Ask; not a Cboe delayed-quotes CSV")
    expiry = columns.index("expiration date") if "expiration date" in columns else None
    return {"calls": calls, "puts": puts, "strike": strike, "expiry": expiry, "fields": sides}


def _import_rows(sink: FileSink, path: Path, stream: io.TextIOBase, head: DelayedHeader) -> None:
    layout = _layout(path, head.columns)
    quote_day = np.datetime64(head.time.date(), "D")
    buffer = ChainBuffer()

    def short(line: int, row: list[str]) -> None:
        sink.count_rows(1)
        sink.reject(line, f"has {len(row)} fields, the column header has {len(head.columns)}")

    for lines, rows in read_csv_chunks(stream, ncols=len(head.columns), chunk_rows=_CHUNK_ROWS,
                                       first_line=head.first_data_line, on_short=short):
        sink.count_rows(len(rows))
        text = columns_of(rows, len(head.columns))
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
    if layout["expiry"] is not None:
        raw = text[layout["expiry"]]
        expiry_col = pd.to_datetime(pd.Series(raw, dtype=object).str.strip(), format="%a %b %d %Y",
                                    errors="coerce").to_numpy().astype("datetime64[D]")
        common.mark(np.isnat(expiry_col), lambda i: f"Expiration Date {raw[i]!r} is not a date like 'Fri Dec 17 2027'")
    out, side_errors = [], []
    for side in ("call", "put"):
        errs = RowErrors(lines)
        cols, present = _parse_side(text, lines, layout, side, errs, strike_col, expiry_col, quote_day)
        keep = present & ~errs.bad & ~common.bad
        out.append(({k: v[keep] for k, v in cols.items()}, lines[keep]))
        side_errors.append(errs)
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
    errs.mark(present & ~np.isnat(expiry) & (expiry < quote_day),
              lambda i: f"{side} expiry {expiry[i]} is before the quote date {quote_day} (expired series)")
    cols = {"root": root, "expiry": expiry, "strike": strike, "is_call": np.full(len(lines), is_call)}
    for name, i in layout["fields"][side].items():
        label = f"{side} {name.replace('vendor_', '')}"
        if name in ("volume", "open_interest"):
            cols[name] = to_int(text[i], label, errs)
        else:
            cols[name] = to_float(text[i], label, errs, non_negative=name != "vendor_delta")
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
