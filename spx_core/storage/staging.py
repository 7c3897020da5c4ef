"""Staged imports: who owns a staging import, and removing the leftovers of dead ones.

An import commits its rows in short transactions under an ``import_log`` row in status 'staging'
(invisible to readers), then publishes them in one commit. If its process dies (SIGKILL, power
loss), the staged rows stay behind, invisible. To purge them safely we must know the owner is dead,
and never touch a live import of another process however slow it is (so no time-out lease).

Liveness is an OS file lock: the importing process creates ``<db>-import-<uuid>.lock`` next to the
database and holds an exclusive ``flock`` (Windows: ``msvcrt.locking``) on it for as long as the
import stages; the row's ``owner`` column names that file. The kernel drops the lock when the
process ends in any way, so "I can take the lock" means "the owner is gone". These locks belong to
an open file description (not to the process, unlike POSIX ``fcntl`` locks), so the test also works
between two imports of one process, and closing the tester's handle never drops the owner's lock.
"""

from __future__ import annotations

import glob
import os
import tempfile
import uuid
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, delete, select, update

from spx_core.storage import schema as t
from spx_core.storage.engine import read_transaction, write_transaction
from spx_core.storage.errors import DatabasePathError

__all__ = ["OwnerLock", "owner_alive", "purge_dead_imports", "discard_import", "sweep_orphan_locks", "DISCARD_BATCH"]

#: Snapshots deleted per transaction when a staged (or deleted) import is removed: a few MB of pages,
#: a few ms of write lock each, so the recorder and other writers interleave.
DISCARD_BATCH = 32

if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fh: IO[bytes]) -> bool:
        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fh: IO[bytes]) -> None:
        fh.seek(0)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fh: IO[bytes]) -> bool:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:  # BlockingIOError: held by a live import
            return False

    def _unlock(fh: IO[bytes]) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class OwnerLock:
    """The lock a staging import holds while it runs (see the module docstring)."""

    def __init__(self, path: Path, handle: IO[bytes]) -> None:
        self.path = path
        self._handle: IO[bytes] | None = handle

    @classmethod
    def acquire(cls, db_path: Path | None) -> OwnerLock:
        """Create and lock a fresh lock file next to the database (in-memory databases: the temp folder).

        Raises:
            DatabasePathError: the folder is not writable or its file system has no locks.
        """
        folder, stem = lock_folder(db_path)
        for _ in range(3):
            # Absolute: the row's owner path is opened by other processes, whatever their working folder.
            path = folder / f"{stem}{_LOCK_INFIX}{uuid.uuid4().hex}.lock"
            try:
                handle = open(path, "a+b")  # noqa: SIM115 - held open for the import's lifetime
            except OSError as exc:
                raise DatabasePathError(f"cannot create the import lock file {path}: {exc.strerror or exc}; "
                                        f"the database folder must be writable") from None
            if not _try_lock(handle):  # a fresh uuid file: only a file system without locks refuses
                handle.close()
                path.unlink(missing_ok=True)
                raise DatabasePathError(f"cannot lock {path}; keep the database on a local disk (not a network "
                                        f"share)")
            if _same_file(handle, path):
                return cls(path, handle)
            # An orphan sweep removed the file between open and lock: that lock guards nothing.
            _unlock(handle)
            handle.close()
        raise DatabasePathError(f"cannot keep an import lock file in {folder}; is something deleting files there?")

    def release(self) -> None:
        """Drop the lock and remove the file (idempotent)."""
        if self._handle is None:
            return
        try:
            _unlock(self._handle)
        finally:
            self._handle.close()
            self._handle = None
            self.path.unlink(missing_ok=True)


_LOCK_INFIX = "-import-"


def lock_folder(db_path: Path | None) -> tuple[Path, str]:
    """(absolute folder, file-name stem) of a database's import lock files."""
    if db_path is None or str(db_path) in ("", ":memory:"):
        return Path(tempfile.gettempdir()).resolve(), "memory"
    return db_path.resolve().parent, db_path.name


def _same_file(handle: IO[bytes], path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def sweep_orphan_locks(db_path: Path | None) -> int:
    """Remove lock files nobody holds (a process killed just before its row existed or just after it
    published); returns how many. A held file is never removed, and :meth:`OwnerLock.acquire`
    re-checks that its file survived, so a sweep cannot orphan a starting import."""
    folder, stem = lock_folder(db_path)
    removed = 0
    for path in folder.glob(f"{glob.escape(stem)}{_LOCK_INFIX}*.lock"):
        if not owner_alive(str(path)):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def owner_alive(owner: str | None) -> bool:
    """True while the process that staged an import still holds its lock file."""
    if not owner:
        return False
    try:
        handle = open(owner, "r+b")  # noqa: SIM115
    except FileNotFoundError:
        return False  # released (and removed) or purged already
    except OSError:
        return True  # cannot tell: never risk touching a live import
    with handle:
        if not _try_lock(handle):
            return True
        _unlock(handle)
        return False


def discard_import(engine: Engine, import_id: int, *, status: str, where: str, timeout_s: float) -> None:
    """Delete an import's snapshots in short batches while its import_log row is in ``status``.

    The status condition is checked inside each batch's transaction, so a purge that raced with
    the owner's publish deletes nothing once the import is 'imported'. Leaves the import_log row
    (the caller marks it failed or deletes it in its last commit).
    """
    s, log = t.snapshots.c, t.import_log.c
    still = select(log.id).where(log.id == import_id, log.status == status).exists()
    while True:
        with write_transaction(engine, timeout_s=timeout_s, where=where) as conn:
            batch = select(s.id).where(s.import_id == import_id, still).limit(DISCARD_BATCH)
            if conn.execute(delete(t.snapshots).where(s.id.in_(batch))).rowcount < DISCARD_BATCH:
                break


def purge_dead_imports(engine: Engine, *, where: str, timeout_s: float, db_path: Path | None = None) -> int:
    """Remove what staging imports of dead processes left behind; returns how many were purged.

    Each is marked 'failed' ("interrupted") in the import log, so the attempt stays on record.
    Live imports (of any process) are never touched; with none dead this takes no write lock.
    """
    log = t.import_log.c
    with read_transaction(engine, where=where) as conn:
        staging = conn.execute(select(log.id, log.owner).where(log.status == t.STAGING)).all()
    purged = 0
    for import_id, owner in staging:
        if owner_alive(owner):
            continue
        discard_import(engine, import_id, status=t.STAGING, where=where, timeout_s=timeout_s)
        with write_transaction(engine, timeout_s=timeout_s, where=where) as conn:
            marked = conn.execute(update(t.import_log).where(log.id == import_id, log.status == t.STAGING).values(
                status=t.FAILED, owner=None, quotes_stored=0, snapshots=0,
                error="interrupted: the importing process ended before it finished; nothing of it was stored"))
            if marked.rowcount:
                conn.execute(delete(t.import_rejections).where(t.import_rejections.c.import_id == import_id))
        if owner:
            Path(owner).unlink(missing_ok=True)
        purged += bool(marked.rowcount)  # 0 when its owner published just before we looked
    sweep_orphan_locks(db_path)
    return purged
