"""AsyncStore runs store calls in worker threads; the event loop keeps running meanwhile."""

from __future__ import annotations

import asyncio
import threading

import pytest

from spx_core.storage import AsyncStore, SnapshotNotFoundError, Store
from tests.chains import realistic_chain


def test_async_calls_run_off_the_loop_thread_and_concurrently(tmp_path):
    store = Store.open(tmp_path / "async.sqlite")
    snaps = [realistic_chain(n_quotes=500, seed=i) for i in range(8)]
    loop_thread = threading.get_ident()
    seen_threads: set[int] = set()

    def spy(fn):
        def wrapped(*a, **kw):
            seen_threads.add(threading.get_ident())
            return fn(*a, **kw)
        return wrapped

    async def main():
        astore = AsyncStore(store)
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        tick_task = asyncio.create_task(ticker())
        ids = await asyncio.gather(*(astore.run(spy(store.save_snapshot), s, source="gui", session="live")
                                     for s in snaps))
        loaded = await asyncio.gather(*(astore.load_snapshot(i) for i in ids))
        infos = await astore.list_snapshots(session="live")
        sessions = await astore.list_sessions()
        ordered = await astore.snapshot_ids("live")
        with pytest.raises(SnapshotNotFoundError):
            await astore.load_snapshot(10_000)
        tick_task.cancel()
        await astore.close()
        return ids, loaded, infos, sessions, ordered, ticks

    ids, loaded, infos, sessions, ordered, ticks = asyncio.run(main())

    assert [s.checksum for s in loaded] == [s.checksum for s in snaps]
    assert sorted(i.id for i in infos) == sorted(ids) and sorted(ordered) == sorted(ids)
    assert sessions[0].n_snapshots == 8
    assert loop_thread not in seen_threads and seen_threads
    assert ticks > 0
