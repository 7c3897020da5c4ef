"""Named storage errors. Each message is one line saying what is wrong and how to fix it.

Nothing in :mod:`spx_core.storage` lets a raw ``sqlite3``/SQLAlchemy error out: they are translated
into these classes (:mod:`spx_core.storage.sqlite_errors`), so a CLI or GUI catching ``StorageError``
can print the message as it is. This module imports nothing, so :mod:`spx_core.paths` can use it.
"""

from __future__ import annotations

__all__ = ["StorageError", "SchemaVersionError", "MigrationError", "SnapshotIntegrityError",
           "SnapshotNotFoundError", "DuplicateImportError", "PayloadError", "StoreBusyError", "DatabasePathError",
           "DatabaseNotFoundError", "NotADatabaseError", "DatabaseCorruptError", "DiskFullError",
           "ReadOnlyDatabaseError"]


class StorageError(Exception):
    """Base class for errors raised by :mod:`spx_core.storage`."""


class SchemaVersionError(StorageError):
    """The database was written by a newer version of the code than this one."""


class MigrationError(StorageError):
    """A schema migration failed; the database is left at the last version that applied cleanly."""


class PayloadError(StorageError):
    """A snapshot payload cannot be decoded (unknown codec version, truncated or corrupt bytes)."""


class SnapshotIntegrityError(StorageError):
    """A stored snapshot does not match its checksum (or its payload is unreadable).

    Attributes:
        snapshot_id: the ``snapshots.id`` of the bad row.
    """

    def __init__(self, snapshot_id: int, message: str) -> None:
        super().__init__(f"snapshot {snapshot_id}: {message}")
        self.snapshot_id = snapshot_id


class SnapshotNotFoundError(StorageError, KeyError):
    """No snapshot with that id."""

    def __init__(self, snapshot_id: int) -> None:
        super().__init__(f"no snapshot with id {snapshot_id}; list them with Store.list_snapshots() "
                         f"or `spx-data snapshots --db PATH`")
        self.snapshot_id = snapshot_id

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class DuplicateImportError(StorageError):
    """That file (same SHA-256) was already imported successfully.

    Attributes:
        sha256: the file's hex digest.
        import_id: the ``import_log.id`` of the earlier successful import.
    """

    def __init__(self, sha256: str, import_id: int | None, path: str | None = None) -> None:
        where = f" (import #{import_id}" + (f", from {path}" if path else "") + ")" if import_id else ""
        super().__init__(f"file with sha256 {sha256[:16]}... was already imported{where}; "
                         f"nothing to do (delete that import first to re-import it)")
        self.sha256 = sha256
        self.import_id = import_id


class StoreBusyError(StorageError):
    """Another process held the database's write lock for longer than the store waits (a bounded retry)."""


class DatabasePathError(StorageError):
    """The database (or data folder) path cannot be used: a file is in the way, it is a folder, no permission."""


class DatabaseNotFoundError(StorageError):
    """``Store.open(path, create=False)`` found no file at ``path``."""


class NotADatabaseError(StorageError):
    """The file exists but is not an SQLite database."""


class DatabaseCorruptError(StorageError):
    """SQLite reports the database file as damaged (malformed pages)."""


class DiskFullError(StorageError):
    """The disk (or the database's size limit) filled up during a write; that write stored nothing."""


class ReadOnlyDatabaseError(StorageError):
    """The database file (or its folder) cannot be written."""
