"""End-of-day option CSVs as historical-data vendors sell them: one chain snapshot per quote date.

Header (names are matched case-, space- and underscore-insensitively; the vendor's own spellings
``UnderlyingSymbol, UnderlyingPrice, OptionSymbol, DataDate, IV, AKA`` are accepted too)::

    underlying, underlying_last, exchange, optionroot, optionext, type, expiration, quotedate, strike,
    last, bid, ask, volume, openinterest, impliedvol, delta, gamma, theta, vega, optionalias

Required: ``underlying_last, type, expiration, quotedate, strike, bid, ask`` and ``optionroot`` or
``optionalias``. Stored when present: ``last, volume, openinterest``, ``impliedvol`` (vendor IV; 0 means
"not computed" and is stored as missing) and ``delta``. ``exchange, optionext, gamma, theta, vega`` are
not stored and so not checked: a garbled unused greek does not cost a good quote.

Choices:
  * Snapshot time: the quote date's index-option close, 16:15 ET (13:15 ET on early-close days), because
    these files carry closing quotes and SPX options trade until 16:15. When ``quotedate`` carries a time
    (``1/2/2015 16:00``, ``2015-01-02T15:45:00``, ``4:00 PM``), that time (ET) is used instead: the latest
    one among the date's rows. Midnight (``2015-01-02 00:00:00``, how pandas and spreadsheets write a plain
    date) counts as no time.
  * Underlying price: ``underlying_last``, the median over the date's rows (they all carry the same value).
  * Root: the leading letters of ``optionroot`` / ``optionalias`` (a bare root such as ``SPXW`` or an
    OCC-style symbol such as ``SPXW150109C01700000`` or ``SPX   150117C00100000``). Either saying
    SPXW (or the retired PM root SPXPM) makes the row SPXW. SPX rows are SPX (AM-settled) only on the
    monthly expiry (third Friday; the Thursday before when that Friday is a holiday): an AM SPX contract
    exists on no other day, so an "SPX" row expiring on any other day is a PM weekly/quarterly, SPXW.
    Both empty: the same monthly-expiry rule. Any other root (SPY, XSP, ...) is rejected.
  * Saturday expiries: before 2015 OCC dated SPX monthlies on the Saturday after the last trading day;
    such an expiry is moved to that monthly expiry day.
  * Dates: ``M/D/YYYY``, ``YYYY-MM-DD`` or ``YYYYMMDD``, each optionally followed by a time.
  * Grouping: rows are grouped by quote date as they stream (chunks of :data:`_CHUNK_ROWS` rows); a date's
    snapshot is written once a chunk ends on another date, so memory holds about one date's rows. The
    file must be grouped by quote date (sorted either way, as vendors ship them): rows of a date whose
    snapshot is already written are rejected with their line ("sort the file by quotedate"); dates
    interleaved within one chunk are still merged correctly.
  * Bad quotes (zero bid, bid = ask = 0, crossed) are stored and flagged (``ChainSnapshot`` flags), not
    dropped; a contract quoted twice on one date keeps its first row and rejects the others.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from spx_core.domain.calendar import ET, default_calendar, to_ns
from spx_core.domain.contracts import ROOTS, Root
from spx_core.marketdata.importers.base import CountingReader, FileSink, ImportFileError
from spx_core.marketdata.importers.by_date import stream_by_quote_date
from spx_core.marketdata.importers.chains import ChainBuffer, build_snapshot
from spx_core.marketdata.importers.parsing import (
    RowErrors,
    duplicated,
    quoting_reason,
    read_physical_line,
    split_line,
    to_float,
    to_int,
)
from spx_core.marketdata.importers.plausible import (
    check_days,
    check_expiry,
    check_index_price,
    check_price,
    check_strike,
)

__all__ = [
    "CLOSE_DELAY",
    "REQUIRED",
    "HistoricalOptionDataOptions",
    "default_options",
    "import_path",
    "looks_like_historical_option_data",
]

#: Index options trade 15 minutes past the equity close; the end-of-day quotes are the 16:15 ET market.
CLOSE_DELAY = timedelta(minutes=15)
REQUIRED = ("underlying_last", "type", "expiration", "quotedate", "strike", "bid", "ask")
_ROOT_COLUMNS = ("optionroot", "optionalias")
#: The vendor's own column names (normalised) -> the layout's names.
_ALIASES = {"underlyingsymbol": "underlying", "underlyingprice": "underlying_last", "optionsymbol": "optionroot",
            "datadate": "quotedate", "iv": "impliedvol", "aka": "optionalias", "expirationdate": "expiration",
            "optiontype": "type"}
_LAYOUT = ("underlying", "underlying_last", "exchange", "optionroot", "optionext", "type", "expiration",
           "quotedate", "strike", "last", "bid", "ask", "volume", "openinterest", "impliedvol", "delta", "gamma",
           "theta", "vega", "optionalias")
_CHUNK_ROWS = 50_000
_CODE = {r.value: np.uint8(i) for i, r in enumerate(ROOTS)}
_PM_ROOTS = ("SPXW", "SPXPM")
_UNDERLYINGS = ("", "SPX", "SPXW", "SPXPM", "SPX.X")
_DATE = re.compile(
    r"^\s*(?:(?P<y1>\d{4})-(?P<m1>\d{1,2})-(?P<d1>\d{1,2})|(?P<m2>\d{1,2})/(?P<d2>\d{1,2})/(?P<y2>\d{4})"
    r"|(?P<y3>\d{4})(?P<m3>\d{2})(?P<d3>\d{2}))"
    r"(?:(?:[ T]+|\s*@\s*)(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.\d*)?)?\s*(?P<ap>[AaPp]\.?\s?[Mm]\.?)?)?"
    r"\s*$")
_DATES_SHOWN = "M/D/YYYY or YYYY-MM-DD, optionally with a time"


@dataclass(frozen=True, slots=True)
class HistoricalOptionDataOptions:
    """No settings: the files name their roots and dates (the importer protocol passes an options object)."""


def default_options() -> HistoricalOptionDataOptions:
    return HistoricalOptionDataOptions()


def _norm(name: str) -> str:
    key = re.sub(r"[\s_\-]", "", name.strip().lower())
    return _ALIASES.get(key, next((n for n in _LAYOUT if n.replace("_", "") == key), key))


def _header_names(first: tuple[str, bool] | None) -> list[str]:
    return [_norm(h) for h in split_line(first[0] if first else "")]


def looks_like_historical_option_data(path: str | Path) -> bool:
    """True when the file's header has this layout's required columns (how ``spx-data import`` detects it)."""
    try:
        with open(path, "rb") as fh, io.TextIOWrapper(fh, encoding="utf-8-sig", newline="") as text:
            header = _header_names(read_physical_line(text))
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return all(c in header for c in REQUIRED) and any(c in header for c in _ROOT_COLUMNS)


def import_path(sink: FileSink, path: Path, options: HistoricalOptionDataOptions) -> None:
    with open(path, "rb") as raw:
        stream = io.TextIOWrapper(CountingReader(raw, sink.read_bytes), encoding="utf-8-sig", newline="")
        try:
            _import_stream(sink, path, stream)
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                  f"is this really a historical option data CSV?") from None


def _header(path: Path, stream: io.TextIOBase) -> list[str]:
    try:
        header = _header_names(read_physical_line(stream))
    except csv.Error as exc:
        raise ImportFileError(f"{path}: line 1 (the header): {quoting_reason(exc)}") from None
    missing = [c for c in REQUIRED if c not in header]
    if not any(c in header for c in _ROOT_COLUMNS):
        missing.append("optionroot (or optionalias)")
    if missing:
        raise ImportFileError(
            f"{path}: not a historical option data CSV: header lacks {', '.join(missing)} (expected a header "
            f"like {','.join(_LAYOUT)}); check --format")
    if twice := duplicated(header):
        name, where = next(iter(twice.items()))
        raise ImportFileError(f"{path}: line 1 (the header) names column {name!r} more than once (columns "
                              f"{', '.join(map(str, where))}); remove the extra column so each value has one meaning")
    return header


def _import_stream(sink: FileSink, path: Path, stream: io.TextIOBase) -> None:
    header = _header(path, stream)
    index = {name: i for i, name in enumerate(header)}
    under: dict[date, list[np.ndarray]] = {}
    stamped: dict[date, int] = {}  # latest quote time given in the file, ns, per open date

    def parse(text, lines):
        cols, qdate, qtime, ulast, errors = _parse_chunk(text, index, lines)
        return cols, qdate, (qtime, ulast), errors

    def collect(key: date, extra: tuple[np.ndarray, np.ndarray], sel: np.ndarray) -> None:
        qtime, ulast = extra
        under.setdefault(key, []).append(ulast[sel])
        times = qtime[sel][qtime[sel] >= 0]
        if len(times):
            stamped[key] = max(stamped.get(key, -1), int(times.max()))

    stream_by_quote_date(
        sink, stream, ncols=len(header), chunk_rows=_CHUNK_ROWS, parse=parse, collect=collect,
        flush=lambda buffer, key: _flush(sink, buffer, under, stamped, key),
        again=lambda qd: f"quotedate {qd} appears again after other dates (its snapshot is already written); "
                         f"sort the file by quotedate")


def _close_ns(day: date) -> int:
    """The index-option close of ``day``: the session close plus 15 minutes (16:15 ET if not a session)."""
    calendar = default_calendar()
    close = calendar.session_close(day) if calendar.is_trading_day(day) else datetime.combine(day, time(16), ET)
    return to_ns(close + CLOSE_DELAY)


def _flush(sink: FileSink, buffer: ChainBuffer, under: dict, stamped: dict, key: date) -> None:
    cols, _ = buffer.pop(key, sink.reject)
    price = float(np.median(np.concatenate(under.pop(key))))
    seconds = stamped.pop(key, None)
    time_ns = _close_ns(key) if seconds is None else to_ns(datetime.combine(key, time(), ET)
                                                              + timedelta(seconds=seconds))
    sink.add_snapshot(build_snapshot(cols, time_ns=time_ns, underlying_price=price))


def _parse_dates(values: np.ndarray, name: str, errors: RowErrors) -> tuple[np.ndarray, np.ndarray]:
    """``datetime64[D]`` days and seconds after midnight (-1 when no time is written) of a date column."""
    text = pd.Series(np.asarray(values, dtype=object), dtype=object).astype(str)
    parts = text.str.extract(_DATE)
    year = parts["y1"].fillna(parts["y2"]).fillna(parts["y3"])
    month = parts["m1"].fillna(parts["m2"]).fillna(parts["m3"])
    day = parts["d1"].fillna(parts["d2"]).fillna(parts["d3"])
    iso = year + "-" + month.str.zfill(2) + "-" + day.str.zfill(2)
    days = pd.to_datetime(iso, format="%Y-%m-%d", errors="coerce").to_numpy().astype("datetime64[D]")
    hour = parts["H"].astype(float).to_numpy()
    ampm = parts["ap"].fillna("").str[:1].str.lower().to_numpy()
    has_marker = ampm != ""
    bad_hour = np.where(has_marker, (hour < 1) | (hour > 12), hour > 23)
    hour = np.where(has_marker, hour % 12 + np.where(ampm == "p", 12, 0), hour)
    minute, second = parts["M"].astype(float).to_numpy(), parts["S"].astype(float).fillna(0).to_numpy()
    raw = text.to_numpy()
    errors.mark(np.isnat(days), lambda i: f"{name} {raw[i]!r} is not a date ({_DATES_SHOWN})")
    errors.mark(bad_hour | (minute > 59) | (second > 59), lambda i: f"{name} {raw[i]!r} has no valid time of day")
    seconds = np.nan_to_num(hour * 3600 + minute * 60 + second, nan=-1)
    # Midnight is how pandas and spreadsheets write a plain date, never a quote time: use the close.
    return days, np.where(seconds > 0, seconds, -1).astype(np.int64)


def _saturday_to_monthly(expiry: np.ndarray) -> np.ndarray:
    """Pre-2015 OCC Saturday expiries -> the monthly expiry day before them (see the module docstring)."""
    calendar = default_calendar()
    out = expiry.copy()
    for d in np.unique(expiry[~np.isnat(expiry)]).tolist():
        if d.weekday() == 5:
            monthly = calendar.monthly_expiry(d.year, d.month)
            if timedelta(days=1) <= d - monthly <= timedelta(days=2):
                out[expiry == np.datetime64(d, "D")] = np.datetime64(monthly, "D")
    return out


def _is_monthly(expiry: np.ndarray) -> np.ndarray:
    calendar = default_calendar()
    monthly = np.zeros(len(expiry), dtype=bool)
    for d in np.unique(expiry[~np.isnat(expiry)]).tolist():
        if calendar.monthly_expiry(d.year, d.month) == d:
            monthly |= expiry == np.datetime64(d, "D")
    return monthly


def _leading_root(values: np.ndarray) -> np.ndarray:
    text = pd.Series(np.asarray(values, dtype=object), dtype=object).astype(str)
    return text.str.extract(r"^\s*[.^$]?([A-Za-z]*)", expand=False).fillna("").str.upper().to_numpy(dtype=str)


def _roots(text: list[np.ndarray], index: dict[str, int], expiry: np.ndarray, errors: RowErrors) -> np.ndarray:
    """uint8 root codes from optionroot / optionalias and the expiry (rules in the module docstring)."""
    given = [(name, text[index[name]], _leading_root(text[index[name]])) for name in _ROOT_COLUMNS if name in index]
    pm = np.zeros(len(expiry), dtype=bool)
    am = np.zeros(len(expiry), dtype=bool)
    for _, _, roots in given:
        pm |= np.isin(roots, _PM_ROOTS)
        am |= roots == Root.SPX.value
    for name, raw, roots in given:
        unknown = (roots != "") & ~np.isin(roots, (*_PM_ROOTS, Root.SPX.value)) & ~pm & ~am
        errors.mark(unknown, lambda i, raw=raw, name=name: f"{name} {raw[i]!r} is not an SPX or SPXW option "
                                                           f"(this importer stores SPX-family chains)")
    spx = ~pm & _is_monthly(expiry)
    return np.where(spx, _CODE[Root.SPX.value], _CODE[Root.SPXW.value]).astype(np.uint8)


def _parse_chunk(text: list[np.ndarray], index: dict[str, int], lines: np.ndarray):
    errors = RowErrors(lines)
    col = lambda name: text[index[name]]
    if "underlying" in index:
        und = _leading_root(col("underlying"))
        raw_und = np.char.upper(np.char.strip(col("underlying").astype(str)))
        errors.mark(~np.isin(und, _UNDERLYINGS) & ~np.isin(raw_und, _UNDERLYINGS),
                    lambda i: f"underlying {col('underlying')[i]!r} is not SPX (this importer stores SPX-family "
                              f"chains)")
    qdate, qtime = _parse_dates(col("quotedate"), "quotedate", errors)
    check_days(qdate, "quotedate", errors)
    expiry, _ = _parse_dates(col("expiration"), "expiration", errors)
    expiry = _saturday_to_monthly(expiry)
    strike = to_float(col("strike"), "strike", errors, required=True)
    check_strike(strike, "strike", errors, col("strike"))
    right = np.char.upper(np.char.strip(col("type").astype(str)))
    is_call = np.isin(right, ("C", "CALL"))
    errors.mark(~is_call & ~np.isin(right, ("P", "PUT")), lambda i: f"type {col('type')[i]!r} is not call or put")
    check_expiry(expiry, qdate, "expiration", errors, quote_name="quotedate")
    cols = {"expiry": expiry, "strike": strike, "is_call": is_call}
    for name in ("bid", "ask", "last"):
        if name in index:
            cols[name] = to_float(col(name), name, errors)
            check_price(cols[name], name, errors, col(name))
    for name, field in (("volume", "volume"), ("open_interest", "openinterest")):
        if field in index:
            cols[name] = to_int(col(field), field, errors)
    if "impliedvol" in index:
        iv = to_float(col("impliedvol"), "impliedvol", errors)
        cols["vendor_iv"] = np.where(iv > 0, iv, np.nan)
    if "delta" in index:
        cols["vendor_delta"] = to_float(col("delta"), "delta", errors, non_negative=False)
    ulast = to_float(col("underlying_last"), "underlying_last", errors, required=True)
    check_index_price(ulast, "underlying_last", errors, col("underlying_last"))
    cols["root"] = _roots(text, index, expiry, errors)
    return cols, qdate, qtime, ulast, errors
