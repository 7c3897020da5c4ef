"""SQLite store (SQLAlchemy 2): snapshots, instruments, underlying bars, import log.

    store = Store.open(path)                       # creates, WAL, foreign keys, migrates (no write lock if current)
    store = Store.open(path, create=False)         # read commands: a missing file is DatabaseNotFoundError
    sid = store.save_snapshot(snap, source="Simulated", session="demo")
    snap = store.load_snapshot(sid)                # bit-identical; checksum verified
    with store.import_file(path=p, sha256=h, fmt="cboe-datashop") as imp:
        imp.add_snapshot(snap, source="cboe-datashop")
        imp.add_instrument_ids("databento:OPRA.PILLAR", [VendorInstrumentId(id, contract, from_ns, to_ns)])
    store.lookup_instrument_ids("databento:OPRA.PILLAR", [id], at=time_ns)   # committed mappings only

Several processes share one file: readers never wait; writers hold the lock for short transactions
(imports stage per snapshot and publish in one commit) and wait at most WRITE_TIMEOUT_S before
StoreBusyError. Every failure is a StorageError subclass with a one-line message.
SQLAlchemy sessions/connections never leave this package; the engine is passed in (no global).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from spx_core.storage.errors import (
    DatabaseCorruptError,
    DatabaseNotFoundError,
    DatabasePathError,
    DiskFullError,
    DuplicateImportError,
    MigrationError,
    NotADatabaseError,
    PayloadError,
    ReadOnlyDatabaseError,
    SchemaVersionError,
    SnapshotIntegrityError,
    SnapshotNotFoundError,
    StorageError,
    StoreBusyError,
)

# The store itself loads SQLAlchemy (~0.15 s): it is imported on first use, so code that only needs the
# errors (spx_core.paths, the app before its first paint) does not pay for it.
_LAZY = {
    "AsyncStore": "async_store", "decode_payload": "codec", "encode_snapshot": "codec", "make_engine": "engine",
    "WRITE_TIMEOUT_S": "engine", "ImportSession": "imports", "MIGRATIONS": "migrations", "Migration": "migrations",
    "ImportRecord": "records", "SessionInfo": "records", "SnapshotInfo": "records", "VendorInstrumentId": "records",
    "Store": "store",
}

if TYPE_CHECKING:
    from spx_core.storage.async_store import AsyncStore
    from spx_core.storage.codec import decode_payload, encode_snapshot
    from spx_core.storage.engine import WRITE_TIMEOUT_S, make_engine
    from spx_core.storage.imports import ImportSession
    from spx_core.storage.migrations import MIGRATIONS, Migration
    from spx_core.storage.records import ImportRecord, SessionInfo, SnapshotInfo, VendorInstrumentId
    from spx_core.storage.store import Store


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'spx_core.storage' has no attribute {name!r}")
    value = getattr(import_module(f"spx_core.storage.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "Store", "AsyncStore", "ImportSession", "make_engine",
    "SnapshotInfo", "SessionInfo", "ImportRecord", "VendorInstrumentId", "Migration", "MIGRATIONS",
    "StorageError", "SchemaVersionError", "MigrationError", "PayloadError", "SnapshotIntegrityError",
    "SnapshotNotFoundError", "DuplicateImportError", "StoreBusyError", "DatabasePathError", "DatabaseNotFoundError",
    "NotADatabaseError", "DatabaseCorruptError", "DiskFullError", "ReadOnlyDatabaseError", "WRITE_TIMEOUT_S",
    "encode_snapshot", "decode_payload",
]
