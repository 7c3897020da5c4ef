"""Cboe DataShop "Option EOD Summary" CSV: one chain snapshot per quote date, at 15:45 ET.

The header may start with a UTF-8 BOM. Required columns: ``quote_date, expiration, strike, option_type,
bid_1545, ask_1545, underlying_bid_1545, underlying_ask_1545``; used when present: ``root``,
``bid_size_1545, ask_size_1545, trade_volume, open_interest, close`` (as last),
``implied_volatility_1545, delta_1545`` (vendor IV/delta).

Underlying price: the mid of ``underlying_bid_1545``/``underlying_ask_1545`` (median over the date's rows,
which all carry the same pair), stored with the bid and ask.

Root (the files without a ``root`` column do not say SPX or SPXW), in this order:
  1. ``DataShopOptions(root=...)`` (CLI ``--root``) when given: every row gets that root;
  2. the file's ``root`` column when present (SPX, SPXW; anything else is rejected);
  3. a file name starting with ``spxw`` (as Cboe names SPXW downloads): SPXW;
  4. otherwise by expiry: a monthly expiry (third Friday, or the Thursday before a Friday holiday) is
     SPX (AM-settled), every other expiry SPXW. Note SPXW also lists PM contracts on those
     Fridays, so a mixed file without a root column cannot be split correctly: pass ``--root``.

A header that names a column twice fails the file (which copy is meant cannot be known). Rows with
implausible values (a quote date before 1983 or in the future, an expiry before the quote date or
more than ten years after it, a strike or index level outside (0, 1,000,000]) are rejected.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

import numpy as np

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
    to_date,
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

__all__ = ["SNAPSHOT_TIME", "DataShopOptions", "default_options", "import_path"]

#: The DataShop "_1545" fields are the 15:45 ET market; every snapshot is stamped then.
SNAPSHOT_TIME = time(15, 45)
REQUIRED = ("quote_date", "expiration", "strike", "option_type", "bid_1545", "ask_1545",
            "underlying_bid_1545", "underlying_ask_1545")
_CHUNK_ROWS = 50_000
_ROOT_CODE = {r.value: np.uint8(i) for i, r in enumerate(ROOTS)}


@dataclass(frozen=True, slots=True)
class DataShopOptions:
    """Options for the DataShop importer.

    Attributes:
        root: force this root for every row (None: the root column, then the file name, then the
            monthly-expiry rule; see the module docstring).
    """

    root: Root | None = None

    def __post_init__(self) -> None:
        if self.root is not None:
            object.__setattr__(self, "root", Root(self.root))


def default_options() -> DataShopOptions:
    return DataShopOptions()


def import_path(sink: FileSink, path: Path, options: DataShopOptions) -> None:
    with open(path, "rb") as raw:
        stream = io.TextIOWrapper(CountingReader(raw, sink.read_bytes), encoding="utf-8-sig", newline="")
        try:
            _import_stream(sink, path, stream, options)
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                  f"is this really a Cboe DataShop CSV?") from None


def _header(path: Path, stream: io.TextIOBase) -> list[str]:
    first = read_physical_line(stream)
    try:
        header = [h.strip().lower() for h in split_line(first[0] if first else "")]
    except csv.Error as exc:
        raise ImportFileError(f"{path}: line 1 (the header): {quoting_reason(exc)}") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ImportFileError(
            f"{path}: not a Cboe DataShop Option EOD Summary file: header lacks {', '.join(missing)} "
            f"(expected a header like {','.join(REQUIRED)},...); check --format")
    if twice := duplicated(header):
        name, where = next(iter(twice.items()))
        raise ImportFileError(f"{path}: line 1 (the header) names column {name!r} more than once (columns "
                              f"{', '.join(map(str, where))}); remove the extra column so each value has one meaning")
    return header


def _import_stream(sink: FileSink, path: Path, stream: io.TextIOBase, options: DataShopOptions) -> None:
    header = _header(path, stream)
    index = {name: i for i, name in enumerate(header)}
    root_rule = _root_rule(path, index, options)
    under: dict[date, list[np.ndarray]] = {}

    def parse(text, lines):
        cols, qdate, ubid, uask, errors = _parse_chunk(text, index, lines, root_rule)
        return cols, qdate, (ubid, uask), errors

    def collect(key: date, extra: tuple[np.ndarray, np.ndarray], sel: np.ndarray) -> None:
        ubid, uask = extra
        under.setdefault(key, []).append(np.stack([ubid[sel], uask[sel]]))

    stream_by_quote_date(
        sink, stream, ncols=len(header), chunk_rows=_CHUNK_ROWS, parse=parse, collect=collect,
        flush=lambda buffer, key: _flush(sink, buffer, under, key),
        again=lambda qd: f"quote_date {qd} appears again after other dates; sort the file by quote_date")


def _flush(sink: FileSink, buffer: ChainBuffer, under: dict, key: date) -> None:
    cols, _ = buffer.pop(key, sink.reject)
    pairs = np.concatenate(under.pop(key), axis=1)
    ubid, uask = (float(np.nanmedian(pairs[0])), float(np.nanmedian(pairs[1])))
    time_ns = to_ns(datetime.combine(key, SNAPSHOT_TIME, tzinfo=ET))
    snap = build_snapshot(cols, time_ns=time_ns, underlying_price=0.5 * (ubid + uask),
                          underlying_bid=ubid, underlying_ask=uask)
    sink.add_snapshot(snap)


def _parse_chunk(text: list[np.ndarray], index: dict[str, int], lines: np.ndarray, root_rule):
    errors = RowErrors(lines)
    col = lambda name: text[index[name]]
    qdate = to_date(col("quote_date"), "quote_date", errors)
    check_days(qdate, "quote_date", errors)
    expiry = to_date(col("expiration"), "expiration", errors)
    strike = to_float(col("strike"), "strike", errors, required=True)
    check_strike(strike, "strike", errors, col("strike"))
    right = np.char.upper(np.char.strip(col("option_type").astype(str)))
    is_call = np.isin(right, ("C", "CALL"))
    errors.mark(~is_call & ~np.isin(right, ("P", "PUT")),
                lambda i: f"option_type {col('option_type')[i]!r} is not C or P")
    check_expiry(expiry, qdate, "expiration", errors, quote_name="quote_date")
    cols = {"expiry": expiry, "strike": strike, "is_call": is_call}
    for name, field in (("bid", "bid_1545"), ("ask", "ask_1545")):
        cols[name] = to_float(col(field), field, errors)
        check_price(cols[name], field, errors, col(field))
    for name, field in (("bid_size", "bid_size_1545"), ("ask_size", "ask_size_1545"),
                        ("volume", "trade_volume"), ("open_interest", "open_interest")):
        if field in index:
            cols[name] = to_int(col(field), field, errors)
    optional = (("last", "close", True), ("vendor_iv", "implied_volatility_1545", True),
                ("vendor_delta", "delta_1545", False))
    for name, field, positive in optional:
        if field in index:
            cols[name] = to_float(col(field), field, errors, non_negative=positive)
            if name == "last":
                check_price(cols[name], field, errors, col(field))
    ubid = to_float(col("underlying_bid_1545"), "underlying_bid_1545", errors, required=True)
    uask = to_float(col("underlying_ask_1545"), "underlying_ask_1545", errors, required=True)
    check_index_price(ubid, "underlying_bid_1545", errors, col("underlying_bid_1545"))
    check_index_price(uask, "underlying_ask_1545", errors, col("underlying_ask_1545"))
    cols["root"] = root_rule(text, expiry, errors)
    return cols, qdate, ubid, uask, errors


def _root_rule(path: Path, index: dict[str, int], options: DataShopOptions):
    """A function ``(text columns, expiry, errors) -> uint8 root codes`` for this file."""
    if options.root is not None:
        code = _ROOT_CODE[options.root.value]
        return lambda text, expiry, errors: np.full(len(expiry), code, dtype=np.uint8)
    if "root" in index:
        return lambda text, expiry, errors: _root_column(text[index["root"]], errors)
    if path.name.lower().startswith("spxw"):
        code = _ROOT_CODE[Root.SPXW.value]
        return lambda text, expiry, errors: np.full(len(expiry), code, dtype=np.uint8)
    return lambda text, expiry, errors: _root_by_expiry(expiry)


def _root_column(values: np.ndarray, errors: RowErrors) -> np.ndarray:
    roots = np.char.upper(np.char.strip(values.astype(str)))
    roots = np.where(np.char.startswith(roots, "^"), np.char.lstrip(roots, "^"), roots)
    known = np.isin(roots, list(_ROOT_CODE))
    errors.mark(~known, lambda i: f"root {values[i]!r} is not one of {', '.join(_ROOT_CODE)}")
    codes = np.zeros(len(roots), dtype=np.uint8)
    for name, code in _ROOT_CODE.items():
        codes[roots == name] = code
    return codes


def _root_by_expiry(expiry: np.ndarray) -> np.ndarray:
    calendar = default_calendar()
    codes = np.full(len(expiry), _ROOT_CODE[Root.SPXW.value], dtype=np.uint8)
    for d in np.unique(expiry[~np.isnat(expiry)]).tolist():
        if calendar.monthly_expiry(d.year, d.month) == d:
            codes[expiry == np.datetime64(d, "D")] = _ROOT_CODE[Root.SPX.value]
    return codes
