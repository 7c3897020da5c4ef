"""Write small DBN files for importer tests with databento_dbn's own encoder (record ``bytes()``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import databento_dbn as dbn
import zstandard

PX = dbn.FIXED_PRICE_SCALE  # 1e9: DBN fixed-point prices
T0 = 1609770600 * 10**9  # 2021-01-04 09:30 ET
MINUTE = 60 * 10**9


@dataclass(frozen=True)
class Quote:
    instrument_id: int
    ts_recv: int  # sample time (minute boundary)
    ts_event: int  # last update
    bid: float | None  # None -> UNDEF_PRICE
    ask: float | None
    bid_sz: int = 10
    ask_sz: int = 12


def metadata(*, schema=None, mappings=None, start: int = T0) -> dbn.Metadata:
    kwargs = {}
    if mappings is not None:
        kwargs["mappings"] = mappings
    return dbn.Metadata(dataset="OPRA.PILLAR", start=start, stype_in=dbn.SType.RAW_SYMBOL,
                        stype_out=dbn.SType.INSTRUMENT_ID, schema=schema, symbols=["SPX.OPT"],
                        end=start + 3600 * 10**9, **kwargs)


def definition(instrument_id: int, raw_symbol: str, *, ts: int = T0) -> dbn.InstrumentDefMsg:
    right = raw_symbol.strip()[-9]
    return dbn.InstrumentDefMsg(
        publisher_id=1, instrument_id=instrument_id, ts_event=ts, ts_recv=ts, min_price_increment=5 * 10**7,
        display_factor=PX, raw_symbol=raw_symbol, asset=raw_symbol.split()[0][:6], security_type="OOF",
        instrument_class=dbn.InstrumentClass.CALL if right == "C" else dbn.InstrumentClass.PUT,
        security_update_action=dbn.SecurityUpdateAction.ADD,
        strike_price=int(raw_symbol.strip()[-8:]) * 10**6)


def cbbo(q: Quote) -> dbn.CBBOMsg:
    def px(x: float | None) -> int:
        return dbn.UNDEF_PRICE if x is None else round(x * PX)

    level = dbn.ConsolidatedBidAskPair(bid_px=px(q.bid), ask_px=px(q.ask), bid_sz=q.bid_sz, ask_sz=q.ask_sz)
    return dbn.CBBOMsg(rtype=int(dbn.RType.CBBO_1M.value), publisher_id=1, instrument_id=q.instrument_id,
                       ts_event=q.ts_event, price=dbn.UNDEF_PRICE, size=0, side=dbn.Side.NONE, ts_recv=q.ts_recv,
                       levels=level)


def write_dbn(path: Path, meta: dbn.Metadata, records: list, *, zstd: bool = False) -> Path:
    data = bytes(meta) + b"".join(bytes(r) for r in records)
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if zstd else data)
    return path
