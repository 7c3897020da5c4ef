"""Turn SQLite's errors into named :mod:`~spx_core.storage.errors` classes with a one-line fix.

SQLAlchemy wraps ``sqlite3`` errors (``exc.orig``); Python 3.11+ gives them ``sqlite_errorcode``. We
map on the *primary* result code (low byte), falling back to the message for errors raised without
one. :func:`translating` is the one place every store connection goes through, so no raw
``OperationalError`` ever leaves the package.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError

from spx_core.storage.errors import (
    DatabaseCorruptError,
    DatabasePathError,
    DiskFullError,
    NotADatabaseError,
    ReadOnlyDatabaseError,
    StorageError,
    StoreBusyError,
)

__all__ = ["translate", "translating", "is_busy", "busy_error"]

# Primary result codes (https://sqlite.org/rescode.html).
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26


def _code(exc: BaseException) -> tuple[int | None, str]:
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    code = getattr(orig, "sqlite_errorcode", None)
    return (None if code is None else int(code) & 0xFF), str(orig)


def is_busy(exc: BaseException) -> bool:
    """True for "database is locked" (another connection holds the write lock)."""
    code, text = _code(exc)
    return code in (_BUSY, _LOCKED) or (code is None and "database is locked" in text)


def busy_error(where: str, waited_s: float | None = None) -> StoreBusyError:
    held = "holds its write lock" if waited_s is None else f"has held its write lock for {waited_s:.1f} s"
    return StoreBusyError(
        f"database {where} is busy: another process {held} (an import, a recording or another writer); "
        f"wait for it to finish and retry, or use another --db file")


def translate(exc: BaseException, where: str) -> StorageError | None:
    """The named error for an SQLite failure on database ``where``, or None when it is not one we name."""
    if isinstance(exc, StorageError):
        return exc
    if not isinstance(exc, (DBAPIError, sqlite3.Error)):
        return None
    code, text = _code(exc)
    if code == _NOTADB or "file is not a database" in text:
        return NotADatabaseError(f"{where} is not an SQLite database ({text}); point --db at a spx-terminal "
                                 f"database, or at a new file name to create one")
    if code == _CORRUPT or "malformed" in text:
        return DatabaseCorruptError(f"database {where} is damaged ({text}); restore it from a backup, or "
                                    f"re-import your files into a new database file")
    if code == _FULL or "disk is full" in text:
        return DiskFullError(f"disk full while writing {where} ({text}); nothing of that write was stored; "
                             f"free some disk space and retry")
    if code == _READONLY:
        return ReadOnlyDatabaseError(f"database {where} cannot be written ({text}); check the permissions of "
                                     f"the file and its folder")
    if code == _CANTOPEN:
        return DatabasePathError(f"cannot open database {where} ({text}); check that its folder exists and "
                                 f"is writable")
    if code == _IOERR:
        return StorageError(f"I/O error on database {where} ({text}); check the disk and free space, then retry")
    if is_busy(exc):
        return busy_error(where)
    return StorageError(f"database {where}: {text}; retry, and if it persists check the file with "
                        f"`sqlite3 {where} 'PRAGMA integrity_check'`")


@contextmanager
def translating(where: str) -> Iterator[None]:
    """Re-raise SQLite errors inside the block as named storage errors (the original is the cause)."""
    try:
        yield
    except (DBAPIError, sqlite3.Error) as exc:
        raise translate(exc, where) from exc
