"""Storage benchmarks: write / read+verify a 20k-quote snapshot, payload size, vs numpy/pickle references.

Targets (issue 2): write <= 30 ms, read + verify <= 5 ms, payload <= 150 KB per 20k quotes.
References measured in the same run on the same columns: ``np.savez_compressed`` (size and write
time into memory) and pickle+zlib (size); read reference = ``np.load`` of that npz + rebuilding the
snapshot with its checksum (what any store must at least do).
"""

from __future__ import annotations

import io
import pickle
import tempfile
import zlib
from pathlib import Path

import numpy as np

from spx_core.domain import ChainSnapshot
from spx_core.storage import Store, decode_payload, encode_snapshot
from tests.benchmarks.report import Report, best_of
from tests.chains import realistic_chain

GROUP = "storage"
REAL_FILE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cboe_datashop" / "spxw20190626.csv"


def _encode(snap: ChainSnapshot) -> bytes:
    return encode_snapshot(underlying=snap.underlying, time_ns=snap.time_ns, underlying_price=snap.underlying_price,
                           underlying_bid=snap.underlying_bid, underlying_ask=snap.underlying_ask,
                           columns=snap.columns)


def _npz(snap: ChainSnapshot) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v) for k, v in snap.columns.items()})
    return buf.getvalue()


def _npz_read(blob: bytes, snap: ChainSnapshot) -> ChainSnapshot:
    with np.load(io.BytesIO(blob)) as z:
        cols = {k: z[k] for k in z.files}
    return ChainSnapshot._make(snap.underlying, snap.time_ns, snap.underlying_price, cols, snap.underlying_bid,
                               snap.underlying_ask)


def _real_chain() -> ChainSnapshot | None:
    if not REAL_FILE.is_file():
        return None
    import pandas as pd

    df = pd.read_csv(REAL_FILE, encoding="utf-8-sig")
    ns = pd.Timestamp("2019-06-26 15:45", tz="America/New_York").value
    spot = float((df.underlying_bid_1545[0] + df.underlying_ask_1545[0]) / 2)
    return ChainSnapshot.from_columns(
        underlying="SPX", time=int(ns), underlying_price=spot,
        root=np.full(len(df), "SPXW"), expiry=pd.to_datetime(df.expiration).to_numpy().astype("datetime64[D]"),
        strike=df.strike.to_numpy(), is_call=df.option_type.to_numpy(), bid=df.bid_1545.to_numpy(),
        ask=df.ask_1545.to_numpy(), bid_size=df.bid_size_1545.to_numpy(), ask_size=df.ask_size_1545.to_numpy(),
        volume=df.trade_volume.to_numpy(), open_interest=df.open_interest.to_numpy())


def _simulator_chain() -> ChainSnapshot | None:
    try:
        from spx_core.marketdata.simulator import SimulatedMarket, SimulatorConfig
    except ModuleNotFoundError:
        return None
    return SimulatedMarket(SimulatorConfig(seed=1)).snapshot()


def _sizes(report: Report, snap: ChainSnapshot) -> None:
    report.add(GROUP, "ref: savez_compressed size", len(_npz(snap)) / 1e3, "KB", note="20k quotes, all columns")
    report.add(GROUP, "ref: pickle+zlib size", len(zlib.compress(pickle.dumps(dict(snap.columns)))) / 1e3, "KB")
    report.add(GROUP, "payload size 20k quotes", len(_encode(snap)) / 1e3, "KB", target=150,
               reference="ref: savez_compressed size", note="synthetic realistic chain (tests/chains.py)")
    real = _real_chain()
    if real is not None:
        per_20k = len(_encode(real)) / len(real) * 20_000
        report.add(GROUP, "payload size, real chain per 20k", per_20k / 1e3, "KB", target=150,
                   note=f"spxw20190626.csv, {len(real)} quotes, scaled to 20k")
    sim = _simulator_chain()
    if sim is not None:
        per_20k = len(_encode(sim)) / len(sim) * 20_000
        report.add(GROUP, "payload size, simulator per 20k", per_20k / 1e3, "KB", target=150,
                   note=f"SimulatedMarket(seed=1) snapshot, {len(sim)} quotes, scaled to 20k")


def _timings(report: Report, snap: ChainSnapshot, store: Store) -> None:
    blob = _npz(snap)
    report.add(GROUP, "ref: savez_compressed write", best_of(lambda: _npz(snap), repeat=7) * 1e3, "ms",
               note="into memory, no database")
    report.add(GROUP, "ref: npz read + checksum", best_of(lambda: _npz_read(blob, snap), repeat=7) * 1e3, "ms")
    report.add(GROUP, "encode payload", best_of(lambda: _encode(snap), repeat=7) * 1e3, "ms")
    payload = _encode(snap)
    report.add(GROUP, "decode payload", best_of(lambda: decode_payload(payload), repeat=7) * 1e3, "ms")
    report.add(GROUP, "write 20k snapshot (save_snapshot)",
               best_of(lambda: store.save_snapshot(snap, source="bench"), repeat=10) * 1e3, "ms", target=30,
               reference="ref: savez_compressed write", note="encode + insert + commit, WAL file")
    sid = store.save_snapshot(snap, source="bench")
    loaded = store.load_snapshot(sid)
    assert loaded.checksum == snap.checksum
    report.add(GROUP, "read + verify 20k snapshot (load_snapshot)",
               best_of(lambda: store.load_snapshot(sid), repeat=15) * 1e3, "ms", target=5,
               reference="ref: npz read + checksum", note="select + decode + rebuild + SHA-256 check")
    report.add(GROUP, "checksum alone (SHA-256 of canonical bytes)",
               best_of(loaded._compute_checksum, repeat=15) * 1e3, "ms", note="floor of read + verify")


def _import_throughput(report: Report, snap: ChainSnapshot, store: Store) -> None:
    n = 50
    snaps = [snap.replace_quotes(time=snap.time_ns + i * 10**9, underlying_price=snap.underlying_price,
                                 flags=snap.columns["flags"]) for i in range(n)]

    def run() -> None:
        run.k += 1
        with store.import_file(path=f"bench-{run.k}", sha256=f"{run.k:064x}", fmt="bench") as imp:
            for s in snaps:
                imp.add_snapshot(s, source="bench")

    run.k = 0
    report.add(GROUP, "import 50 x 20k snapshots (one transaction)", best_of(run, repeat=3) * 1e3 / n,
               "ms/snapshot")


def run(report: Report) -> None:
    snap = realistic_chain(n_quotes=20_000, seed=7)
    _sizes(report, snap)
    with tempfile.TemporaryDirectory(prefix="spx_bench_storage_") as tmp, Store.open(Path(tmp) / "b.sqlite") as store:
        _timings(report, snap, store)
        _import_throughput(report, snap, store)
