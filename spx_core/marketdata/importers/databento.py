"""Databento DBN files (plain or zstd): OPRA CBBO-1m/1s (or BBO) quotes plus instrument definitions.

Records are decoded with ``databento_dbn.DBNDecoder`` from 1 MiB blocks (bounded memory) and:
    * ``InstrumentDefMsg``: ``raw_symbol`` (OCC, e.g. ``SPXW  210104C03700000``) -> contract; stored as
      instruments; SPX and SPXW only (other roots are rejected: they are not this chain's underlying);
    * ``SymbolMappingMsg`` and the metadata's symbol mappings (raw_symbol -> instrument_id) also name
      contracts, so a quote file whose definitions live elsewhere still resolves;
    * ``CBBOMsg``/``BBOMsg``: one snapshot per sample time ``ts_recv`` (the minute boundary for
      CBBO-1m) holding every contract sampled then, at ``levels[0]`` bid/ask/sizes; each quote's time is
      its ``ts_event`` (last update), so quotes older than the staleness limit are flagged STALE.

Definitions found in any file of one :func:`~spx_core.marketdata.importers.base.import_files` call are
used by the others (definition files are imported first). Each definition's instrument_id -> contract
mapping is also stored (``instrument_ids`` table, vendor ``databento:<dataset>``) for the UTC day of
its ``ts_recv``: OPRA re-assigns ids daily, and Databento's own symbology intervals are UTC days. A
quote file imported in a *later* call resolves ids not defined in its own call from those stored
mappings, for the UTC day of the quote's ``ts_recv`` (only committed, i.e. earlier, imports are seen).
A quote whose instrument_id has no definition either way is rejected and names the fix, as is one with
an unset or implausible ``ts_recv`` (the epoch), an expired or absurdly distant expiry, or a price
above 1,000,000. A corrupt record can make the (Rust) decoder panic: the file fails with one line
naming the record, and the panic's own report is kept off the terminal (:mod:`.native`).
The ``line`` of a DBN rejection is the 1-based record number. Underlying price: the stored SPX bar
close at or before the sample time on that day (OPRA carries no index), else NaN.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from spx_core.domain.calendar import ET
from spx_core.domain.contracts import ROOTS, OccSymbolError, OptionContract, Root
from spx_core.marketdata.importers.base import FATAL, FileSink, ImportFileError, not_a_regular_file
from spx_core.marketdata.importers.chains import UNDERLYING, ChainBuffer, build_snapshot
from spx_core.marketdata.importers.native import NativeStderr
from spx_core.marketdata.importers.plausible import (EARLIEST_DAY, MAX_EXPIRY_YEARS, MAX_PRICE, latest_day,
                                                     plausible_ns_bounds)
from spx_core.storage.records import VendorInstrumentId

__all__ = ["DatabentoOptions", "default_options", "import_order", "import_path"]

_BLOCK = 1 << 20
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_DBN_MAGIC = b"DBN"
_ACCEPTED_ROOTS = (Root.SPX, Root.SPXW)
_ROOT_CODE = {r: i for i, r in enumerate(ROOTS)}
_DAY_NS = 86_400 * 10**9
_MINUTE_NS = 60 * 10**9
_UNDEF_TS = 2**63  # databento_dbn.UNDEF_TIMESTAMP is 2**64 - 1; anything this large means "not set"


@dataclass(frozen=True, slots=True)
class DatabentoOptions:
    """Options for the DBN importer (none yet; kept for a uniform API)."""


def default_options() -> DatabentoOptions:
    return DatabentoOptions()


def _dbn():
    import databento_dbn  # imported lazily: only this format needs it

    return databento_dbn


def _decoder(path: Path, head: bytes):
    dbn = _dbn()
    if head.startswith(_ZSTD_MAGIC):
        return dbn.DBNDecoder(compression=dbn.Compression.ZSTD)
    if head.startswith(_DBN_MAGIC):
        return dbn.DBNDecoder()
    raise ImportFileError(f"{path}: not a DBN file (it starts with {head[:4]!r}, not 'DBN' or a zstd frame); "
                          f"export Databento data with encoding=dbn")


def import_order(paths: list[Path]) -> list[int]:
    """Definition files first (their contracts resolve the quote files' instrument ids)."""
    def is_definition(p: Path) -> bool:
        if not_a_regular_file(p):  # never open a FIFO or device here: import_path reports it
            return False
        try:
            with open(p, "rb") as fh:
                head = fh.read(64 * 1024)
            with NativeStderr() as native:
                meta = next((r for r in native.decode(_decoder(p, head), head) if isinstance(r, _dbn().Metadata)),
                            None)
        except FATAL:
            raise
        except BaseException:  # noqa: BLE001 - unreadable files (even a decoder panic) are reported by import_path
            return False
        return meta is not None and meta.schema == _dbn().Schema.DEFINITION
    return sorted(range(len(paths)), key=lambda i: (not is_definition(paths[i]), i))


class _Contracts:
    """instrument_id -> contract, possibly over date intervals (OPRA ids are re-assigned daily)."""

    def __init__(self) -> None:
        self._by_id: dict[int, list[tuple[int, int, tuple[int, np.datetime64, float, bool]]]] = {}

    def add(self, instrument_id: int, contract: OptionContract, start_ns: int = 0, end_ns: int = 2**63 - 1) -> None:
        key = (_ROOT_CODE[contract.root], np.datetime64(contract.expiry, "D"), contract.strike, contract.is_call)
        spans = self._by_id.setdefault(int(instrument_id), [])
        spans[:] = [s for s in spans if not (s[0] == start_ns and s[1] == end_ns)]
        spans.append((start_ns, end_ns, key))

    def get(self, instrument_id: int, ts_ns: int):
        for start, end, key in reversed(self._by_id.get(int(instrument_id), ())):
            if start <= ts_ns < end:
                return key
        return None


def _parse_occ(symbol: str) -> OptionContract:
    contract = OptionContract.from_occ(symbol)
    if contract.root not in _ACCEPTED_ROOTS:
        raise OccSymbolError(f"{symbol!r} is a {contract.root.value} option, not SPX/SPXW")
    return contract


def _metadata_mappings(meta, contracts: _Contracts) -> None:
    dbn = _dbn()
    if meta.stype_in != dbn.SType.RAW_SYMBOL or meta.stype_out != dbn.SType.INSTRUMENT_ID:
        return
    for raw, intervals in meta.mappings.items():
        try:
            contract = _parse_occ(raw)
        except (OccSymbolError, ValueError):
            continue  # only definitions and quotes are rows; a foreign mapping is just unused
        for iv in intervals:
            start = _date_ns(iv["start_date"])
            end = _date_ns(iv["end_date"]) if iv["end_date"] else 2**63 - 1
            if str(iv["symbol"]).isdigit():
                contracts.add(int(iv["symbol"]), contract, start, max(end, start + _DAY_NS))


def _utc_day_ns(ns: int) -> int:
    """Start (ns) of the UTC day holding ``ns``: the span a stored Databento id mapping is valid for."""
    return int(ns) - int(ns) % _DAY_NS


def _date_ns(d) -> int:
    return int(pd.Timestamp(d).tz_localize("UTC").value)


def import_path(sink: FileSink, path: Path, options: DatabentoOptions) -> None:
    dbn = _dbn()
    contracts: _Contracts = sink.shared.setdefault("dbn_contracts", _Contracts())
    state = _FileState(sink, contracts)
    with open(path, "rb") as fh, NativeStderr() as native:
        head = fh.read(_BLOCK)
        decoder = _decoder(path, head)
        block = head
        while block:
            sink.read_bytes(len(block))
            try:
                records = native.decode(decoder, block)
            except FATAL:
                raise
            except BaseException as exc:  # noqa: BLE001 - DBNError, or a Rust panic (pyo3 PanicException)
                what = str(exc) if isinstance(exc, dbn.DBNError) else f"the decoder failed: {native.panic or exc}"
                raise ImportFileError(f"{path}: cannot decode DBN data after record {state.n_records} ({what}); "
                                      f"the file is corrupt or not DBN - download it again") from None
            state.handle(records)
            block = fh.read(_BLOCK)
    leftover = len(decoder.buffer())
    if leftover:
        raise ImportFileError(f"{path}: truncated: {leftover} bytes after record {state.n_records} do not "
                              f"form a complete record; download the file again")
    if state.meta is None:
        raise ImportFileError(f"{path}: no DBN metadata header; this is not a complete DBN file")
    state.finish()


class _FileState:
    def __init__(self, sink: FileSink, contracts: _Contracts) -> None:
        self.sink = sink
        self.contracts = contracts
        self.meta = None
        self.n_records = 0
        self.buffer = ChainBuffer()
        self.ignored: Counter[str] = Counter()
        self.new_instruments: list[OptionContract] = []
        self.new_ids: dict[tuple[int, int], OptionContract] = {}  # (instrument_id, UTC day ns) -> contract
        self.looked_up: set[tuple[int, int]] = set()  # (instrument_id, UTC day ns) asked of the store
        self._bars: dict[str, pd.Series] = {}

    def handle(self, records: list) -> None:
        dbn = _dbn()
        quotes = []
        for rec in records:
            if isinstance(rec, dbn.Metadata):
                self.meta = rec
                try:
                    _metadata_mappings(rec, self.contracts)
                except dbn.DBNError as exc:
                    raise ImportFileError(f"{self.sink.path}: the DBN metadata header is corrupt ({str(exc)[:80]}); "
                                          f"download the file again") from None
                continue
            self.n_records += 1
            if isinstance(rec, (dbn.CBBOMsg, dbn.BBOMsg)):
                level = rec.levels[0]
                ts_event = rec.ts_event if rec.ts_event < _UNDEF_TS else 0
                ts_recv = rec.ts_recv if rec.ts_recv < _UNDEF_TS else 0  # unset: rejected as implausible
                quotes.append((self.n_records, rec.instrument_id, ts_recv, ts_event,
                               level.bid_px, level.ask_px, level.bid_sz, level.ask_sz))
            elif isinstance(rec, dbn.InstrumentDefMsg):
                self._definition(rec)
            elif isinstance(rec, dbn.SymbolMappingMsg):
                self._mapping(rec)
            else:
                self.ignored[type(rec).__name__] += 1
        self.sink.count_rows(sum(not isinstance(r, dbn.Metadata) for r in records))
        if quotes:
            self._quotes(np.array(quotes, dtype=np.int64))

    def _definition(self, rec) -> None:
        try:
            contract = _parse_occ(rec.raw_symbol)
        except (OccSymbolError, ValueError) as exc:
            self.sink.reject(self.n_records, f"definition of instrument {rec.instrument_id}: {exc}")
            return
        except _dbn().DBNError as exc:  # raw_symbol bytes that are not text
            self.sink.reject(self.n_records, f"definition of instrument {rec.instrument_id}: its raw_symbol is "
                                             f"not readable ({str(exc)[:80]})")
            return
        self.contracts.add(rec.instrument_id, contract, start_ns=0)
        self.new_instruments.append(contract)
        ts = next((x for x in (rec.ts_recv, rec.ts_event, self.meta.start) if x < _UNDEF_TS), 0)
        self.new_ids[(int(rec.instrument_id), _utc_day_ns(ts))] = contract  # a later MODIFY wins

    @property
    def vendor(self) -> str:
        """The id space of this file's instrument ids: Databento ids are unique per dataset (and day)."""
        return f"databento:{self.meta.dataset or 'unknown'}"

    def _from_store(self, ids: np.ndarray, ts_recv: np.ndarray, keys: list) -> None:
        """Fill ``keys`` left None from id mappings stored by earlier imports (one look-up per UTC day)."""
        missing = [j for j, key in enumerate(keys) if key is None]
        wanted: defaultdict[int, set[int]] = defaultdict(set)
        for j in missing:
            day = _utc_day_ns(ts_recv[j])
            if (int(ids[j]), day) not in self.looked_up:
                wanted[day].add(int(ids[j]))
        for day, day_ids in wanted.items():
            found = self.sink.store.lookup_instrument_ids(self.vendor, day_ids, at=day)
            self.looked_up.update((i, day) for i in day_ids)
            for i, contract in found.items():
                self.contracts.add(i, contract, day, day + _DAY_NS)
        for j in missing:
            keys[j] = self.contracts.get(ids[j], ts_recv[j])

    def _mapping(self, rec) -> None:
        for field in ("stype_out_symbol", "stype_in_symbol"):
            try:
                self.contracts.add(rec.instrument_id, _parse_occ(getattr(rec, field)), 0)
                return
            except (OccSymbolError, ValueError, _dbn().DBNError):
                continue
        self.ignored["SymbolMappingMsg (no SPX/SPXW symbol)"] += 1

    def _quotes(self, q: np.ndarray) -> None:
        dbn = _dbn()
        rec_no, ids, ts_recv, ts_event, bid_px, ask_px, bid_sz, ask_sz = q.T
        keys = [self.contracts.get(i, t) for i, t in zip(ids.tolist(), ts_recv.tolist(), strict=True)]
        if None in keys:
            self._from_store(ids, ts_recv, keys)
        scale = float(dbn.FIXED_PRICE_SCALE)
        bid = np.where(bid_px == dbn.UNDEF_PRICE, np.nan, bid_px / scale)
        ask = np.where(ask_px == dbn.UNDEF_PRICE, np.nan, ask_px / scale)
        ok = np.ones(len(q), dtype=bool)
        day = _et_days(ts_recv)
        for j, key in enumerate(keys):
            if reason := self._problem(key, int(ids[j]), int(ts_recv[j]), int(ts_event[j]), day[j], bid[j], ask[j]):
                self.sink.reject(int(rec_no[j]), reason)
                ok[j] = False
        idx = np.flatnonzero(ok)
        if not len(idx):
            return
        layout = np.array([keys[j] for j in idx.tolist()], dtype=object)
        cols = {"root": layout[:, 0].astype(np.uint8), "expiry": layout[:, 1].astype("datetime64[D]"),
                "strike": layout[:, 2].astype(np.float64), "is_call": layout[:, 3].astype(bool),
                "bid": bid[idx], "ask": ask[idx], "bid_size": np.minimum(bid_sz[idx], 2**31 - 1),
                "ask_size": np.minimum(ask_sz[idx], 2**31 - 1),
                "quote_time": np.where(ts_event[idx] > 0, ts_event[idx], ts_recv[idx])}
        sample = ts_recv[idx]
        for t in np.unique(sample).tolist():
            sel = sample == t
            self.buffer.add(int(t), {k: v[sel] for k, v in cols.items()}, rec_no[idx][sel])
        latest = int(sample.max())
        for t in sorted(self.buffer.keys()):
            if t < latest:
                self._flush(t)

    def _problem(self, key, instrument_id: int, ts_recv: int, ts_event: int, day: np.datetime64, bid: float,
                 ask: float) -> str | None:
        """Why one quote record cannot be stored, or None (``day``: its ET quote day, NaT if implausible)."""
        if np.isnat(day):
            return _implausible_time("ts_recv", ts_recv)
        lo, hi = plausible_ns_bounds()
        if ts_event and not lo <= ts_event < hi:  # 0: not set (the quote time is then ts_recv)
            return _implausible_time("ts_event", ts_event)
        if key is None:
            return _undefined(instrument_id, ts_recv, self.vendor)
        if bid < 0 or ask < 0:
            return f"negative price (bid {bid:g}, ask {ask:g})"
        if bid > MAX_PRICE or ask > MAX_PRICE:
            return f"implausible price (bid {bid:g}, ask {ask:g}; above {MAX_PRICE:,.0f})"
        if key[1] < day:
            return f"expiry {key[1]} is before the quote day {day} (expired series)"
        if key[1] > day + np.timedelta64(366 * MAX_EXPIRY_YEARS, "D"):
            return f"expiry {key[1]} is more than {MAX_EXPIRY_YEARS} years after the quote day {day}"
        if self.buffer.is_closed(ts_recv):
            return f"ts_recv {ts_recv} is earlier than a sample already written; the file must be time-ordered"
        return None

    def _flush(self, t: int) -> None:
        cols, _ = self.buffer.pop(t, self.sink.reject)
        self.sink.add_snapshot(build_snapshot(cols, time_ns=t, underlying_price=self._index_close(t)))

    def _index_close(self, t: int) -> float:
        day = datetime.fromtimestamp(t / 1e9, tz=timezone.utc).astimezone(ET).date()
        key = day.isoformat()
        if key not in self._bars:
            start = datetime(day.year, day.month, day.day, tzinfo=ET)
            bars = self.sink.store.load_bars(UNDERLYING, start=start, end=start.replace(hour=23, minute=59))
            if bars is None or not len(bars):
                self._bars[key] = pd.Series(dtype=np.float64)
            else:
                times = pd.DatetimeIndex(pd.to_datetime(bars["time"], utc=True)).as_unit("ns").asi8
                self._bars[key] = pd.Series(bars["close"].to_numpy(dtype=np.float64), index=times).sort_index()
        closes = self._bars[key]
        # the latest minute bar that had *ended* by t (bar times are starts)
        i = int(np.searchsorted(closes.index.to_numpy(), t - _MINUTE_NS, side="right")) - 1
        return float(closes.iloc[i]) if i >= 0 else float("nan")

    def finish(self) -> None:
        for t in sorted(self.buffer.keys()):
            self._flush(t)
        if self.new_instruments:
            self.sink.add_instruments(dict.fromkeys(self.new_instruments))
        if self.new_ids:
            self.sink.add_instrument_ids(self.vendor, [VendorInstrumentId(i, c, day, day + _DAY_NS)
                                                       for (i, day), c in self.new_ids.items()])
        for name, count in sorted(self.ignored.items()):
            self.sink.reject(0, f"{count} {name} records are not used (only CBBO/BBO quotes, definitions "
                                f"and symbol mappings are imported)")


def _et_days(ts_ns: np.ndarray) -> np.ndarray:
    """The US/Eastern day of each ns instant; NaT where the instant is not a plausible quote time."""
    lo, hi = plausible_ns_bounds()
    when = (ts_ns >= lo) & (ts_ns < hi)
    day = np.full(len(ts_ns), np.datetime64("NaT"), dtype="datetime64[D]")
    day[when] = pd.DatetimeIndex(ts_ns[when], tz="UTC").tz_convert(ET).tz_localize(None).to_numpy()
    return day


def _implausible_time(name: str, ns: int) -> str:
    return (f"{name} {np.datetime64(ns, 'ns')} UTC is not a plausible quote time "
            f"({EARLIEST_DAY} to {latest_day()})")


def _undefined(instrument_id: int, ts_recv: int, vendor: str) -> str:
    day = datetime.fromtimestamp(_utc_day_ns(ts_recv) / 1e9, tz=timezone.utc).date()
    return (f"quote record for instrument_id {instrument_id} on {day} (UTC): no SPX/SPXW definition in this "
            f"import call or stored for {vendor} that day; import that day's Databento definition file first "
            f"(spx-data import --format databento DEFINITIONS.dbn) or pass it in the same import call")
