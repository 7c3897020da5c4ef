"""Async access for the GUI: each call runs in a worker thread so the event loop never blocks.

SQLite calls block; ``asyncio.to_thread`` moves them to the default executor's threads. Each call
checks its own connection out of the pool inside that thread and returns it when done, so no
connection is ever used by two threads at once (the sqlite3 ``check_same_thread`` guard is off
for exactly that reason, see :mod:`spx_core.storage.engine`). Several calls may run concurrently:
readers never wait in WAL mode; writers queue on SQLite's lock for at most ``store.write_timeout_s``
and then raise :class:`~spx_core.storage.errors.StoreBusyError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from spx_core.domain import ChainSnapshot
from spx_core.storage.records import ImportRecord, SessionInfo, SnapshotInfo
from spx_core.storage.store import Store

__all__ = ["AsyncStore"]

T = TypeVar("T")


class AsyncStore:
    """``await``-able wrappers over a :class:`Store` (same methods, same errors)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run any blocking function (e.g. a whole import using ``self.store``) in a worker thread."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def save_snapshot(self, snap: ChainSnapshot, *, source: str, session: str | None = None) -> int:
        return await asyncio.to_thread(self.store.save_snapshot, snap, source=source, session=session)

    async def load_snapshot(self, snapshot_id: int) -> ChainSnapshot:
        return await asyncio.to_thread(self.store.load_snapshot, snapshot_id)

    async def list_snapshots(self, *, session: str | None = None, underlying: str | None = None,
                             start: datetime | int | None = None,
                             end: datetime | int | None = None) -> list[SnapshotInfo]:
        return await asyncio.to_thread(self.store.list_snapshots, session=session, underlying=underlying,
                                       start=start, end=end)

    async def list_sessions(self) -> list[SessionInfo]:
        return await asyncio.to_thread(self.store.list_sessions)

    async def snapshot_ids(self, session: str) -> list[int]:
        return await asyncio.to_thread(self.store.snapshot_ids, session)

    async def has_import(self, sha256: str) -> bool:
        return await asyncio.to_thread(self.store.has_import, sha256)

    async def import_log(self) -> list[ImportRecord]:
        return await asyncio.to_thread(self.store.import_log)

    async def load_bars(self, symbol: str, start: datetime | int | None = None,
                        end: datetime | int | None = None) -> Any:
        return await asyncio.to_thread(self.store.load_bars, symbol, start, end)

    async def close(self) -> None:
        await asyncio.to_thread(self.store.close)
