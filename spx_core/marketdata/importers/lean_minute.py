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
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from spx_core.domain.calendar import ET, to_ns
from spx_core.domain.contracts import ROOTS
from spx_core.marketdata.importers.base import FileSink, ImportFileError
from spx_core.marketdata.importers.chains import UNDERLYING, ChainBuffer, build_snapshot
from spx_core.marketdata.importers.parsing import RowErrors, columns_of, read_csv_chunks, to_float, to_int

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
    except zipfile.BadZipFile as exc:
        raise ImportFileError(f"{path}: not a zip archive ({exc}); LEAN minute data comes as "
                              f"YYYYMMDD_quote_european.zip / YYYYMMDD_trade.zip") from None
    with archive:
        quotes, trades = [], []
        for info in archive.infolist():
            if info.is_dir():
                continue
            name = Path(info.filename).name
            if m := _QUOTE.match(name):
                quotes.append((info, m))
            elif m := _TRADE.match(name):
                trades.append((info, m))
            else:
                sink.reject(0, f"{name}: not a LEAN SPX/SPXW minute quote or SPX minute trade CSV; skipped")
        if not quotes and not trades:
            raise ImportFileError(f"{path}: no LEAN minute CSVs inside (expected names like "
                                  f"20210104_spxw_minute_quote_european_call_37000000_20210104.csv)")
        own_bars = [_import_trades(sink, archive, info, m, options) for info, m in trades]
        if quotes:
            _import_quotes(sink, archive, quotes, own_bars)


def _member_rows(sink: FileSink, archive: zipfile.ZipFile, info: zipfile.ZipInfo, ncols: int):
    name = Path(info.filename).name

    def short(line: int, row: list[str]) -> None:
        sink.count_rows(1)
        sink.reject(line, f"{name} line {line}: has {len(row)} fields, expected {ncols}")

    with archive.open(info) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        chunks = list(read_csv_chunks(text, ncols=ncols, chunk_rows=1 << 20, first_line=1, on_short=short))
    sink.read_bytes(info.compress_size)
    if not chunks:
        return np.empty(0, np.int64), [np.empty(0, object) for _ in range(ncols)]
    lines = np.concatenate([c[0] for c in chunks])
    rows = [r for c in chunks for r in c[1]]
    sink.count_rows(len(rows))
    return lines, columns_of(rows, ncols)


def _report(sink: FileSink, name: str, errors: RowErrors) -> None:
    for line, reason in errors.rejections():
        sink.reject(line, f"{name} line {line}: {reason}")


def _times(text: np.ndarray, errors: RowErrors) -> np.ndarray:
    ms = to_float(text, "time", errors, required=True)
    with np.errstate(invalid="ignore"):
        errors.mark((ms >= _DAY_MS) | (np.fmod(ms, _MINUTE_MS) != 0),
                    lambda i: f"time {text[i]!r} ms is not a minute of the day")
    return np.where(np.isfinite(ms), ms, 0).astype(np.int64)


def _import_trades(sink: FileSink, archive, info, match, options: LeanOptions) -> pd.DataFrame:
    name = Path(info.filename).name
    lines, text = _member_rows(sink, archive, info, 6)
    errors = RowErrors(lines)
    ms = _times(text[0], errors)
    prices = [to_float(text[i], label, errors, required=True) for i, label in
              ((1, "open"), (2, "high"), (3, "low"), (4, "close"))]
    volume = to_int(text[5], "volume", errors)
    _report(sink, name, errors)
    good = ~errors.bad
    if not good.any():
        return pd.DataFrame(columns=["time", "open", "high", "low", "close", "volume"])
    scale = PRICE_SCALE if np.median(prices[3][good]) > _SCALED_INDEX_ABOVE else 1.0
    shift = options.index_shift_minutes
    if shift is None:
        shift = 60 if int(ms[good].min()) == _OPEN_MS - 60 * _MINUTE_MS else 0
    midnight = to_ns(datetime.strptime(match["day"], "%Y%m%d").replace(tzinfo=ET))
    times = midnight + (ms[good] + shift * _MINUTE_MS) * _NS_PER_MS
    bars = pd.DataFrame({"time": times.astype(np.int64), "open": prices[0][good] / scale,
                         "high": prices[1][good] / scale, "low": prices[2][good] / scale,
                         "close": prices[3][good] / scale, "volume": volume[good].astype(np.int64)})
    bars = bars.sort_values("time", kind="stable").drop_duplicates("time", keep="first").reset_index(drop=True)
    sink.add_bars(match["symbol"].upper(), bars)
    return bars


def _import_quotes(sink: FileSink, archive, quotes, own_bars: list[pd.DataFrame]) -> None:
    buffer = ChainBuffer()
    days: set[str] = set()
    for info, m in quotes:
        name = Path(info.filename).name
        days.add(m["day"])
        lines, text = _member_rows(sink, archive, info, 11)
        errors = RowErrors(lines)
        ms = _times(text[0], errors)
        cols = {"bid": to_float(text[4], "bid close", errors) / PRICE_SCALE,
                "bid_size": to_int(text[5], "bid size", errors),
                "ask": to_float(text[9], "ask close", errors) / PRICE_SCALE,
                "ask_size": to_int(text[10], "ask size", errors)}
        _report(sink, name, errors)
        good = ~errors.bad
        n = int(good.sum())
        layout = {"root": np.full(n, _ROOT_CODE[m["root"].upper()], np.uint8),
                  "expiry": np.full(n, np.datetime64(datetime.strptime(m["expiry"], "%Y%m%d").date(), "D")),
                  "strike": np.full(n, int(m["strike"]) / PRICE_SCALE),
                  "is_call": np.full(n, m["right"].lower() == "call")}
        minute_ms = ms[good]
        for minute in np.unique(minute_ms).tolist():
            sel = minute_ms == minute
            chunk = {k: v[sel] for k, v in layout.items()} | {k: v[good][sel] for k, v in cols.items()}
            buffer.add((m["day"], minute), chunk, lines[good][sel])
    closes = _index_closes(sink, days, own_bars)
    for key in sorted(buffer.keys()):
        day, minute = key
        cols, _ = buffer.pop(key, sink.reject)
        start_ns = to_ns(datetime.strptime(day, "%Y%m%d").replace(tzinfo=ET)) + minute * _NS_PER_MS
        price = _close_asof(closes, start_ns)
        sink.add_snapshot(build_snapshot(cols, time_ns=start_ns + _MINUTE_MS * _NS_PER_MS, underlying_price=price))


def _index_closes(sink: FileSink, days: set[str], own_bars: list[pd.DataFrame]) -> pd.Series:
    """Index closes by bar-start ns for ``days``: bars in this zip plus bars already stored."""
    frames = [b for b in own_bars if len(b)]
    for day in sorted(days):
        d = datetime.strptime(day, "%Y%m%d").date()
        stored = _stored_bars(sink, d)
        if stored is not None and len(stored):
            frames.append(stored)
    if not frames:
        return pd.Series(dtype=np.float64)
    bars = pd.concat(frames, ignore_index=True)
    times = _as_ns(bars["time"])
    return pd.Series(bars["close"].to_numpy(dtype=np.float64), index=times).groupby(level=0).first().sort_index()


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
