"""Real-file loaders for the surface tests.

They prefer the project's importers + store (``import_files`` then ``Store.load_snapshot``); until
those exist they parse the files with pandas, following the same conventions (DataShop ``spxw*`` files
are all SPXW, snapshot at 15:45 ET, underlying = mid of the 15:45 underlying bid/ask).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from spx_core.domain import ET, ChainSnapshot


def _via_store(path: Path, fmt: str, tmp_path: Path) -> list[ChainSnapshot] | None:
    try:
        from spx_core.marketdata.importers import import_files
        from spx_core.storage import Store
    except ImportError:
        return None
    store = Store.open(tmp_path / "surface.db")
    try:
        reports = import_files(store, [path], fmt)
        assert reports[0].error in (None, ""), reports[0].error
        return [store.load_snapshot(info.id) for info in store.list_snapshots()]
    finally:
        store.close()


def load_datashop(path: Path, tmp_path: Path) -> ChainSnapshot:
    snaps = _via_store(path, "cboe-datashop", tmp_path)
    if snaps:
        return max(snaps, key=len)
    df = pd.read_csv(path, encoding="utf-8-sig")
    day = pd.Timestamp(df["quote_date"].iloc[0]).date()
    under = float(0.5 * (df["underlying_bid_1545"].iloc[0] + df["underlying_ask_1545"].iloc[0]))
    return ChainSnapshot.from_columns(
        underlying="SPX", time=datetime(day.year, day.month, day.day, 15, 45, tzinfo=ET), underlying_price=under,
        root=np.full(len(df), "SPXW"), expiry=df["expiration"].to_numpy(dtype="datetime64[D]"),
        strike=df["strike"].to_numpy(float), is_call=df["option_type"].to_numpy(str),
        bid=df["bid_1545"].to_numpy(float), ask=df["ask_1545"].to_numpy(float),
        bid_size=df["bid_size_1545"].to_numpy(), ask_size=df["ask_size_1545"].to_numpy(),
        volume=df["trade_volume"].to_numpy(), open_interest=df["open_interest"].to_numpy())
