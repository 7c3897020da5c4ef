"""QuantConnect LEAN minute zips: SPX/SPXW option quote bars and SPX index trade bars.

Option quote zips (``YYYYMMDD_quote_european.zip``) hold one CSV per contract named
``YYYYMMDD_spxw_minute_quote_european_{call|put}_{strike x10000}_{expiry YYYYMMDD}.csv``; rows are
``ms since midnight ET, bid open, high, low, close, bid size, ask open, high, low, close, ask size`` with
prices x10000. Each minute becomes one snapshot holding every contract quoted in that minute, priced at
the bar *close* bid/ask; since a close is only known when the bar ends, the snapshot (and quote) time
is the bar start + 1 minute. The underlying price is the SPX index bar close of the same minute from
the store (or, failing that, the latest earlier index bar of that day); NaN when there is none.

Index trade zips (``YYYYMMDD_trade.zip`` with ``YYYYMMDD_spx_minute_trade.csv``: ms, open, high, low,
close, volume) become ``SPX`` bars (``time`` = bar start). Two quirks of these files, handled explicitly:
    * the times are one hour early: the first bar sits at 08:30 and the 16:00 ET closing print at
      15:00 (Chicago time). ``LeanOptions.index_shift_minutes=None`` (auto) shifts by +60 minutes when the
      first bar of the day starts at 08:30, else 0; pass an explicit value to override;
    * the index prices are plain index points, not x10000 like the option files; a file whose median
      close is above 100,000 is taken as x10000 and scaled.

:func:`import_order` imports index zips before quote zips, so quotes of the same call find their bars.
A zip may hold both kinds. Members are streamed one at a time into flat numeric columns (about
40 bytes per quote held until the zip is read; a zip declaring more than :data:`MAX_INFLATED_BYTES`
is refused), then one snapshot is written per minute. A member that cannot be read (bad CRC,
corrupt data, encrypted, not text), whose name is implausible (a day before 1983, an expiry before
the day or more than ten years after it, strike 0) or that repeats another member's name is
rejected by name and the rest of the zip imports; a repeated minute (or index bar) in a member is
rejected naming the line kept.
"""

from __future__ import annotations

import io
import lzma
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from spx_core.domain.calendar import ET, to_ns
from spx_core.domain.contracts import ROOTS
from spx_core.marketdata.importers.base import FileSink, HeldRejections, ImportFileError
from spx_core.marketdata.importers.chains import UNDERLYING, build_snapshot, dedupe_rows
from spx_core.marketdata.importers.parsing import RowErrors, read_csv_chunks, to_float, to_int
from spx_core.marketdata.importers.plausible import (EARLIEST_DAY, MAX_EXPIRY_YEARS, MAX_PRICE, check_index_price,
                                                     check_price, latest_day)

__all__ = ["LeanOptions", "default_options", "import_order", "import_path", "PRICE_SCALE"]

#: LEAN stores option prices as integers of 1/10000 point.
PRICE_SCALE = 10_000.0
_MINUTE_MS = 60_000
_DAY_MS = 86_400_000
_NS_PER_MS = 1_000_000
_OPEN_MS = (9 * 60 + 30) * _MINUTE_MS
_SCALED_INDEX_ABOVE = 100_000.0
_QUOTE = re.compile(r"^(?P<day>\d{8})_(?P<root>spxw|spx)_minute_quote_(?:european|american)_"
                    r"(?P<right>call|put)_(?P<strike>\d+)_(?P<expiry>\d{8})\.csv$", re.I)
_TRADE = re.compile(r"^(?P<day>\d{8})_(?P<symbol>spx)_minute_trade\.csv$", re.I)
_ROOT_CODE = {r.value: i for i, r in enumerate(ROOTS)}
_CHUNK_ROWS = 50_000
_EPOCH = date(1970, 1, 1)
#: Refuse zips that declare more inflated bytes than this: a real LEAN day of SPXW quotes inflates to
#: a few hundred MB at most, and the parsed quotes are held until the zip is read (~1/3 of the text).
MAX_INFLATED_BYTES = 2 << 30
#: What can go wrong reading one member of an otherwise good zip (bad CRC, corrupt deflate stream,
#: truncation, encryption, bytes that are not text); that member is rejected by name.
_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, RuntimeError,
                  NotImplementedError, UnicodeDecodeError)


@dataclass(frozen=True, slots=True)
class LeanOptions:
    """Options for the LEAN importer.

    Attributes:
        index_shift_minutes: minutes added to index bar times (None: auto, +60 when the first bar
            of a day starts at 08:30, else 0).
    """

    index_shift_minutes: int | None = None


def default_options() -> LeanOptions:
    return LeanOptions()


def import_order(paths: list[Path]) -> list[int]:
    """Index trade zips first (their bars price the option snapshots), then by name."""
    return sorted(range(len(paths)), key=lambda i: ("_trade" not in paths[i].name.lower(), paths[i].name))


def import_path(sink: FileSink, path: Path, options: LeanOptions) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise ImportFileError(f"{path}: not a zip archive ({exc}); LEAN minute data comes as "
                              f"YYYYMMDD_quote_european.zip / YYYYMMDD_trade.zip") from None
    with archive:
        quotes, trades = _members(sink, path, archive)
        own_bars = [bars for info, m in trades if (bars := _import_trades(sink, archive, info, m, options)) is not None]
        if quotes:
            _import_quotes(sink, archive, quotes, own_bars)


def _members(sink: FileSink, path: Path, archive: zipfile.ZipFile) -> tuple[list, list]:
    """The quote and trade members worth reading; every other member is rejected by name."""
    quotes, trades, seen = [], [], {}
    inflated = sum(info.file_size for info in archive.infolist())
    if inflated > MAX_INFLATED_BYTES:
        raise ImportFileError(f"{path}: its members inflate to {inflated / 2**30:.1f} GiB, more than the "
                              f"{MAX_INFLATED_BYTES / 2**30:.0f} GiB a LEAN day zip needs; split it into days")
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = Path(info.filename).name
        if (m := _QUOTE.match(name)) or (m := _TRADE.match(name)):
            if problem := _member_problem(m):
                sink.reject(0, f"{name}: {problem}; skipped")
            elif name.lower() in seen:
                sink.reject(0, f"{name}: appears twice in the zip (entries {seen[name.lower()]} and "
                               f"{info.filename}); the first is imported, this one skipped")
            else:
                seen[name.lower()] = info.filename
                (quotes if "_quote_" in name.lower() else trades).append((info, m))
        else:
            sink.reject(0, f"{name}: not a LEAN SPX/SPXW minute quote or SPX minute trade CSV; skipped")
    if not quotes and not trades:
        raise ImportFileError(f"{path}: no LEAN minute CSVs inside (expected names like "
                              f"20210104_spxw_minute_quote_european_call_37000000_20210104.csv)")
    return quotes, trades


def _member_problem(m: re.Match) -> str | None:
    """Why a member's name (its day, expiry, strike) cannot describe real quotes, or None."""
    try:
        day = datetime.strptime(m["day"], "%Y%m%d").date()
        expiry = datetime.strptime(m["expiry"], "%Y%m%d").date() if "expiry" in m.re.groupindex else day
    except ValueError as exc:
        return f"its name does not hold valid dates ({exc})"
    if not EARLIEST_DAY <= day <= latest_day():
        return f"its day {day} is not a plausible quote date ({EARLIEST_DAY} to {latest_day()})"
    if expiry < day:
        return f"it expires on {expiry}, before its quote day {day} (expired series)"
    if (expiry - day).days > 366 * MAX_EXPIRY_YEARS:
        return f"it expires on {expiry}, more than {MAX_EXPIRY_YEARS} years after its quote day {day}"
    if "strike" in m.re.groupindex and not 0 < int(m["strike"]) / PRICE_SCALE <= MAX_PRICE:
        return f"its strike {int(m['strike']) / PRICE_SCALE:g} is not a plausible strike"
    return None


def _read_member(sink: FileSink, archive: zipfile.ZipFile, info: zipfile.ZipInfo, ncols: int,
                 parse: Callable[[np.ndarray, list[np.ndarray], RowErrors], dict[str, np.ndarray]]):
    """Stream one member through ``parse`` chunk by chunk: ``(lines, columns)`` of its good rows, or None.

    Row rejections are held until the member has been read to its end, so a member that turns out to
    be corrupt half-way is rejected once, by name, and nothing of it is kept.
    """
    name = Path(info.filename).name
    held = HeldRejections(prefix=lambda line: f"{name} line {line}: ")
    pieces, rows = [], 0
    try:
        with archive.open(info) as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            for lines, cols in read_csv_chunks(text, ncols=ncols, chunk_rows=_CHUNK_ROWS, first_line=1,
                                               on_reject=held.count_and_add, fields_hint=f"expected {ncols}"):
                rows += len(lines)
                errors = RowErrors(lines)
                values = parse(lines, cols, errors)
                held.add_all(errors.rejections())
                good = ~errors.bad
                pieces.append((lines[good], {k: v[good] for k, v in values.items()}))
    except _MEMBER_ERRORS as exc:
        sink.reject(0, f"{name}: cannot be read ({type(exc).__name__}: {exc}); member skipped, the rest of "
                       f"the zip imports")
        return None
    finally:
        sink.read_bytes(info.compress_size)
    sink.count_rows(rows + held.rows)
    held.flush(sink)
    if not pieces:
        return np.empty(0, np.int64), {}
    keys = pieces[0][1].keys()
    return (np.concatenate([p[0] for p in pieces]),
            {k: np.concatenate([p[1][k] for p in pieces]) for k in keys})


def _times(text: np.ndarray, errors: RowErrors) -> np.ndarray:
    ms = to_float(text, "time", errors, required=True)
    with np.errstate(invalid="ignore"):
        errors.mark((ms >= _DAY_MS) | (np.fmod(ms, _MINUTE_MS) != 0),
                    lambda i: f"time {text[i]!r} ms is not a minute of the day")
    return np.where(np.isfinite(ms) & (np.abs(ms) < _DAY_MS), ms, 0).astype(np.int64)  # bad rows are marked


def _first_of_each(key: np.ndarray, lines: np.ndarray, held: Callable[[int, str], None], what: str) -> np.ndarray:
    """Indices of the first row of each ``key`` value; later repeats are rejected naming the kept line."""
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    keep = np.zeros(len(key), dtype=bool)
    keep[first] = True
    for i in np.flatnonzero(~keep).tolist():
        held(int(lines[i]), f"{what} {int(key[i]) // _MINUTE_MS // 60:02d}:{int(key[i]) // _MINUTE_MS % 60:02d} "
                            f"is already on line {int(lines[first[inverse[i]]])}; kept that one")
    return np.flatnonzero(keep)


def _parse_trades(lines: np.ndarray, text: list[np.ndarray], errors: RowErrors) -> dict[str, np.ndarray]:
    out = {"ms": _times(text[0], errors)}
    for i, label in ((1, "open"), (2, "high"), (3, "low"), (4, "close")):
        out[label] = to_float(text[i], label, errors, required=True)
    out["volume"] = to_int(text[5], "volume", errors).astype(np.int64)
    return out


def _import_trades(sink: FileSink, archive, info, match, options: LeanOptions) -> pd.DataFrame | None:
    name = Path(info.filename).name
    read = _read_member(sink, archive, info, 6, _parse_trades)
    if read is None or not len(read[0]):
        return None
    lines, v = read
    reject = lambda line, reason: sink.reject(line, f"{name} line {line}: {reason}")  # noqa: E731
    keep = _first_of_each(v["ms"], lines, reject, "the bar at raw time")
    scale = PRICE_SCALE if np.median(v["close"][keep]) > _SCALED_INDEX_ABOVE else 1.0
    errors = RowErrors(lines[keep])  # plausible levels can only be judged once the scale is known
    for label in ("open", "high", "low", "close"):
        check_index_price(v[label][keep] / scale, label, errors)
    for line, reason in errors.rejections():
        reject(line, reason)
    keep = keep[~errors.bad]
    if not len(keep):
        return None
    v = {k: a[keep] for k, a in v.items()}
    shift = options.index_shift_minutes
    if shift is None:
        shift = 60 if int(v["ms"].min()) == _OPEN_MS - 60 * _MINUTE_MS else 0
    midnight = to_ns(datetime.strptime(match["day"], "%Y%m%d").replace(tzinfo=ET))
    bars = pd.DataFrame({"time": (midnight + (v["ms"] + shift * _MINUTE_MS) * _NS_PER_MS).astype(np.int64),
                         **{k: v[k] / scale for k in ("open", "high", "low", "close")}, "volume": v["volume"]})
    bars = bars.sort_values("time", kind="stable").reset_index(drop=True)
    sink.add_bars(match["symbol"].upper(), bars)
    return bars


def _parse_quotes(lines: np.ndarray, text: list[np.ndarray], errors: RowErrors) -> dict[str, np.ndarray]:
    out = {"ms": _times(text[0], errors)}
    for key, i, label in (("bid", 4, "bid close"), ("ask", 9, "ask close")):
        out[key] = to_float(text[i], label, errors) / PRICE_SCALE
        check_price(out[key], label, errors, text[i])
    out["bid_size"] = to_int(text[5], "bid size", errors)
    out["ask_size"] = to_int(text[10], "ask size", errors)
    return out


def _import_quotes(sink: FileSink, archive, quotes, own_bars: list[pd.DataFrame]) -> None:
    """Read every quote member into flat columns, then write one snapshot per (day, minute)."""
    contracts, parts = [], []
    for info, m in quotes:
        name = Path(info.filename).name
        read = _read_member(sink, archive, info, 11, _parse_quotes)
        if read is None or not len(read[0]):
            continue
        lines, v = read
        keep = _first_of_each(v["ms"], lines, lambda line, reason, name=name: sink.reject(
            line, f"{name} line {line}: {reason}"), "the minute")
        day = _epoch_day(m["day"])
        parts.append({"key": day * _DAY_MS + v["ms"][keep], "contract": np.full(len(keep), len(contracts), np.int32),
                      "line": lines[keep].astype(np.int32),
                      **{k: v[k][keep] for k in ("bid", "ask", "bid_size", "ask_size")}})
        expiry = np.datetime64(datetime.strptime(m["expiry"], "%Y%m%d").date(), "D")
        contracts.append((_ROOT_CODE[m["root"].upper()], expiry, int(m["strike"]) / PRICE_SCALE,
                          m["right"].lower() == "call"))
    if not parts:
        return
    flat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    del parts
    _write_minutes(sink, flat, contracts, _index_closes(sink, flat["key"], own_bars))


def _write_minutes(sink: FileSink, flat: dict[str, np.ndarray], contracts: list, closes: pd.Series) -> None:
    layout = {"root": np.array([c[0] for c in contracts], dtype=np.uint8),
              "expiry": np.array([c[1] for c in contracts], dtype="datetime64[D]"),
              "strike": np.array([c[2] for c in contracts], dtype=np.float64),
              "is_call": np.array([c[3] for c in contracts], dtype=bool)}
    order = np.argsort(flat["key"], kind="stable")
    keys = flat["key"][order]
    bounds = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1], True])
    midnights: dict[int, int] = {}
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        idx = order[lo:hi]
        which = flat["contract"][idx]
        cols = {k: v[which] for k, v in layout.items()} | {k: flat[k][idx] for k in ("bid", "ask", "bid_size",
                                                                                     "ask_size")}
        keep = dedupe_rows(cols, flat["line"][idx], sink.reject)  # members are distinct contracts: a no-op
        cols = {k: v[keep] for k, v in cols.items()}
        day, ms = divmod(int(keys[lo]), _DAY_MS)
        if day not in midnights:
            midnights[day] = to_ns(datetime.combine(_EPOCH + timedelta(days=day), time(0), tzinfo=ET))
        start_ns = midnights[day] + ms * _NS_PER_MS
        sink.add_snapshot(build_snapshot(cols, time_ns=start_ns + _MINUTE_MS * _NS_PER_MS,
                                         underlying_price=_close_asof(closes, start_ns)))


def _index_closes(sink: FileSink, keys: np.ndarray, own_bars: list[pd.DataFrame]) -> pd.Series:
    """Index closes by bar-start ns for the days in ``keys``: bars in this zip plus bars already stored."""
    times = [_as_ns(b["time"]) for b in own_bars if len(b)]
    closes = [b["close"].to_numpy(dtype=np.float64) for b in own_bars if len(b)]
    for day in np.unique(keys // _DAY_MS).tolist():
        stored = _stored_bars(sink, _EPOCH + timedelta(days=day))
        if stored is not None and len(stored):
            times.append(_as_ns(stored["time"]))
            closes.append(stored["close"].to_numpy(dtype=np.float64))
    if not times:
        return pd.Series(dtype=np.float64)
    series = pd.Series(np.concatenate(closes), index=np.concatenate(times))
    return series.groupby(level=0).first().sort_index()  # this zip's own bar wins over a stored one


def _epoch_day(yyyymmdd: str) -> int:
    """Days since 1970-01-01 of a member name's date (the minute keys are day * ms-per-day + ms)."""
    return (datetime.strptime(yyyymmdd, "%Y%m%d").date() - _EPOCH).days


def _stored_bars(sink: FileSink, day: date) -> pd.DataFrame | None:
    start = datetime(day.year, day.month, day.day, tzinfo=ET)
    end = datetime(day.year, day.month, day.day, 23, 59, tzinfo=ET)
    return sink.store.load_bars(UNDERLYING, start=start, end=end)


def _as_ns(column: pd.Series) -> np.ndarray:
    if isinstance(column.dtype, pd.DatetimeTZDtype) or column.dtype.kind == "M":
        return pd.DatetimeIndex(pd.to_datetime(column, utc=True)).as_unit("ns").asi8
    return column.to_numpy(dtype=np.int64)


def _close_asof(closes: pd.Series, start_ns: int) -> float:
    """The index close of the bar starting at ``start_ns``, else the latest earlier bar of that day."""
    if closes.empty:
        return float("nan")
    times = closes.index.to_numpy()
    i = int(np.searchsorted(times, start_ns, side="right")) - 1
    if i < 0 or start_ns - times[i] >= _DAY_MS * _NS_PER_MS // 2:
        return float("nan")
    return float(closes.iloc[i])
