"""Vendor instrument ids: stored per import, valid per date range, found by later imports; migration 2."""

from __future__ import annotations


import pytest

from spx_core.domain import OptionContract
from spx_core.storage import (
    MIGRATIONS,
    StorageError,
    Store,
    VendorInstrumentId,
    make_engine,
)
from spx_core.storage.imports import upsert_instruments
from spx_core.storage.migrations import latest_version, migrate
from spx_core.storage.rows import snapshot_row
from spx_core.storage.schema import import_log, snapshots
from tests.chains import realistic_chain

DAY = 86_400 * 10**9
D0 = 1609718400 * 10**9  # 2021-01-04 00:00 UTC
VENDOR = "databento:OPRA.PILLAR"
C3700 = OptionContract.from_occ("SPXW  210104C03700000")
P3700 = OptionContract.from_occ("SPXW  210104P03700000")


def _import(store, name, vendor, mappings):
    with store.import_file(path=name, sha256=name * 4, fmt="databento") as imp:
        imp.add_instrument_ids(vendor, mappings)
    return imp.import_id


def test_ids_resolve_only_within_their_day_and_vendor(tmp_path):
    with Store.open(tmp_path / "ids.sqlite") as store:
        _import(store, "a", VENDOR, [VendorInstrumentId(7, C3700, D0, D0 + DAY)])
        _import(store, "b", VENDOR, [VendorInstrumentId(7, P3700, D0 + DAY, D0 + 2 * DAY)])  # id re-used next day

        assert store.lookup_instrument_ids(VENDOR, [7, 8], at=D0 + 3600 * 10**9) == {7: C3700}
        assert store.lookup_instrument_ids(VENDOR, [7], at=D0 + DAY) == {7: P3700}
        assert store.lookup_instrument_ids(VENDOR, [7], at=D0 + 2 * DAY) == {}  # valid_to is exclusive
        assert store.lookup_instrument_ids("databento:XNAS.ITCH", [7], at=D0) == {}
        assert store.load_instrument(P3700.occ_symbol) == P3700  # the contracts are stored too


def test_a_newer_import_of_the_same_day_replaces_and_forgetting_it_removes(tmp_path):
    with Store.open(tmp_path / "ids.sqlite") as store:
        _import(store, "a", VENDOR, [VendorInstrumentId(7, C3700, D0, D0 + DAY)])
        newer = _import(store, "b", VENDOR, [VendorInstrumentId(7, P3700, D0, D0 + DAY)])
        assert store.lookup_instrument_ids(VENDOR, [7], at=D0) == {7: P3700}

        store.delete_import(newer)
        assert store.lookup_instrument_ids(VENDOR, [7], at=D0) == {}


def test_an_empty_range_is_refused_and_rolls_the_import_back(tmp_path):
    with Store.open(tmp_path / "ids.sqlite") as store:
        with pytest.raises(StorageError, match="valid_to_ns .* is not after valid_from_ns"):
            _import(store, "a", VENDOR, [VendorInstrumentId(7, C3700, D0, D0)])
        assert store.load_instrument(C3700.occ_symbol) is None
        assert [r.status for r in store.import_log()] == ["failed"]


def test_a_version_1_file_gains_the_table_and_keeps_its_data(tmp_path):
    path = tmp_path / "v1.sqlite"
    engine = make_engine(path)
    assert migrate(engine, MIGRATIONS[:1]) == 1
    snap = realistic_chain(n_quotes=50, seed=3)
    with engine.begin() as conn:  # what the version-1 code wrote: an import, its snapshot, an instrument
        upsert_instruments(conn, [C3700])
        conn.execute(import_log.insert(), {"id": 1, "path": "old.csv", "sha256": "0" * 64, "fmt": "cboe-datashop",
                                           "status": "imported", "rows_read": 50, "quotes_stored": len(snap),
                                           "snapshots": 1, "time_ns": D0})
        row = snapshot_row(snap, source="cboe-datashop", session=None, import_id=1)
        sid = conn.execute(snapshots.insert(), row).inserted_primary_key[0]
    engine.dispose()
    checksum = snap.checksum

    with Store.open(path) as store:
        assert store.schema_version == latest_version()
        assert store.load_snapshot(sid).checksum == checksum and store.has_import("0" * 64)
        assert store.load_instrument(C3700.occ_symbol) == C3700
        _import(store, "n", VENDOR, [VendorInstrumentId(1, C3700, D0, D0 + DAY)])
        assert store.lookup_instrument_ids(VENDOR, [1], at=D0) == {1: C3700}
